"""Tabular data and the regression task: a linear regression trained on the bundled diabetes table, standardisation
on the training rows only, eval.py, refused model/data pairs, and the Boston housing file reader."""

import csv
import math
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbook.assembly import build_datamodule, build_task
from dlbook.errors import DatasetNotFoundError, DlbookError
from dlbook.eval import evaluate
from dlbook.train import train
from dlbook.utils.config import instantiate
from tests.datasets import SHARED_DATA

BOSTON_COLUMNS = 14


def write_boston(data_dir: Path, rows: int = 40) -> np.ndarray:
    """A housing.data in UCI's layout: 14 whitespace-separated numbers a line, MEDV last."""
    generator = np.random.default_rng(0)
    features = generator.normal(size=(rows, BOSTON_COLUMNS - 1)) * 10 + 50
    values = np.column_stack([features, features @ generator.normal(size=BOSTON_COLUMNS - 1) / 10 + 20])
    path = data_dir / "boston_housing" / "housing.data"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(" " + " ".join(f"{value:8.4f}" for value in row) for row in values) + "\n")
    return values


def datamodule_of(run_config, overrides):
    datamodule = build_datamodule(run_config(overrides))
    datamodule.setup("fit")
    datamodule.setup("test")
    return datamodule


def test_linear_regression_learns_diabetes_and_eval_reproduces_it(run_config, tmp_path):
    cfg = run_config(["data=diabetes", "model=linear_regression", "optimizer=sgd", "optimizer.lr=0.05",
                      "trainer.max_epochs=30", "logger=csv"])
    trained, objects = train(cfg)
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        losses = [float(row["train/loss"]) for row in csv.DictReader(f) if row["train/loss"]]
    assert len(losses) == 30 and losses[-1] < 0.7 * losses[0]

    datamodule = objects["datamodule"]
    spec = datamodule.spec
    train_mean, std = spec.target_mean[0], spec.target_std[0]
    test_targets = datamodule.data_test.tensors[1] * std + train_mean  # in the original units
    baseline = (test_targets - train_mean).square().mean().sqrt().item()  # always predicting the training mean
    assert trained["test/rmse"] < 0.8 * baseline
    assert 0.3 < trained["test/r2"] < 1
    # The loss is the MSE of standardised targets; RMSE, MAE and the training MSE are in the original units.
    assert trained["test/rmse"] == pytest.approx(math.sqrt(trained["test/loss"]) * std, rel=1e-4)
    assert trained["train/mse"] == pytest.approx(trained["train/loss"] * std ** 2, rel=1e-4)
    assert trained["test/mae"] < trained["test/rmse"]
    assert trained[cfg.optimized_metric] <= trained["val/rmse"]

    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    evaluated, _ = evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="eval"))
    assert evaluated["test/rmse"] == pytest.approx(trained["test/rmse"], rel=1e-6)
    assert evaluated["test/r2"] == pytest.approx(trained["test/r2"], rel=1e-6)


def test_standardisation_uses_the_training_rows_only(run_config):
    datamodule = datamodule_of(run_config, ["data=diabetes"])
    sizes = [len(dataset) for dataset in (datamodule.data_train, datamodule.data_val, datamodule.data_test)]
    assert sizes == [319, 35, 88]  # 442 rows: a fifth held out for test, a tenth of the rest for validation
    train_features, train_targets = datamodule.data_train.tensors
    for values in (train_features, train_targets):
        assert torch.allclose(values.mean(0), torch.zeros(values.shape[1]), atol=1e-5)
        assert torch.allclose(values.std(0, correction=0), torch.ones(values.shape[1]), atol=1e-4)
    for dataset in (datamodule.data_val, datamodule.data_test):
        features, targets = dataset.tensors
        assert features.mean(0).abs().max() > 0.05 and targets.mean().abs() > 1e-3

    # eval.py sets up the test stage only: the statistics still come from the same training rows.
    testing_only = build_datamodule(run_config(["data=diabetes"]))
    testing_only.setup("test")
    for fitted, tested in zip(datamodule.data_test.tensors, testing_only.data_test.tensors):
        assert torch.equal(fitted, tested)
    assert testing_only.spec == datamodule.spec


