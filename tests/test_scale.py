"""Sweeps, Optuna, DDP on CPU processes, mixed precision, resume (exact, weights-only, W&B run), preemption,
NaN losses and the SLURM launcher config."""

import csv
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dlbook.errors import DlbookError, NonFiniteLossError
from dlbook.train import continue_wandb_run, train
from tests.test_cli import QUIET, ROOT, output, run
from tests.test_train import read_csv_metrics

POISON = "+callbacks.poison._target_=tests.callbacks.PoisonWeights"


def sweep_dir(tmp_path) -> Path:
    return next((tmp_path / "outputs" / "train" / "multiruns").iterdir())


def read_summary(tmp_path) -> list[dict]:
    with open(sweep_dir(tmp_path) / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_failed_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    # job 0 diverges in its first epoch (weights poisoned to NaN), job 1 never does
    result = run("train.py", "-m", POISON, "+callbacks.poison.at_epoch=0,99", "trainer.max_epochs=1", *QUIET,
                 cwd=tmp_path)
    assert result.returncode == 0, output(result)
    rows = read_summary(tmp_path)
    assert [row["status"] for row in rows] == ["failed", "completed"]
    assert "NaN or infinite at step 0" in rows[0]["error"]
    assert float(rows[1]["test/acc"]) > 0.5 and "at_epoch=99" in rows[1]["overrides"]


@pytest.mark.slow  # half a minute: three sweeps of two jobs (test-all); sweeps themselves run by default
def test_a_sweep_run_again_into_its_directory_skips_the_jobs_that_completed(tmp_path):
    sweep = ["-m", "optimizer.lr=1e-3,3e-4", "trainer.max_epochs=1", f"sweep_dir={tmp_path / 'sweep'}", *QUIET]
    first = run("train.py", *sweep, cwd=tmp_path)
    assert first.returncode == 0, output(first)
    jobs = [tmp_path / "sweep" / str(job) for job in (0, 1)]
    kept = (jobs[1] / "metrics.json").read_text()
    assert json.loads(kept)["status"] == "completed"
    crashed = json.dumps({"status": "failed", "error": "killed"})
    (jobs[0] / "metrics.json").write_text(crashed)
    # Run again as before, the crashed job would start over the checkpoints it wrote: it is refused, left as it was.
    refused = run("train.py", *sweep, cwd=tmp_path)
    assert refused.returncode == 0, output(refused)
    assert "pass ckpt_path=last (or ckpt_path=auto)" in output(refused)
    assert (jobs[0] / "metrics.json").read_text() == crashed
    again = run("train.py", *sweep, "ckpt_path=auto", cwd=tmp_path)
    assert again.returncode == 0, output(again)
    assert "Job 1 completed before" in output(again) and "Job 0 completed before" not in output(again)
    assert "resuming from" in output(again)
    assert (jobs[1] / "metrics.json").read_text() == kept  # not run again
    assert json.loads((jobs[0] / "metrics.json").read_text())["status"] == "completed"
    with open(tmp_path / "sweep" / "summary.csv") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["completed", "completed"]


@pytest.mark.slow  # half a minute of Optuna trials (test-all); the search space and pruning are tested by default
def test_optuna_study_in_sqlite_resumes_and_records_failed_and_pruned_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = ["hparams_search=mnist_optuna", "data=digits", "trainer.max_epochs=3", "hydra.sweeper.n_trials=2",
              "hydra.sweeper.sampler.n_startup_trials=1", f"hydra.sweeper.storage={storage}", *QUIET]
    failing = run("train.py", *search, POISON, cwd=tmp_path)
    assert failing.returncode == 0, output(failing)
    # every trial trails a threshold no accuracy reaches: pruned after its second epoch
    prune_all = "+hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 1.1, n_warmup_steps: 1}"
    resumed = run("train.py", *search, "~hydra.sweeper.pruner", prune_all, cwd=tmp_path)
    assert resumed.returncode == 0, output(resumed)

    import optuna

    trials = optuna.load_study(study_name="mnist_mlp", storage=storage).trials
    assert [trial.number for trial in trials] == [0, 1, 2, 3]  # the second run continued the stored study
    assert [trial.state.name for trial in trials] == ["FAIL", "FAIL", "PRUNED", "PRUNED"]
    runs = list((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    (jobs,) = [path for path in runs if (path / "2").exists()]  # job directories are named by trial
    with open(jobs / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(row["job"], row["status"]) for row in rows] == [("2", "pruned"), ("3", "pruned")]
    for trial, row in zip(trials[2:], rows):
        assert sorted(trial.intermediate_values) == [0, 1]
        assert float(row["val/acc"]) == pytest.approx(trial.intermediate_values[1])  # the value it was pruned on
        # what the pruned job wrote stays: the checkpoints of the epoch before
        assert torch.load(jobs / row["job"] / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0


@pytest.mark.slow  # half a minute: two sweeper processes at once
def test_two_optuna_workers_share_one_study_without_running_a_trial_twice(tmp_path):
    """What each SLURM array task of a search runs: the same command, one study in a journal file."""
    journal = tmp_path / "study.log"
    search = ["hparams_search=mnist_optuna", "data=digits", "trainer.max_epochs=1", "hydra.sweeper.n_trials=2",
              "hydra.sweeper.sampler.n_startup_trials=2", "hydra.sweeper.sampler.seed=null",
              f"sweep_dir={tmp_path / 'sweep'}", "hydra.sweeper.storage={_target_: optuna.storages.JournalStorage, "
              f"log_storage: {{_target_: optuna.storages.journal.JournalFileBackend, file_path: '{journal}'}}}}",
              *QUIET]
    env = {**os.environ, "DLBOOK_DATA_DIR": str(tmp_path / "data"), "HYDRA_FULL_ERROR": "1"}
    workers = [subprocess.Popen([sys.executable, str(ROOT / "train.py"), *search], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stdout.read()

    import optuna
    import yaml

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="mnist_mlp", storage=storage).trials
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]  # both workers' trials, in one study
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    for trial in trials:  # each trial ran once, in the directory of its number, with its own parameters
        job = tmp_path / "sweep" / str(trial.number)
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert {f"{name}={value}" for name, value in trial.params.items()} <= set(overrides)
        assert json.loads((job / "metrics.json").read_text())["val/acc_best"] == pytest.approx(trial.value)
    with open(tmp_path / "sweep" / "summary.csv") as f:
        assert sorted(row["job"] for row in csv.DictReader(f)) == ["0", "1", "2", "3"]


def test_ddp_on_two_cpu_processes(tmp_path):
    (tmp_path / "single").mkdir()
    single = run("train.py", "trainer.max_epochs=1", *QUIET, cwd=tmp_path / "single")
    assert single.returncode == 0, output(single)
    ddp = run("train.py", "trainer=ddp_cpu", "trainer.max_epochs=1", *QUIET, cwd=tmp_path)
    assert ddp.returncode == 0, output(ddp)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output(ddp)

    def summary(root):
        (run_dir,) = (root / "outputs" / "train" / "runs").iterdir()
        return json.loads((run_dir / "metrics.json").read_text())

    one, two = summary(tmp_path / "single"), summary(tmp_path)
    assert set(one) == set(two)
    # each process takes half of every global batch's worth of data: half the steps per epoch
    assert two["global_step"] == (one["global_step"] + 1) // 2
    assert two["test/acc"] > 0.5


@pytest.mark.slow  # a minute: two processes of a GAN; DDP itself is checked by test_ddp_on_two_cpu_processes
def test_gan_on_two_cpu_processes_keeps_both_nets_in_step(tmp_path):
    # Its discriminator and generator steps are separate backward passes, each through part of the model.
    ddp = run("train.py", "model=gan", "trainer=ddp_cpu", "trainer.max_epochs=2", *QUIET,
              "+callbacks.weights._target_=tests.callbacks.SaveWeightsPerRank", f"+callbacks.weights.dirpath={tmp_path}",
              cwd=tmp_path)
    assert ddp.returncode == 0, output(ddp)
    rank0, rank1 = (torch.load(tmp_path / f"rank_{rank}.pt") for rank in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name, weights in rank0.items():  # each process saw other batches: only synchronised gradients agree
        assert torch.equal(weights, rank1[name]), name
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert math.isfinite(json.loads((run_dir / "metrics.json").read_text())["val/frechet_distance"])
    assert list((run_dir / "samples").glob("step_*.png"))


@pytest.mark.parametrize("overrides, reason", [
    (["model=rbm"], "model=rbm updates its state by its own rule, which DDP would let drift apart"),
    (["model=kmeans"], "model=kmeans updates its state by its own rule"),
    (["model=dbn"], "model=dbn pretrains by a rule of its own (contrastive divergence)"),
    (["model=perceptron", "data=truth_table"], "model=perceptron updates its weights by the perceptron rule"),
    (["model=metropolis", "data=steps"], "model=metropolis draws its chains without parameters to train"),
])
def test_tasks_ddp_cannot_run_are_refused_before_the_processes_start(run_config, monkeypatch, overrides, reason):
    # The RBM's processes each updated their own weights without a word; the others failed once launched.
    def launch(*args, **kwargs):
        raise AssertionError("the DDP processes were started")

    monkeypatch.setattr(_SubprocessScriptLauncher, "launch", launch)
    with pytest.raises(DlbookError, match=f"{re.escape(reason)}.*run it in one process .*not 2"):
        train(run_config(["trainer=ddp_cpu", "trainer.max_epochs=1", *overrides]))


@pytest.mark.slow  # half a minute a model: two processes
@pytest.mark.parametrize("overrides", [["model=ae_classifier"], ["model=dbn", "model.pretrain_epochs=0"]])
def test_pretrained_classifiers_on_two_cpu_processes_keep_their_weights_in_step(tmp_path, overrides):
    # Pretraining leaves the head out, and classifying leaves out the decoder or the RBMs' visible biases: DDP
    # failed on the parameters no loss had reached.
    ddp = run("train.py", *overrides, "data=digits", "trainer=ddp_cpu", "trainer.max_epochs=2", *QUIET,
              "+callbacks.weights._target_=tests.callbacks.SaveWeightsPerRank", f"+callbacks.weights.dirpath={tmp_path}",
              cwd=tmp_path)
    assert ddp.returncode == 0, output(ddp)
    rank0, rank1 = (torch.load(tmp_path / f"rank_{rank}.pt") for rank in (0, 1))
    for name, weights in rank0.items():
        assert torch.equal(weights, rank1[name]), name


@pytest.mark.slow  # two minutes: a sweep of DDP jobs
def test_ddp_inside_a_sweep(tmp_path):
    result = run("train.py", "-m", "trainer=ddp_cpu", "optimizer.lr=1e-3,3e-4", "trainer.max_epochs=1", *QUIET,
                 cwd=tmp_path)
    assert result.returncode == 0, output(result)
    assert [row["status"] for row in read_summary(tmp_path)] == ["completed", "completed"]
    assert not (tmp_path / "outputs" / "train" / "runs").exists()  # the other ranks wrote into the jobs' dirs


def test_bf16_mixed_precision_on_cpu(run_config):
    metrics, objects = train(run_config(["trainer.precision=bf16-mixed", "trainer.max_epochs=5"]))
    assert objects["trainer"].precision == "bf16-mixed"
    assert metrics["test/acc"] > 0.8


def test_resume_after_a_crash_is_exact(run_config, tmp_path):
    setup = ["model.net.dropout=0.3", "trainer.max_epochs=3", "trainer.deterministic=true"]
    uninterrupted, _ = train(run_config(setup, run_name="whole"))
    crash = [*setup, "+callbacks.crash._target_=tests.callbacks.CrashAfterEpoch", "+callbacks.crash.epoch=0"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(run_config(crash, run_name="interrupted"))
    resumed, objects = train(run_config([*setup, "ckpt_path=last"], run_name="interrupted"))
    assert objects["trainer"].current_epoch == 3
    for name in ("train/loss", "val/loss", "val/acc", "test/acc", "test/loss"):
        assert resumed[name] == pytest.approx(uninterrupted[name], abs=1e-6), name


def test_resume_after_sigterm_mid_epoch_is_exact(run_config, tmp_path):
    setup = ["model.net.dropout=0.3", "trainer.max_epochs=2", "trainer.deterministic=true", "data.batch_size=8"]
    uninterrupted, objects = train(run_config(setup, run_name="whole"))
    steps_per_epoch = objects["trainer"].num_training_batches
    stop_at = steps_per_epoch + steps_per_epoch // 3  # a third into the second epoch
    signal_at = [*setup, "+callbacks.signal._target_=tests.callbacks.SignalAtStep", f"+callbacks.signal.step={stop_at}"]
    with pytest.raises(SIGTERMException):
        train(run_config(signal_at, run_name="interrupted"))
    last = torch.load(tmp_path / "interrupted" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == stop_at and last["epoch"] == 1
    resumed, objects = train(run_config([*setup, "ckpt_path=last"], run_name="interrupted"))
    assert objects["trainer"].global_step == 2 * steps_per_epoch  # no batch of the interrupted epoch seen twice
    # train/ means are over the whole interrupted epoch, the batches before the signal included
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "test/acc", "test/loss"):
        assert resumed[name] == pytest.approx(uninterrupted[name], abs=1e-6), name


def test_a_stop_during_validation_waits_for_its_end_and_resumes_exactly(run_config, tmp_path):
    # Lightning alone stops mid-validation and, resumed, never validates that epoch: its val metrics, its chance
    # at best.ckpt and the epoch's checkpoints were lost.
    setup = ["model.net.dropout=0.3", "trainer.max_epochs=2", "trainer.deterministic=true", "logger=csv"]
    uninterrupted, objects = train(run_config(setup, run_name="whole"))
    steps_per_epoch = objects["trainer"].num_training_batches
    assert objects["trainer"].num_val_batches[0] > 1  # so the signal lands mid-validation
    signal_at = [*setup, "+callbacks.signal._target_=tests.callbacks.SignalDuringValidation",
                 "+callbacks.signal.epoch=0"]
    with pytest.raises(SIGTERMException):
        train(run_config(signal_at, run_name="interrupted"))
    interrupted = tmp_path / "interrupted"
    last = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == steps_per_epoch
    assert torch.load(interrupted / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == 0
    resumed, objects = train(run_config([*setup, "ckpt_path=last"], run_name="interrupted"))
    assert objects["trainer"].global_step == 2 * steps_per_epoch
    for name in ("train/loss", "val/loss", "val/acc", "val/acc_best", "test/acc", "test/loss"):
        assert resumed[name] == pytest.approx(uninterrupted[name], abs=1e-6), name
    assert [int(row["epoch"]) for row in read_csv_metrics(interrupted) if row["val/acc"]] == [0, 1]


def test_a_stop_after_an_unchecked_nan_loss_keeps_the_last_good_checkpoint(run_config, tmp_path, caplog):
    # The task checks its losses every log_every_n_steps steps; a stop between two checks saved NaN weights.
    _, objects = train(run_config(["trainer.max_epochs=1", "test=false"], run_name="one_epoch"))
    steps_per_epoch = objects["trainer"].global_step
    diverging = ["trainer.max_epochs=3", "test=false", "trainer.log_every_n_steps=1000", POISON,
                 "+callbacks.poison.at_epoch=1", "+callbacks.signal._target_=tests.callbacks.SignalAtStep",
                 f"+callbacks.signal.step={steps_per_epoch + 2}"]
    with pytest.raises(SIGTERMException):
        train(run_config(diverging))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == steps_per_epoch  # epoch 0's
    assert all(torch.isfinite(weight).all() for weight in last["state_dict"].values())
    assert f"became NaN or infinite at step {steps_per_epoch}, before the SIGTERM" in caplog.text
    assert "left as it was, the last good state" in caplog.text


def test_last_checkpoint_is_the_newest_epoch_when_the_metric_stops_improving(run_config, tmp_path):
    # lr 0 from the second epoch on: val/acc never improves again, so best.ckpt stays at epoch 0
    train(run_config(["trainer.max_epochs=4", "+callbacks.freeze._target_=tests.callbacks.FreezeAfterEpoch"]))
    checkpoints = tmp_path / "run" / "checkpoints"
    best, last = (torch.load(checkpoints / f"{name}.ckpt", weights_only=True) for name in ("best", "last"))
    assert best["epoch"] == 0
    assert last["epoch"] == 3 and last["global_step"] > best["global_step"]


def test_weights_only_restore_starts_a_fresh_optimizer(run_config, tmp_path):
    train(run_config(["trainer.max_epochs=1"], run_name="first"))
    source = tmp_path / "first" / "checkpoints" / "last.ckpt"
    steps = torch.load(source, weights_only=True)["global_step"]
    _, objects = train(run_config([f"ckpt_path={source}", "ckpt_restore=weights", "optimizer.lr=0",
                                   "trainer.max_epochs=1"], run_name="finetune"))
    assert objects["trainer"].global_step == steps  # counted from zero again
    loaded = torch.load(source, weights_only=True)["state_dict"]
    for name, value in objects["model"].state_dict().items():
        if name.startswith("net."):
            assert torch.equal(value, loaded[name]), name  # lr 0: the weights are the checkpoint's


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(run_config, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"at step \d+ \(epoch 1\).*last\.ckpt"):
        train(run_config(["trainer.max_epochs=3", POISON, "+callbacks.poison.at_epoch=1"]))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0  # written after the first epoch, before the weights went bad
    assert all(torch.isfinite(value).all() for value in last["state_dict"].values() if value.is_floating_point())


def start_until_first_checkpoint(command: list[str], cwd: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """A training process, once it has written its first last.ckpt."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = glob.glob(str(cwd / "outputs" / "train" / "runs" / "*" / "checkpoints" / "last.ckpt"))
        if found:
            return process, Path(found[0])
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no checkpoint appeared: {process.communicate()[0][-3000:]}")


# SIGTERM in the default run; the other two take the same path, each a training process of its own.
@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGUSR1, marks=pytest.mark.slow),
                                    pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_stop_signal_saves_the_newest_state_and_says_how_to_continue(tmp_path, signum):
    env = {**os.environ, "DLBOOK_DATA_DIR": str(tmp_path / "data")}
    process, last = start_until_first_checkpoint(
        [sys.executable, str(ROOT / "train.py"), "trainer.max_epochs=10000", *QUIET], tmp_path, env)
    epoch_end_step = torch.load(last, weights_only=True)["global_step"]
    time.sleep(1.0)  # let it train on into the next epochs
    process.send_signal(signum)
    log, _ = process.communicate(timeout=120)
    assert process.returncode == 1
    assert f"Saved a checkpoint on {signal.Signals(signum).name}" in log, log[-3000:]
    run_dir = last.parents[1]
    assert f"Continue with: python train.py trainer.max_epochs=10000 {' '.join(QUIET)} ckpt_path=last " \
           f"run_dir={run_dir}" in log
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["global_step"] > epoch_end_step and "optimizer_states" in checkpoint


def test_slurm_job_saves_on_submitits_signal_is_requeued_once_and_resumes(tmp_path):
    # What a SLURM task of one process sees; submitit warns it with SIGUSR2 before its time limit.
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
             "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
             "SLURM_NODELIST": "localhost", "SLURM_JOB_NODELIST": "localhost"}
    env = {**os.environ, **slurm, "DLBOOK_DATA_DIR": str(tmp_path / "data")}
    job = [sys.executable, str(ROOT / "tests" / "slurm_job.py"), str(tmp_path)]
    process, last = start_until_first_checkpoint([*job, "trainer.max_epochs=10000", *QUIET], tmp_path, env)
    epoch_end_step = torch.load(last, weights_only=True)["global_step"]
    time.sleep(1.0)
    process.send_signal(signal.SIGUSR2)
    log, _ = process.communicate(timeout=120)
    assert "Saved a checkpoint on SIGUSR2" in log, log[-3000:]
    assert (tmp_path / "requeued").exists() and "Exiting gracefully after preemption" in log  # submitit requeued
    assert "requeing job" not in log  # and Lightning did not
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] > epoch_end_step

    # The requeued job runs the same command line into its directory (as a sweep job does), now restart 1.
    run_dir = last.parents[1]
    epochs = saved["epoch"] + 2
    resumed = subprocess.run([*job, f"trainer.max_epochs={epochs}", f"run_dir={run_dir}", *QUIET], cwd=tmp_path,
                             env={**env, "SLURM_RESTART_COUNT": "1"}, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, output(resumed)
    assert f"resuming from {last}" in output(resumed)
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == epochs


def test_resume_continues_an_online_wandb_run_and_starts_a_resume_run_offline(run_config, tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    train(run_config(["logger=wandb", "trainer.max_epochs=1"]))
    run_id = (tmp_path / "run" / "wandb_run_id").read_text().strip()
    for epochs in (2, 3):
        train(run_config(["logger=wandb", f"trainer.max_epochs={epochs}", "ckpt_path=last"]))
    assert (tmp_path / "run" / "wandb_run_id").read_text().strip() == run_id
    runs = sorted(Path(path).name.split("-", 3)[-1] for path in glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*")))
    # offline: each resume is its own run, so `wandb sync` uploads all three side by side
    assert runs == [run_id, f"{run_id}-resume1", f"{run_id}-resume2"]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["dlbook_config"]["config"]["resumes_wandb_run"] == run_id
    assert last["dlbook_config"]["config"]["logger"]["wandb"]["id"] == f"{run_id}-resume2"

    online = run_config(["logger=wandb", "logger.wandb.offline=false", "ckpt_path=last"])  # composed, not run
    continue_wandb_run(online, str(tmp_path / "run"))
    assert (online.logger.wandb.id, online.logger.wandb.resume) == (run_id, "allow")


def test_slurm_launcher_config(run_config):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from dlbook.utils.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2",
                                          "trainer.devices=8"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)


@pytest.mark.slow  # a sweep with W&B's writer process per job (test-all); W&B offline runs are tested by default
def test_each_sweep_job_gets_its_own_wandb_run(tmp_path):
    env_free = {name: value for name, value in os.environ.items() if not name.startswith("WANDB_")}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "optimizer.lr=1e-3,3e-4",
                             "trainer.max_epochs=1", "logger=wandb", "extras.print_config=false",
                             "++trainer.enable_progress_bar=false"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**env_free, "HOME": str(tmp_path), "DLBOOK_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, output(result)
    jobs = sweep_dir(tmp_path)
    ids = [(jobs / job / "wandb_run_id").read_text().strip() for job in ("0", "1")]
    assert ids[0] != ids[1]
    for job, run_id in zip(("0", "1"), ids):
        assert glob.glob(str(jobs / job / "wandb" / f"offline-run-*-{run_id}"))


def test_gan_in_bf16_mixed_on_cpu(run_config, tmp_path):
    train(run_config(["model=gan", "trainer.precision=bf16-mixed", "trainer.max_epochs=2", "logger=csv"]))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        losses = [float(row["train/g_loss"]) for row in csv.DictReader(f) if row.get("train/g_loss")]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_optuna_search_space_from_sweep_overrides():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.dlbook_optuna_sweeper.optuna_sweeper import search_space

    space, fixed = search_space(["optimizer.lr=tag(log, interval(1e-4, 1e-2))", "model.net.dropout=interval(0, 0.5)",
                                 "data.batch_size=choice(32, 64)", "model.net.hidden_sizes=choice([128], [256, 128])",
                                 "seed=range(1, 4)", "+layers=int(interval(1, 3))", "trainer.max_epochs=2", "~tune",
                                 "model.net.dropout=0.1"])  # the command line fixing what the config searches
    assert space == {"optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
                     "data.batch_size": CategoricalDistribution([32, 64]),
                     "model.net.hidden_sizes": CategoricalDistribution(["[128]", "[256,128]"]),
                     "seed": CategoricalDistribution([1, 2, 3]), "+layers": IntDistribution(1, 3)}
    assert fixed == ["trainer.max_epochs=2", "~tune", "model.net.dropout=0.1"]


def test_the_searches_configure_the_optuna_sweeper():
    """Every key of each hparams_search config is one the sweeper takes, its sampler and pruner ones that the
    installed Optuna builds, and the classifier search's trials report the monitored metric to its pruner."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from dlbook.utils.config import config_dir
    from hydra_plugins.dlbook_optuna_sweeper.optuna_sweeper import OptunaSweeper

    for search in sorted((Path(config_dir()) / "hparams_search").glob("*.yaml")):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=[f"hparams_search={search.stem}"], return_hydra_config=True)
        sweeper = instantiate(cfg.hydra.sweeper)
        assert type(sweeper).__qualname__ == OptunaSweeper.__qualname__  # (Hydra's plugin scan loads its own copy)
        assert sweeper.direction == {"max": "maximize", "min": "minimize"}[cfg.monitor_mode], search.name
        if search.stem == "mnist_optuna":  # a GAN's distance is measured after validation, where pruning reads
            assert type(sweeper.pruner).__name__ == "MedianPruner"
            assert cfg.callbacks.optuna_pruning.monitor == cfg.monitor


@pytest.fixture
def trials():
    """The sweeper's record of the trials it runs in this process, emptied after the test."""
    from dlbook.callbacks.optuna_pruning import TRIALS

    yield TRIALS
    TRIALS.clear()


def test_a_pruned_trial_keeps_its_checkpoints_and_metrics(run_config, tmp_path, trials):
    import optuna
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import read_write

    from dlbook.utils.entry import guarded

    # every trial trails a threshold no accuracy reaches: pruned after its second epoch
    pruner = optuna.pruners.ThresholdPruner(lower=1.1, n_warmup_steps=1)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trials[0] = study.ask()
    cfg = run_config(["trainer.max_epochs=3", "+trainer.limit_train_batches=3", "logger=csv",
                      "+callbacks.optuna_pruning._target_=dlbook.callbacks.optuna_pruning.OptunaPruning",
                      "+callbacks.optuna_pruning.monitor=val/acc"], run_name="0")
    with read_write(HydraConfig.get()):  # a job of a sweep
        HydraConfig.get().mode, HydraConfig.get().sweep.dir = RunMode.MULTIRUN, str(tmp_path)
    assert guarded(train, cfg) is None
    reported = study.trials[0].intermediate_values
    summary = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert summary["status"] == "pruned" and summary["pruned"] == "Trial was pruned at epoch 1."
    assert sorted(reported) == [0, 1] and summary["val/acc"] == pytest.approx(reported[1])
    assert torch.load(tmp_path / "0" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    with open(tmp_path / "0" / "csv" / "metrics.csv") as f:
        assert {row["epoch"] for row in csv.DictReader(f) if row.get("val/acc")} == {"0", "1"}
    with open(tmp_path / "summary.csv") as f:
        assert [(row["job"], row["status"]) for row in csv.DictReader(f)] == [("0", "pruned")]


def test_the_pruning_callback_needs_a_trial_of_one_process(run_config, trials):
    import optuna

    from dlbook.callbacks.optuna_pruning import OptunaPruning
    from dlbook.errors import DlbookError

    run_config()
    with pytest.raises(DlbookError, match="this job has none"):
        OptunaPruning("val/acc")
    trials[0] = optuna.create_study().ask()
    with pytest.raises(DlbookError, match="trainer.strategy=ddp starts several"):
        OptunaPruning("val/acc", strategy="ddp")
