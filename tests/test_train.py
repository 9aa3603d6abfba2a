"""Real (short) training runs through dlbook.train.train: the default run, resume, eval, loggers, debug modes
(each model trains in test_models.py)."""

import csv
import glob
import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from dlbook.errors import DlbookError, RunDirectoryInUse, user_error_message
from dlbook.eval import evaluate
from dlbook.loggers import LAUNCH_INPUTS, skip_unstaged_launch_inputs
from dlbook.train import train


def read_csv_metrics(run_dir) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows, name) -> list[float]:
    return [float(row[name]) for row in rows if row.get(name)]


def test_default_run_on_digits_beats_90_percent(run_config, tmp_path):
    cfg = run_config()
    metrics, _ = train(cfg)
    assert metrics["test/acc"] > 0.9
    assert metrics[cfg.optimized_metric] >= metrics["val/acc"]  # what sweepers receive
    run_dir = tmp_path / "run"
    assert (run_dir / "checkpoints" / "best.ckpt").exists() and (run_dir / "checkpoints" / "last.ckpt").exists()


# With max_steps set too (not reached), Lightning resumed an epoch-end checkpoint as if mid-epoch and ran an empty
# epoch: one epoch of batches and one scheduler step short.
@pytest.mark.parametrize("limits", [[], ["++trainer.max_steps=100000"]], ids=["max_epochs", "max_epochs_and_steps"])
def test_resume_continues_epochs_steps_optimizer_and_schedule(run_config, tmp_path, limits):
    setup = ["logger=csv", "scheduler=step", "scheduler.scheduler.step_size=1", *limits]
    train(run_config(["trainer.max_epochs=1", *setup]))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    first = torch.load(last, weights_only=True)
    steps_per_epoch = first["global_step"]
    assert first["epoch"] == 0 and steps_per_epoch > 0

    _, objects = train(run_config(["trainer.max_epochs=2", *setup, "ckpt_path=last"]))
    assert objects["trainer"].current_epoch == 2
    resumed = torch.load(last, weights_only=True)
    assert resumed["global_step"] == 2 * steps_per_epoch
    adam_steps = resumed["optimizer_states"][0]["state"][0]["step"]
    assert int(adam_steps) == 2 * steps_per_epoch
    assert resumed["lr_schedulers"][0]["last_epoch"] == 2
    best = resumed["state_dict"]["val_acc_best.max_value"]
    assert best >= first["state_dict"]["val_acc_best.max_value"]
    epochs_logged = sorted({int(row["epoch"]) for row in read_csv_metrics(tmp_path / "run") if row["epoch"]})
    assert epochs_logged == [0, 1, 2]