@pytest.mark.parametrize("model, data, message", [
    ("linear_regression", "iris", "it regresses numeric targets; the data has 3 classes. Data choices that fit "
                                  "model=linear_regression: boston_housing, .*diabetes"),
    ("mlp", "diabetes", "it predicts classes; the data has 1 numeric target to regress and no classes. Data "
                        "choices that fit model=mlp: .*iris"),
])
def test_mismatched_model_and_data_are_refused(run_config, model, data, message):
    cfg = run_config([f"model={model}", f"data={data}"])
    with pytest.raises(DlbookError, match=f"model={model} does not fit data={data} \\(tabular, .*\\): {message}"):
        build_task(cfg, build_datamodule(cfg).spec, {"model": model, "data": data})


def test_boston_housing_file_is_read(run_config, tmp_path):
    values = write_boston(tmp_path / "data")
    datamodule = datamodule_of(run_config, ["data=boston_housing", "data.download=false"])
    assert datamodule.table.features.shape == (40, 13)
    assert torch.allclose(datamodule.table.targets[:, 0], torch.from_numpy(values[:, -1]).float())
    spec = datamodule.spec
    assert (spec.num_features, spec.num_targets, spec.target_names) == (13, 1, ("MEDV",))
    assert spec.num_features == type(datamodule).fixed_spec(run_config(["data=boston_housing"]).data).num_features
    assert sum(len(d) for d in (datamodule.data_train, datamodule.data_val, datamodule.data_test)) == 40
    trained, _ = train(run_config(["data=boston_housing", "data.download=false", "model=linear_regression",
                                   "trainer.max_epochs=2"]))
    assert math.isfinite(trained["test/rmse"])


def set_value(path: Path, line: int, column: int, value: str) -> None:
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split()
    fields[column] = value
    lines[line - 1] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")


def make_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage, message", [
    (lambda path: set_value(path, 3, 0, "nan"), r"{path}, line 3: column CRIM holds 'nan', which is no finite number; "
                                                r"expected boston_housing/housing.data \(whitespace-separated numbers"),
    (lambda path: set_value(path, 5, 13, "1e999"), r"{path}, line 5: column MEDV holds '1e999', which is no finite"),
    (lambda path: path.write_text(path.read_text()[:-50]), r"{path}, line 40: \d+ values where 14 are expected"),
    (lambda path: path.write_text(""), r"{path} is empty; expected boston_housing/housing.data"),
    (make_folder, r"{path} is a folder; expected the file boston_housing/housing.data"),
])
def test_a_damaged_boston_housing_file_names_line_column_and_value(run_config, tmp_path, damage, message):
    write_boston(tmp_path / "data")
    path = tmp_path / "data" / "boston_housing" / "housing.data"
    damage(path)
    with pytest.raises(DlbookError, match=message.format(path=path)) as error:
        datamodule_of(run_config, ["data=boston_housing", "data.download=false"])
    assert "\n" not in str(error.value)


def test_boston_housing_without_test_rows_refuses_to_test(run_config, tmp_path):
    write_boston(tmp_path / "data")
    datamodule = datamodule_of(run_config, ["data=boston_housing", "data.download=false", "data.test_fraction=0"])
    assert len(datamodule.data_train) == 36
    with pytest.raises(DlbookError, match="holds out no test rows .* set test=false"):
        datamodule.test_dataloader()


def test_missing_boston_housing_offline_names_file_and_layout(run_config, tmp_path, monkeypatch):
    asked = []

    def offline(request):
        asked.append(request.full_url)
        raise OSError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    datamodule = instantiate(run_config(["data=boston_housing"]).data)
    with pytest.raises(DatasetNotFoundError) as error:
        datamodule.prepare_data()
    assert asked == ["https://archive.ics.uci.edu/ml/machine-learning-databases/housing/housing.data"]
    message = str(error.value)
    assert "\n" not in message
    assert "downloading it failed (OSError: no network)" in message
    assert "Missing (1, under that folder): boston_housing/housing.data." in message
    assert "boston_housing/housing.data (whitespace-separated numbers, 14 columns: CRIM ZN" in message


@pytest.mark.skipif(not (SHARED_DATA / "boston_housing" / "housing.data").exists(),
                    reason="no copy of Boston housing beside the checkout")
def test_real_boston_housing(run_config):
    datamodule = datamodule_of(run_config, [f"paths.data_dir={SHARED_DATA}", "data=boston_housing",
                                            "data.download=false"])
    assert datamodule.table.features.shape == (506, 13)
    assert datamodule.table.targets.mean().item() == pytest.approx(22.5328, abs=1e-4)  # MEDV in $1000s
