"""Classifiers on tables and truth tables: softmax regression on iris, logistic regression (one logit) on breast
cancer, the XOR MLP and its linear-hidden ablation, the decision-region figures, the refusals, and the DL
Workshop's OR unit with its loss as the book computes it."""

import re

import pytest
import torch
from torch.nn import functional

from dlbook.assembly import build_datamodule, build_task
from dlbook.errors import DlbookError
from dlbook.train import train

# XOR in a few hundred full-batch steps: Adam at a large rate, validation and last.ckpt not after every epoch.
FAST_XOR = ("model=xor_mlp", "data=truth_table", "data.table=xor", "optimizer.lr=0.1", "trainer.max_epochs=300",
            "trainer.check_val_every_n_epoch=100", "callbacks.last_checkpoint=null", "monitor=val/loss",
            "monitor_mode=min")


def test_softmax_regression_classifies_iris(run_config, tmp_path):
    # 12 validation flowers: an early epoch ties the best val/acc, so best.ckpt (what is tested) is by val/loss.
    cfg = run_config(["model=softmax_regression", "data=iris", "optimizer.lr=0.05", "trainer.max_epochs=15",
                      "monitor=val/loss", "monitor_mode=min"])
    metrics, objects = train(cfg)
    assert metrics["test/acc"] > 0.9  # chance is 1/3
    assert metrics["train/loss"] < 0.5 * 1.0986  # ln 3, where the loss starts
    figures = sorted(path.name for path in (tmp_path / "run" / "figures").glob("*.png"))
    assert figures == ["confusion_matrix.png"]  # four features: no decision regions to draw


def test_logistic_regression_beats_the_majority_class_on_breast_cancer(run_config):
    metrics, objects = train(run_config(["model=logistic_regression", "data=breast_cancer", "optimizer.lr=0.01",
                                         "trainer.max_epochs=5"]))
    task, datamodule = objects["model"], objects["datamodule"]
    features, labels = datamodule.data_test.tensors
    majority = max(labels.float().mean().item(), 1 - labels.float().mean().item())
    assert metrics["test/acc"] > majority + 0.2  # 0.63 for always "benign"
    assert task(features).shape == (len(labels), 1)  # one logit
    assert set(task.predict_step((features, labels), 0).unique().tolist()) == {0, 1}


def test_xor_mlp_learns_xor_and_draws_its_decision_regions(run_config, tmp_path):
    metrics, _ = train(run_config(FAST_XOR))
    assert metrics["test/acc"] == 1.0
    assert max(metrics["test/p_row0"], metrics["test/p_row3"]) < 0.2 < 0.8 < min(metrics["test/p_row1"],
                                                                                  metrics["test/p_row2"])
    figures = sorted(path.name for path in (tmp_path / "run" / "figures").glob("*.png"))
    assert figures == ["confusion_matrix.png", "decision_regions_test.png", "decision_regions_train.png"]


def test_xor_mlp_with_a_linear_hidden_layer_cannot_learn_xor(run_config):
    metrics, _ = train(run_config([*FAST_XOR, "model.net.activation=identity"]))
    assert metrics["test/acc"] <= 0.75  # no affine function separates XOR's classes
    assert metrics["test/loss"] > 0.69  # about ln 2: every row near 0.5 at best


@pytest.mark.parametrize("model, data, reason, fitting", [
    ("logistic_regression", "iris", "its one logit separates two classes; the data has 3",
     {"breast_cancer", "truth_table"}),
    ("mlp", "diabetes", "it predicts classes; the data has 1 numeric target to regress and no classes",
     {"breast_cancer", "digits", "digits_vectors", "iris", "mnist", "truth_table", "wine"}),
])
def test_mismatched_tables_are_refused(run_config, model, data, reason, fitting):
    cfg = run_config([f"model={model}", f"data={data}"])
    choices = {"model": model, "data": data}
    with pytest.raises(DlbookError, match=f"model={model} does not fit data={data} .*: {reason}. ") as error:
        build_task(cfg, build_datamodule(cfg, choices).spec, choices)
    listed = re.search(rf"Data choices that fit model={model}: ([^;.]*)", str(error.value)).group(1).split(", ")
    assert fitting <= set(listed) and data not in listed and "diabetes" not in listed


@pytest.mark.parametrize("model, option, message", [
    ("softmax_regression", "+model.row_probabilities=4", "model.row_probabilities=4 .* set model.binary=true"),
    ("logistic_regression", "+model.label_smoothing=0.1", "model.label_smoothing=0.1 smooths softmax targets"),
])
def test_options_that_need_softmax_or_one_logit_are_refused(run_config, model, option, message):
    cfg = run_config([f"model={model}", "data=truth_table", option])
    with pytest.raises(DlbookError, match=message):
        build_task(cfg, build_datamodule(cfg).spec, {"model": model, "data": "truth_table"})


def test_the_workshop_or_unit_gets_the_books_weights_only_with_its_double_sigmoid(run_config):
    """The book's loss, sigmoid_cross_entropy_with_logits(labels=y, logits=sigmoid(z)), takes the sigmoid twice;
    1,000 SGD steps from zero on it give the printed W = [0.412449, 0.412449], b = 0.236066. The BCE of the logit,
    which the task trains on, goes further in the same steps."""
    cfg = run_config(["experiment=or_sigmoid_unit_workshop"])
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    features, labels = datamodule.data_train.tensors
    fitted = {}
    for loss in ("book", "task"):
        task = build_task(cfg, datamodule.spec, {"model": "logistic_regression", "data": "truth_table"})
        optimizer = task.configure_optimizers()
        for _ in range(cfg.trainer.max_epochs):
            logits = task(features)[:, 0]
            value = (functional.binary_cross_entropy_with_logits(torch.sigmoid(logits), labels.float())
                     if loss == "book" else task.criterion(logits, labels.float()))
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        layer = task.net.layers[1]
        fitted[loss] = [*layer.weight.flatten().tolist(), layer.bias.item()]
    assert fitted["book"] == pytest.approx([0.412449, 0.412449, 0.236066], abs=1e-5)
    assert fitted["task"] == pytest.approx([1.1129, 1.1129, 0.3258], abs=1e-3)