@pytest.mark.parametrize("model", ["mlp", "gan"])
def test_ema_weights_are_what_a_run_ends_with_and_saves_and_a_resume_goes_on_from_both(run_config, tmp_path, model):
    setup = [f"model={model}", "callbacks=[default,ema]", "callbacks.ema.decay=0.8", "trainer.max_epochs=2",
             "++trainer.limit_train_batches=6", "trainer.deterministic=true",
             *(["++callbacks.sample_quality=null", "callbacks.sample_grid.every_n_batches=6"] if model == "gan" else [])]
    whole, objects = train(run_config(setup, run_name="whole"))
    saved = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, current = saved["state_dict"], saved["current_model_state"]
    weights = [name for name, value in averaged.items() if value.is_floating_point() and value.dim() > 1]
    assert weights and all(not torch.equal(averaged[name], current[name]) for name in weights)
    # A GAN ends with the last average; a classifier is tested with the best checkpoint's, as eval.py reads it.
    ended = saved if model == "gan" else torch.load(tmp_path / "whole" / "checkpoints" / "best.ckpt", weights_only=True)
    assert all(torch.equal(value.cpu(), ended["state_dict"][name])
               for name, value in objects["model"].state_dict().items() if name in weights)
    if model == "mlp":
        evaluated, _ = evaluate(run_config([f"ckpt_path={tmp_path / 'whole'}"], config_name="eval", run_name="eval"))
        assert evaluated["test/acc"] == pytest.approx(whole["test/acc"])
    crash = [*setup, "+callbacks.crash._target_=tests.callbacks.CrashAfterEpoch", "+callbacks.crash.epoch=0"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(run_config(crash, run_name="resumed"))
    resumed, _ = train(run_config([*setup, "ckpt_path=last"], run_name="resumed"))
    again = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    for name in weights:
        torch.testing.assert_close(again["state_dict"][name], averaged[name])
        torch.testing.assert_close(again["current_model_state"][name], current[name])
    assert resumed == pytest.approx(whole)


def test_tune_lr_trains_with_the_range_tests_suggestion(run_config, tmp_path):
    metrics, objects = train(run_config(["tune=lr", "tune_options.num_training=40", "trainer.max_epochs=2"]))
    suggested = json.loads((tmp_path / "run" / "tune.json").read_text())["tune/lr"]
    assert metrics["tune/lr"] == suggested and 1e-6 < suggested < 1.0 and suggested != 1e-3  # not adam.yaml's
    assert objects["trainer"].optimizers[0].param_groups[0]["lr"] == pytest.approx(suggested)
    assert (tmp_path / "run" / "figures" / "lr_find.png").is_file()
    assert metrics["test/acc"] > 0.5 and objects["trainer"].global_step == 2 * objects["trainer"].num_training_batches


def test_tune_batch_size_trains_with_the_largest_batch_that_fit(run_config, tmp_path):
    metrics, objects = train(run_config(["tune=batch_size", "tune_options.max_trials=4", "trainer.max_epochs=1"]))
    size = json.loads((tmp_path / "run" / "tune.json").read_text())["tune/batch_size"]
    assert metrics["tune/batch_size"] == size == objects["datamodule"].batch_size == 16  # 2, 4, 8, 16: 4 trials
    assert objects["trainer"].num_training_batches == -(-len(objects["datamodule"].data_train) // size)


@pytest.mark.parametrize("overrides, message", [
    (["tune=speed"], "tune=speed is not one of lr, batch_size"),
    (["tune=lr", "model=gan"], "tune=lr: model=GANTask steps its own optimizers"),
    (["tune=lr", "ckpt_path=last"], "a resumed run goes on with the optimizer and batches it had"),
])
def test_tuning_what_cannot_be_tuned_is_refused(run_config, tmp_path, overrides, message):
    if "ckpt_path=last" in overrides:
        train(run_config(["trainer.max_epochs=1", "test=false"]))
    with pytest.raises(DlbookError, match=message):
        train(run_config([*overrides, "trainer.max_epochs=1"]))


def test_auto_resume_starts_fresh_then_goes_on_from_the_newest_whole_checkpoint(run_config, tmp_path, caplog):
    job = ["ckpt_path=auto", "test=false", "trainer.max_epochs=1"]
    _, objects = train(run_config(job))  # nothing to resume yet
    steps_per_epoch = objects["trainer"].global_step
    checkpoints = tmp_path / "run" / "checkpoints"
    _, objects = train(run_config([*job, "trainer.max_epochs=2"]))  # the job started again, longer
    assert objects["trainer"].global_step == 2 * steps_per_epoch
    # A kill cut the newest checkpoint short: the one before it is resumed from, and named.
    written = torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"]
    (checkpoints / "epoch_cut.ckpt").write_bytes(b"PK\x03\x04 cut short")
    _, objects = train(run_config([*job, "trainer.max_epochs=3"]))
    assert objects["trainer"].global_step == written + steps_per_epoch
    assert "passes over" in caplog.text and "epoch_cut.ckpt" in caplog.text


def test_a_run_that_would_start_over_another_runs_checkpoints_is_refused_and_they_stay(run_config, tmp_path):
    run_dir = tmp_path / "run"
    train(run_config(["trainer.max_epochs=1"]))
    written = [*sorted((run_dir / "checkpoints").glob("*.ckpt")), run_dir / "metrics.json"]
    assert [path.name for path in written] == ["best.ckpt", "last.ckpt", "metrics.json"]
    before = [path.read_bytes() for path in written]
    fine_tune = [f"ckpt_path={tmp_path / 'elsewhere.ckpt'}", "ckpt_restore=weights"]
    (tmp_path / "elsewhere.ckpt").write_bytes(written[0].read_bytes())
    for restart in ([], fine_tune):
        with pytest.raises(RunDirectoryInUse, match=r"best.ckpt, last.ckpt.*pass ckpt_path=last"):
            train(run_config(["trainer.max_epochs=1", *restart]))
    assert [path.read_bytes() for path in written] == before
    # what may write there: a resume, and a test of the run's checkpoint
    _, objects = train(run_config(["trainer.max_epochs=2", "ckpt_path=last"]))
    assert objects["trainer"].current_epoch == 2
    tested, _ = train(run_config(["train=false", "ckpt_path=best"]))
    assert "test/acc" in tested


def test_a_resume_with_other_settings_than_its_run_names_them(run_config, tmp_path, caplog):
    train(run_config(["trainer.max_epochs=1", "test=false"]))
    train(run_config(["trainer.max_epochs=2", "test=false", "ckpt_path=last"]))  # a longer run: as it was
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    train(run_config(["trainer.max_epochs=3", "test=false", f"ckpt_path={last}"], run_name="elsewhere"))  # as well
    assert "settings other than" not in caplog.text
    train(run_config(["trainer.max_epochs=3", "test=false", "ckpt_path=last", "data.batch_size=32",
                      "optimizer.lr=0.003"]))
    assert "data.batch_size: 64 -> 32; optimizer.lr: 0.001 -> 0.003. To continue that run as it was" in caplog.text
    assert "nothing left to train" not in caplog.text
    caplog.clear()  # a test of the checkpoint with other settings (what eval.py points to) resumes nothing
    train(run_config(["train=false", "ckpt_path=last", "data.batch_size=16"]))
    assert "settings other than" not in caplog.text
    # a resume that would train nothing: Lightning only logs that the limit is reached
    train(run_config(["trainer.max_epochs=3", "test=false", "ckpt_path=last", "data.batch_size=32",
                      "optimizer.lr=0.003"]))
    assert "has trained 3 epochs, trainer.max_epochs=3: there is nothing left to train" in caplog.text


def test_accumulated_gradients_step_once_every_few_batches(run_config):
    _, objects = train(run_config(["trainer.max_epochs=1", "test=false", "trainer.accumulate_grad_batches=3"]))
    assert objects["trainer"].global_step == -(-objects["trainer"].num_training_batches // 3)
    with pytest.raises(DlbookError, match=r"trainer.accumulate_grad_batches=2: model=gan steps its own"):
        train(run_config(["model=gan", "trainer.accumulate_grad_batches=2"], run_name="gan"))


def test_eval_reproduces_test_metric(run_config, tmp_path):
    trained, _ = train(run_config(["trainer.max_epochs=3"]))
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    evaluated, _ = evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="eval"))
    assert evaluated["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-5)
    # again into the training run's own directory: refused, the run's summary kept
    summary = (tmp_path / "run" / "metrics.json").read_bytes()
    with pytest.raises(RunDirectoryInUse, match="is a training run's directory: eval.py would write its metrics.json"):
        evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="run"))
    assert (tmp_path / "run" / "metrics.json").read_bytes() == summary
    evaluated_again, _ = evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="eval"))  # its own
    assert evaluated_again["test/acc"] == evaluated["test/acc"]
    with pytest.raises(DlbookError, match="No test batch was run"):  # no summary without a number
        evaluate(run_config([f"ckpt_path={best}", "+trainer.limit_test_batches=0"], config_name="eval",
                            run_name="none_tested"))
    assert not (tmp_path / "none_tested" / "metrics.json").exists()


