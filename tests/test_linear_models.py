"""Linear models: linear regression by least squares and by gradient descent agree, the absolute loss, the
Workshop's line fit, the cost before the first step, min-max scaling, the regression fit figure, and the
perceptron rule, which separates AND, OR and AB + BC and never stops erring on XOR."""

import csv

import numpy as np
import pytest
import torch

from dlbook.assembly import build_datamodule, build_task
from dlbook.errors import DlbookError
from dlbook.train import train

# Three of diabetes' columns, correlated but far from collinear: gradient descent reaches the least-squares fit in
# tens of full-batch steps.
DIABETES_3 = ["data=diabetes", "data.features=[bmi,bp,s5]", "data.batch_size=512", "model=linear_regression"]
TRUTH_TABLE = ["data=truth_table", "model=perceptron", "trainer.max_epochs=40", "logger=csv"]


def csv_column(run_dir, name: str) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


def test_least_squares_and_gradient_descent_agree(run_config, tmp_path):
    solved, solved_objects = train(run_config([*DIABETES_3, "model.solver=least_squares", "optimizer=none",
                                               "trainer.max_epochs=1"], run_name="solved"))
    descended, descended_objects = train(run_config([*DIABETES_3, "optimizer=sgd", "optimizer.lr=0.3",
                                                     "trainer.max_epochs=30"], run_name="descended"))
    exact, fitted = solved_objects["model"].net.layer, descended_objects["model"].net.layer
    assert torch.allclose(fitted.weight, exact.weight, atol=1e-4)
    assert torch.allclose(fitted.bias, exact.bias, atol=1e-4)
    assert descended["test/rmse"] == pytest.approx(solved["test/rmse"], rel=1e-4)
    # The solution is numpy's least-squares fit of the (scaled) training rows, and training does not move it.
    features, targets = solved_objects["datamodule"].data_train.tensors
    design = np.column_stack([features.numpy(), np.ones(len(features))])
    solution = np.linalg.lstsq(design, targets.numpy(), rcond=None)[0][:, 0]
    assert np.allclose(exact.weight.detach().numpy()[0], solution[:-1], atol=1e-5)
    assert exact.bias.item() == pytest.approx(solution[-1], abs=1e-5)
    assert solved["train/mse"] == pytest.approx(solved["train_start/mse"], rel=1e-5)
    assert descended["train_start/mse"] > 1.5 * descended["train/mse"] >= 1.5 * solved["train/mse"] * (1 - 1e-5)
    assert (tmp_path / "solved" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("overrides, message", [
    (["model=linear_regression", "optimizer=adam"],
     "model.solver=least_squares solves a linear net .* optimizer set and net Linear"),
    (["model=linear_regression", "optimizer=none", "model.loss=mae"], "model.loss=mae"),
    (["model=mlp_regressor", "optimizer=none"], "net MLPRegressor"),
])
def test_least_squares_needs_a_linear_net_mse_and_no_optimizer(run_config, overrides, message):
    cfg = run_config(["data=diabetes", *overrides, "++model.solver=least_squares"])
    with pytest.raises(DlbookError, match=message):
        build_task(cfg, build_datamodule(cfg).spec, {"model": "linear_regression", "data": "diabetes"})


def test_absolute_loss_trains(run_config, tmp_path):
    trained, objects = train(run_config([*DIABETES_3, "model.loss=mae", "optimizer=sgd", "optimizer.lr=0.5",
                                         "trainer.max_epochs=30", "logger=csv"]))
    losses = csv_column(tmp_path / "run", "train/loss")
    assert losses[-1] < 0.8 * losses[0]
    spec = objects["datamodule"].spec
    test_targets = objects["datamodule"].data_test.tensors[1] * spec.target_std[0]  # from the training mean
    assert trained["test/mae"] < 0.85 * test_targets.abs().mean().item()
    # The loss is the mean absolute error of the scaled targets.
    assert trained["test/loss"] * spec.target_std[0] == pytest.approx(trained["test/mae"], rel=1e-4)
    assert (tmp_path / "run" / "figures" / "regression_fit_test.png").exists()  # predicted against actual


def test_line_fit_lands_near_the_workshops_line(run_config, tmp_path):
    # The book's run is 1,000 Adam steps of 0.01 (test_line_fit_workshop_matches_the_book); 80 of 0.08 get close.
    trained, _ = train(run_config(["experiment=line_fit_workshop", "optimizer.lr=0.08", "trainer.max_epochs=80"]))
    assert trained["param/net.layer.weight"] == pytest.approx(-1.0, abs=0.02)
    assert trained["param/net.layer.bias"] == pytest.approx(1.0, abs=0.02)
    assert trained["train_start/mse"] == pytest.approx(3.5)  # w = b = 0: the mean of 0, 1, 4, 9
    assert (tmp_path / "run" / "figures" / "regression_fit_training.png").exists()  # the points and the line


@pytest.mark.slow
def test_line_fit_workshop_matches_the_book(run_config):
    trained, _ = train(run_config(["experiment=line_fit_workshop"]))
    assert trained["param/net.layer.weight"] == pytest.approx(-1.00371706, abs=1e-6)
    assert trained["param/net.layer.bias"] == pytest.approx(0.999803364, abs=1e-5)


def test_cost_before_the_first_step_is_that_of_theta_zero(run_config):
    trained, objects = train(run_config(["experiment=randn_regression_hands_on", "trainer.max_epochs=2"]))
    targets = objects["datamodule"].data_train.tensors[1]
    assert len(targets) == 500
    assert trained["train_start/mse"] == pytest.approx(targets.square().mean().item(), rel=1e-6)


def test_minmax_scaling_uses_the_training_rows_only(run_config):
    datamodule = build_datamodule(run_config(["data=diabetes", "data.scaling=minmax"]))
    datamodule.setup("fit")
    datamodule.setup("test")
    for values in datamodule.data_train.tensors:  # the training rows span [0, 1] exactly
        assert torch.equal(values.min(0).values, torch.zeros(values.shape[1]))
        assert torch.allclose(values.max(0).values, torch.ones(values.shape[1]))
    scaling, table = datamodule.scaling, datamodule.table
    # Their minimum and range, not those of every row: the test rows are scaled with them, not refitted.
    assert (scaling.feature_offset > table.features.min(0).values).any()
    raw_features, raw_targets = datamodule.load_split("test")
    test_features, test_targets = datamodule.data_test.tensors
    assert torch.allclose(test_features, (raw_features - scaling.feature_offset) / scaling.feature_scale)
    assert torch.allclose(test_targets, (raw_targets - scaling.target_offset) / scaling.target_scale)
    assert test_features.min() < 0 or test_features.max() > 1 or (test_features.min(0).values > 0).any()
    assert datamodule.spec.target_mean == tuple(scaling.target_offset.tolist())  # predictions back in $ units
    with pytest.raises(DlbookError, match="data.scaling='robust' is not one of standard, minmax, none"):
        build_datamodule(run_config(["data=diabetes", "data.scaling=robust"]))


@pytest.mark.parametrize("table, rule", [("and", "batch"), ("or", "online"), ("ab_plus_bc", "batch")])
def test_perceptron_rule_separates_a_separable_table(run_config, tmp_path, table, rule):
    trained, objects = train(run_config([*TRUTH_TABLE, f"data.table={table}", f"model.rule={rule}"]))
    assert trained["train/mean_error"] == 0 and trained["test/acc"] == 1
    epoch = trained["train/converged_epoch"]
    errors = csv_column(tmp_path / "run", "train/mean_error")
    assert len(errors) == epoch < 40  # it stopped once it made no error
    assert errors[-1] == 0 and min(errors[:-1]) > 0
    assert (tmp_path / "run" / "figures" / "decision_regions_train.png").exists() == (table != "ab_plus_bc")


def test_perceptron_rule_never_separates_xor(run_config, tmp_path):
    trained, _ = train(run_config([*TRUTH_TABLE, "data.table=xor"]))
    assert "train/converged_epoch" not in trained
    errors = csv_column(tmp_path / "run", "train/mean_error")
    assert len(errors) == 40 and min(errors) >= 0.25  # at least one of the four rows is always wrong
    assert trained["test/acc"] <= 0.75


def test_perceptron_batch_rule_is_the_books_update(run_config):
    cfg = run_config(["data=truth_table", "data.table=ab_plus_bc", "model=perceptron"])
    datamodule = build_datamodule(cfg)
    task = build_task(cfg, datamodule.spec, {"model": "perceptron", "data": "truth_table"})
    datamodule.setup("fit")
    features, labels = datamodule.data_train.tensors
    before = task.net.weight.clone()
    inputs = torch.cat([features, torch.ones(8, 1)], dim=1)  # the bias input last, as in the book
    errors = labels.float() - (inputs @ before >= 0).float()
    task.log_epoch_mean = lambda *args: None  # no trainer to log to
    task.optimizers = lambda: type("Placeholder", (), {"step": lambda self: None})()
    task.training_step((features, labels), 0)
    assert torch.allclose(task.net.weight, before + 0.4 * inputs.T @ errors)