def test_wandb_runs_offline_without_a_key(run_config, tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    cfg = run_config(["logger=wandb", "trainer.max_epochs=1"])
    assert cfg.logger.wandb.offline is True
    train(cfg)
    runs = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(runs) == 1
    # W&B's writer is a separate process that can still be flushing the record file when finish() returns.
    deadline = time.monotonic() + 30
    while True:
        with open(runs[0], "rb") as f:
            record = f.read()
        if (b"val/acc" in record and b"digits" in record) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert b"val/acc" in record and b"digits" in record  # metrics and the resolved config
    tables = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "files" / "media" / "table" / "test" /
                           "misclassified_*.table.json"))
    table = json.loads(Path(tables[0]).read_text())
    assert table["columns"] == ["input", "label", "predicted"] and 0 < len(table["data"]) <= 16
    assert all(label != predicted for _, label, predicted in table["data"])
    # each figure drawn once, for its file and for W&B
    logged = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "files" / "media" / "images" / "figures" /
                           "confusion_matrix_*.png"))
    drawn = Image.open(tmp_path / "run" / "figures" / "confusion_matrix.png")
    assert len(logged) == 1 and Image.open(logged[0]).size == drawn.size


@pytest.mark.parametrize("overrides, message", [
    # Lightning would take these and fail mid-run: on a type assertion, on a division by zero
    (["trainer.max_epochs=abc"], "trainer.max_epochs=abc must be -1 (no limit) or a non-negative integer."),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0 must be a positive integer."),
    (["data.batch_size=abc"], "data.batch_size=abc must be a positive integer."),  # was a TypeError comparing it
    # fractions and shares checked by hand compared text with numbers: Hydra's "Error in call to target", a TypeError
    (["data.val_fraction=abc"], "data.val_fraction=abc must be a finite number from 0 to below 1."),
    (["data=iris", "data.test_fraction=abc"], "data.test_fraction=abc must be a finite number from 0 to below 1."),
    (["model=pca", "model.n_components=null", "model.keep_info=abc"],
     "model.keep_info=abc must be a finite number above 0 and at most 1."),
    (["model=seq2seq", "data=sequence_pairs", "model.net.teacher_forcing=abc"],
     "model.net.teacher_forcing=abc must be a finite number from 0 to 1."),
    # Lightning clips nothing at a negative value: the run trained unclipped without a word
    (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1 must be a finite number from 0 up (0 or null: "
                                       "no clipping)."),
    # the Trainer's own ValueError, shown in Hydra's "Error in call to target" wrapping
    (["trainer.precision=fp8"], "Lightning refused a setting: Precision 'fp8' is invalid. Allowed precision values"),
    (["model.net.dropout=2"], "model=mlp cannot be built: torch refused a layer's setting: dropout probability has "
                              "to be between 0 and 1, but got 2. Its model.net settings: hidden_sizes=[512, 256, "
                              "128], activation=relu, dropout=2."),
    # torch takes these and divides by them at the first scheduler step, an epoch into the run
    (["scheduler=step", "scheduler.scheduler.step_size=0"], "scheduler.scheduler.step_size=0 must be a positive "
                                                            "integer."),
    (["scheduler=onecycle", "trainer.max_epochs=-1"], "scheduler.scheduler.total_steps=inf must be a positive "
                                                      "integer; null took it from the run's steps"),
    (["scheduler=plateau", "scheduler.scheduler.mode=foo"],  # torch refuses it
     "scheduler.scheduler cannot be built: mode foo is unknown!. It is ReduceLROnPlateau(mode=foo, factor=0.1"),
    # a choice's name where its config belongs: "'str' object is not callable"
    (["model=gan", "model.generator_optimizer=rmsprop"], "model.generator_optimizer=rmsprop is a value where a "
                                                          "config (a _target_ and its settings) belongs: choose one "
                                                          "with optimizer@model.generator_optimizer=rmsprop."),
    # a Lightning callback's own check, in Hydra's wrapping too
    (["+callbacks.model_checkpoint.every_n_epochs=abc"], "Lightning refused a setting: '<' not supported between "
                                                          "instances of 'str' and 'int' (building lightning."),
    # Lightning's early stopping meets these only once the monitored value stops improving
    (["callbacks=[default,early_stopping]", "callbacks.early_stopping.patience=-2"],
     "callbacks.early_stopping.patience=-2 must be a non-negative integer (validations without improvement"),
    (["callbacks=[default,early_stopping]", "callbacks.early_stopping.min_delta=abc"],
     "callbacks.early_stopping.min_delta=abc must be a finite number from 0 up"),
], ids=["max_epochs", "log_every_n_steps", "batch_size", "val_fraction", "test_fraction", "keep_info",
        "teacher_forcing", "gradient_clip_val", "precision", "dropout", "step_size", "unlimited_run", "plateau_mode",
        "optimizer_name", "checkpoint_every", "patience", "min_delta"])
def test_a_setting_that_would_fail_deep_in_a_run_is_a_dlbook_error_naming_it(run_config, overrides, message):
    with pytest.raises(DlbookError) as refused:
        train(run_config(["model=mlp", "trainer.max_epochs=2", *overrides]))
    assert message in str(refused.value)


@pytest.mark.parametrize("overrides, message", [
    (["data.flip=off"], "data.flip=off must be true or false."),  # a datamodule's
    (["model=rbm", "model.persistent=yes"], "model.persistent=yes must be true or false."),  # a task's
    (["model=deep_ae", "model.net.tied=no"], "model.net.tied=no must be true or false."),  # a net's
    (["+trainer.enable_checkpointing=off"], "trainer.enable_checkpointing=off must be true or false (or null)."),
    # a number where a list belongs: "'int' object is not iterable" from inside the net or datamodule
    (["model.net.hidden_sizes=512"], "model.net.hidden_sizes=512 must be a list, e.g. [512]."),
    (["data=iris", "model=softmax_regression", "data.features=0"],  # a base class's, passed on through **kwargs
     "data.features=0 must be a list, e.g. [0] (or null)."),
], ids=["datamodule", "task", "net", "trainer", "list", "base_class_list"])
def test_an_argument_of_the_wrong_kind_is_refused(run_config, tmp_path, overrides, message):
    # Python takes any text but "" as true: data.flip=off flipped the images
    with pytest.raises(DlbookError) as refused:
        train(run_config(["model=mlp", "trainer.max_epochs=1", *overrides]))
    assert message in str(refused.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("overrides, message", [
    (["data.image_size=abc"], "data.image_size=abc must be a positive integer (pixels), or null."),
    (["model=char_rnn", "data=text_chars", "data.seq_length=abc"], "data.seq_length=abc must be a positive integer"),
    (["model=rnn_classifier", "data=imdb", "data.max_length=abc"], "data.max_length=abc must be a positive integer"),
    (["model=rnn_classifier", "data=imdb", "data.vocab_size=2"], "data.vocab_size=2 must be an integer from 3 up: "
                                                                 "the pad and unknown tokens take two ids"),
    (["data=bag_of_words", "data.ngrams=abc"], "data.ngrams=abc must be a positive integer: 1 (words) or more"),
    (["model=sine_gan", "data=sine", "data.num_batches=abc"], "data.num_batches=abc must be a positive integer"),
    (["model=linear_rnn", "data=count_ones", "data.length=abc"], "data.length=abc must be a positive integer."),
    (["model=word2vec", "data=text_corpus", "data.window=abc"], "data.window=abc must be a positive integer"),
    (["model=seq2seq", "data=sequence_pairs", "data.symbols=abc"], "data.symbols=abc must be a positive integer."),
    (["model=seq2seq", "data=translation_pairs", "data.max_vocab=abc"], "data.max_vocab=abc must be an integer "
                                                                         "from 5 up, or null"),
    (["model=metropolis", "data=steps", "model.chains=abc"], "model.chains=abc must be a positive integer."),
    (["model=gibbs", "data=steps", "model.draws_per_step=abc"], "model.draws_per_step=abc must be a positive"),
    (["model=som", "data=synthetic", "model.rows=abc"], "model.rows=abc must be a positive integer."),
    (["scheduler=linear_decay", "scheduler.scheduler.decay_epochs=abc"],
     "scheduler.scheduler.decay_epochs=abc must be a positive integer up to 2."),
], ids=["image_size", "seq_length", "max_length", "vocab_size", "ngrams", "num_batches", "length", "window", "symbols",
        "max_vocab", "chains", "draws_per_step", "rows", "decay_epochs"])
def test_a_count_given_as_text_is_named_with_its_range(run_config, overrides, message):
    # the hand-written comparisons these replaced raised TypeError ('<' between str and int), in Hydra's
    # "Error in call to target" or with a stack trace
    with pytest.raises(DlbookError) as refused:
        train(run_config(["model=mlp", "trainer.max_epochs=2", *overrides]))
    assert message in str(refused.value)


@pytest.mark.parametrize("overrides, message", [
    # the model summary's depth is checked by the summary Lightning builds when fitting starts, not by its callback
    (["++callbacks.model_summary={_target_: lightning.pytorch.callbacks.ModelSummary, max_depth: -3}"],
     "Lightning refused a setting: `max_depth` can be -1, 0 or > 0, got -3."),
    # a validation interval of more batches than an epoch has is checked once the data is set up
    (["+trainer.val_check_interval=500"],
     "Lightning refused a setting: `val_check_interval` (500) must be less than or equal to the number of the "
     "training batches"),
], ids=["summary_depth", "val_check_interval"])
def test_a_setting_lightning_checks_only_as_fitting_starts_is_one_paragraph(run_config, overrides, message):
    with pytest.raises(ValueError) as refused:
        train(run_config(overrides))
    assert user_error_message(refused.value).startswith(message)


def test_eval_refuses_settings_it_would_not_use(run_config, tmp_path):
    # model and data come from the checkpoint: +data.batch_size=512 was composed, then silently not used
    train(run_config(["trainer.max_epochs=1"]))
    with pytest.raises(DlbookError, match=r"settings under data, model would not be used. To test the checkpoint "
                                          r"with other ones, run `python train.py train=false"):
        evaluate(run_config([f"ckpt_path={tmp_path / 'run'}", "+data.batch_size=512", "+model.net.dropout=0.1"],
                            config_name="eval", run_name="eval"))
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_a_confusion_matrix_of_many_classes_is_shaded_on_a_canvas_of_bounded_size():
    from dlbook.plots import NAMED_CLASSES, confusion_matrix

    few = confusion_matrix(torch.eye(3, dtype=torch.long), ["a", "b", "c"])
    assert len(few.axes[0].texts) == 9  # each count written in its cell
    many = confusion_matrix(torch.eye(300, dtype=torch.long), [str(index) for index in range(300)])
    assert max(many.get_size_inches()) <= 0.45 * NAMED_CLASSES + 2.0 and not many.axes[0].texts


def test_wandb_looks_for_launch_inputs_only_where_some_can_be_staged(monkeypatch):
    from wandb.sdk.wandb_run import Run

    looked = []
    monkeypatch.setattr(Run, "_detect_and_apply_job_inputs", looked.append)
    skip_unstaged_launch_inputs()
    monkeypatch.delitem(sys.modules, LAUNCH_INPUTS, raising=False)
    Run._detect_and_apply_job_inputs("run")
    assert looked == []  # nothing imported the module that stages them
    monkeypatch.setitem(sys.modules, LAUNCH_INPUTS, object())
    Run._detect_and_apply_job_inputs("run")
    assert looked == ["run"]


def test_classifier_reports_each_class_from_the_test_sets_confusion_matrix(run_config, tmp_path):
    metrics, objects = train(run_config(["trainer.max_epochs=2"]))
    task, datamodule = objects["model"], objects["datamodule"]
    inputs, labels = datamodule.on_after_batch_transfer(
        datamodule.data_test.__getitems__(list(range(len(datamodule.data_test)))), 0)
    with torch.no_grad():
        predicted = task.eval()(inputs).argmax(dim=1)
    expected = torch.zeros(10, 10, dtype=torch.long)
    expected.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    assert torch.equal(task.confusion_matrix, expected)
    for digit in range(10):
        hits = expected[digit, digit].item()
        assert metrics[f"test/recall/{digit}"] == pytest.approx(hits / expected[digit].sum().item(), abs=1e-6)
        assert metrics[f"test/precision/{digit}"] == pytest.approx(hits / max(1, expected[:, digit].sum().item()),
                                                                    abs=1e-6)
    assert 0 < metrics["test/f1_macro"] <= 1
    figures = tmp_path / "run" / "figures"
    assert (figures / "confusion_matrix.png").is_file() and (figures / "misclassified_test.png").is_file()


def test_checkpoints_become_wandb_artifacts_offline_and_load_back_from_one(run_config, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    metrics, _ = train(run_config(["logger=wandb", "logger.wandb.log_model=true", "trainer.max_epochs=2"]))
    run_id = (tmp_path / "run" / "wandb_run_id").read_text().strip()
    (record,) = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "run-*.wandb"))
    deadline = time.monotonic() + 30  # W&B's writer process may still be flushing the record file
    while b"latest" not in Path(record).read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    written = Path(record).read_bytes()
    for expected in (f"model-{run_id}".encode(), b"best.ckpt", b"last.ckpt", b'"best"', b"latest"):
        assert expected in written, expected

    artifact = "someone/dlbook/model-" + run_id + ":best"
    with pytest.raises(DlbookError, match=f"ckpt_path=wandb:{artifact} reads a W&B artifact, which needs W&B "
                                          f"online: set WANDB_API_KEY"):
        evaluate(run_config([f"ckpt_path=wandb:{artifact}"], config_name="eval", run_name="offline"))

    class Api:  # W&B's API online, as far as ckpt_path=wandb: asks it: the artifact's files downloaded
        def artifact(self, name, type):
            assert (name, type) == (artifact, "model")
            return self

        def download(self, root):
            Path(root).mkdir(parents=True)
            Path(root, "best.ckpt").write_bytes((tmp_path / "run" / "checkpoints" / "best.ckpt").read_bytes())
            return root

    import wandb

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "Api", Api)
    evaluated, _ = evaluate(run_config([f"ckpt_path=wandb:{artifact}"], config_name="eval", run_name="online"))
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"])
    assert list((tmp_path / "online" / "artifacts").rglob("best.ckpt"))


def test_csv_logger_writes_metrics(run_config, tmp_path):
    train(run_config(["logger=csv", "trainer.max_epochs=2"]))
    rows = read_csv_metrics(tmp_path / "run")
    assert len(column(rows, "val/acc")) == 2 and len(column(rows, "test/acc")) == 1
    assert (tmp_path / "run" / "csv" / "hparams.yaml").read_text().count("digits") >= 1


@pytest.mark.parametrize("debug", ["fast", "overfit", "limit", "profile"])
def test_debug_modes_run(run_config, tmp_path, debug):
    metrics, objects = train(run_config([f"debug={debug}"]))
    assert "test/acc" in metrics and (tmp_path / "run" / "metrics.json").exists()
    if debug == "fast":
        assert objects["trainer"].global_step == 1
    if debug == "overfit":  # a model that cannot fit three batches is broken
        assert metrics["train/acc"] > 0.95
    if debug == "profile":
        assert (tmp_path / "run" / "fit-profile.txt").exists()


def adam_step_nvml_probes(monkeypatch) -> int:
    """How many times one Adam step tries to load NVML."""
    probes = []
    probe = torch.cuda._raw_device_count_nvml
    monkeypatch.setattr(torch.cuda, "_raw_device_count_nvml", lambda: probes.append(1) or probe())
    net = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    return len(probes)


@pytest.mark.skipif(torch.cuda.is_available() or not torch.backends.cuda.is_built(),
                    reason="needs a CUDA build of torch on a host without a CUDA device")
def test_adam_steps_stop_probing_nvml_on_a_host_without_cuda(run_config, monkeypatch):
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # as Lightning's import sets it
    assert adam_step_nvml_probes(monkeypatch) == 1
    train(run_config(["debug=fast"]))
    assert adam_step_nvml_probes(monkeypatch) == 0


def test_the_nvml_check_stays_where_there_is_a_cuda_device(monkeypatch):
    from dlbook.utils.entry import drop_nvml_check_without_cuda

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    drop_nvml_check_without_cuda()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"


def test_a_summary_cut_short_while_written_leaves_the_one_before(tmp_path, monkeypatch):
    from dlbook.utils.entry import write_summary

    write_summary(str(tmp_path), {"status": "completed", "test/acc": 0.9})
    real_write_text = Path.write_text

    def killed_halfway(path, text, *args, **kwargs):
        real_write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        write_summary(str(tmp_path), {"status": "completed", "test/acc": 0.95})
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] == 0.9
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]
