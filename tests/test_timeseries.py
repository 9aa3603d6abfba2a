"""Time series as sliding windows: the chronological split and the scaling fitted on the training values only, the
errors of a bad file, one series of a long table, the sequence regressors beating the last-value baseline on a
seasonal series written in the real files' format, eval.py, refused model/data pairs, and the real files."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbook.assembly import build_datamodule, build_task
from dlbook.errors import DlbookError
from dlbook.eval import evaluate
from dlbook.train import train
from tests.datasets import SHARED_DATA


def write_series(path: Path, values, header=("Month", "Passengers")) -> Path:
    """A CSV file as the classic series come: quoted header and dates, one value a line, no final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(f'"{name}"' for name in header)]
    lines += [f'"{2000 + index // 12}-{index % 12 + 1:02d}",{value}' for index, value in enumerate(values)]
    path.write_text("\n".join(lines))
    return path


def seasonal(length: int = 240, seed: int = 0) -> np.ndarray:
    """A noisy sine of period 12 on a slow trend, like monthly sales: tomorrow is not today's value."""
    steps = np.arange(length)
    noise = np.random.default_rng(seed).normal(scale=0.1, size=length)
    return np.round(10 + 0.01 * steps + 2 * np.sin(2 * np.pi * steps / 12) + noise, 3)


def series_data(path: Path, *overrides) -> list[str]:
    return ["data=timeseries", f"data.path={path}", "data.column=Passengers", "data.date_column=Month", *overrides]


def datamodule_of(run_config, overrides):
    datamodule = build_datamodule(run_config(overrides))
    datamodule.setup("fit")
    return datamodule


def test_windows_split_chronologically_and_scale_with_training_values(run_config, tmp_path):
    values = 100.0 + np.arange(60)  # rising: later parts lie above the training values' range
    path = write_series(tmp_path / "rising.csv", values)
    datamodule = datamodule_of(run_config, series_data(path, "data.window=5", "data.horizon=2",
                                                       "data.test_fraction=0.2", "data.val_fraction=0.25"))
    # 60 values: the last 12 are test targets, the last 12 of the first 48 validation targets, 36 train
    spec = datamodule.spec
    assert (spec.window, spec.horizon, spec.input_shape) == (5, 2, (5, 1))
    assert spec.target_names == ("Passengers (t+1)", "Passengers (t+2)")
    assert spec.target_mean == (100.0, 100.0) and spec.target_std == (35.0, 35.0)  # minmax of values 100..135
    splits = {split: getattr(datamodule, f"data_{split}").tensors for split in ("train", "val", "test")}
    starts = {split: datamodule.target_positions(split) for split in splits}
    assert starts["train"].tolist() == list(range(5, 35))  # targets (t, t+1) before value 36
    assert starts["val"].tolist() == list(range(36, 47))
    assert starts["test"].tolist() == list(range(48, 59))
    for split, (inputs, targets) in splits.items():
        assert inputs.shape == (len(starts[split]), 5, 1) and targets.shape == (len(starts[split]), 2)
        original = torch.cat([inputs[..., 0], targets], dim=1) * 35.0 + 100.0
        expected = torch.tensor(values, dtype=torch.float32)[starts[split][:, None] - 5 + torch.arange(7)]
        assert torch.allclose(original, expected)  # each window: the 5 values before its targets, in order
    train_inputs, train_targets = splits["train"]
    assert train_inputs.min() == 0.0 and train_targets.max() == 1.0  # scaled on the training values alone
    assert splits["val"][1].min() > 1.0 and splits["test"][1].min() > splits["val"][1].max()

    standard = datamodule_of(run_config, series_data(path, "data.scaling=standard", "data.val_fraction=0"))
    training_values = torch.tensor(values[:48])
    assert standard.spec.target_mean[0] == pytest.approx(training_values.mean().item())
    assert standard.spec.target_std[0] == pytest.approx(training_values.std(correction=0).item())


def test_newest_first_reverses_each_window_and_keeps_the_baseline(run_config, tmp_path):
    path = write_series(tmp_path / "sales.csv", seasonal(120))
    runs = {order: train(run_config([*series_data(path, f"data.newest_first={order}"), "model=seq_regressor",
                                     "trainer.max_epochs=1"], run_name=f"newest_first_{order}"))
            for order in ("false", "true")}
    (oldest_metrics, oldest_objects), (newest_metrics, newest_objects) = runs["false"], runs["true"]
    windows, targets = oldest_objects["datamodule"].data_test.tensors
    assert torch.equal(newest_objects["datamodule"].data_test.tensors[0], windows.flip(1))
    assert torch.equal(newest_objects["datamodule"].data_test.tensors[1], targets)
    # the baseline takes each window's newest value, wherever it lies
    assert newest_metrics["test/rmse_last_value"] == pytest.approx(oldest_metrics["test/rmse_last_value"], rel=1e-6)


# the config's comment gives the second spelling, which Hydra refused while the default was an empty mapping
@pytest.mark.parametrize("where", ["+data.where.symbol=AAPL", "data.where={symbol: AAPL}"])
def test_one_series_of_a_long_table(run_config, tmp_path, where):
    path = tmp_path / "stocks.csv"
    rows = [f"{symbol},Jan 1 {2000 + year},{price + year}" for symbol, price in (("MSFT", 10), ("AAPL", 50))
            for year in range(30)]
    path.write_text("symbol,date,price\n" + "\n".join(rows) + "\n")
    overrides = ["data=timeseries", f"data.path={path}", "data.column=price", "data.date_column=date",
                 "data.window=3", "data.scaling=none"]
    datamodule = datamodule_of(run_config, [*overrides, where])
    inputs, targets = datamodule.data_train.tensors
    assert inputs[0, :, 0].tolist() == [50.0, 51.0, 52.0] and targets[0].tolist() == [53.0]
    assert datamodule.dates[0] == "Jan 1 2000" and len(datamodule.dates) == 30
    with pytest.raises(DlbookError, match="rows whose symbol is 'IBM', and .* has none; its symbol values: AAPL, "
                                          "MSFT"):
        datamodule_of(run_config, [*overrides, "+data.where.symbol=IBM"])


@pytest.mark.parametrize("content, overrides, message", [
    ('"Month","Riders"\n"2000-01",1\n', [], r"data.column names 'Passengers', which .*bad.csv has no column of; "
                                           r"its columns: Month, Riders\."),
    ('"Month","Passengers"\n"2000-01",1\n"2000-02",n/a\n"2000-03",3\n', [],
     r"bad.csv, line 3: column 'Passengers' holds 'n/a', which is no finite number"),
    ('"Month","Passengers"\n' + "".join(f'"2000-{m:02d}",{m}\n' for m in range(1, 13)), ["data.window=10"],
     r"holds 12 values, too few for windows of data.window=10 steps predicting data.horizon=1: the training "
     r"part \(the first 9 values, before the 3 held out for validation and test\) needs at least 11"),
    ("", [], r"bad.csv is empty: a CSV file needs a header line"),
    ('"Month","Passengers"\n"2000-01",1\n', ["data.date_column=Date"],
     r"data.date_column names 'Date', which .* has no column of; its columns: Month, Passengers\."),
])
def test_bad_files_are_one_paragraph(run_config, tmp_path, content, overrides, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DlbookError, match=message) as error:
        datamodule_of(run_config, [*series_data(path, "data.date_column=null"), *overrides])
    assert "\n" not in str(error.value)


def test_missing_file_and_column_are_named(run_config, tmp_path):
    with pytest.raises(DlbookError, match=r"reads .*nowhere.csv \(data.path=.*\), which is not a file"):
        datamodule_of(run_config, series_data(tmp_path / "nowhere.csv"))
    with pytest.raises(DlbookError, match="data.column is not set"):
        datamodule_of(run_config, ["data=timeseries", f"data.path={tmp_path / 'x.csv'}"])


@pytest.mark.parametrize("model, options", [
    ("seq_regressor", ["model.net.cell=rnn"]),
    ("seq_regressor", ["model.net.cell=lstm", "model.net.implementation=scratch"]),
    ("seq_regressor", ["model.net.cell=gru"]),
    ("conv1d_regressor", ["model.net.pool_size=2"]),  # the book's pool of 5 leaves one step of 5 features
    ("conv_rnn_regressor", ["model.net.dropout=0.1"]),
])
def test_regressors_beat_the_last_value(run_config, tmp_path, model, options):
    path = write_series(tmp_path / "sales.csv", seasonal())
    cfg = run_config([*series_data(path, "data.window=12"), f"model={model}", *options, "data.batch_size=16",
                      "optimizer.lr=0.01", "trainer.max_epochs=30"])
    trained, _ = train(cfg)
    assert trained["test/rmse"] < 0.6 * trained["test/rmse_last_value"]
    # the loss is on min-max scaled values; rmse in the series' units
    assert trained["test/rmse_scaled"] == pytest.approx(math.sqrt(trained["test/loss"]), rel=1e-4)
    if model == "seq_regressor" and "model.net.cell=rnn" in options:
        assert (tmp_path / "run" / "figures" / "forecast_test.png").exists()
        best = tmp_path / "run" / "checkpoints" / "best.ckpt"
        evaluated, _ = evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="eval"))
        assert evaluated["test/rmse"] == pytest.approx(trained["test/rmse"], rel=1e-6)


SHAMPOO = ["data=shampoo", "data.download=false"]


@pytest.mark.parametrize("model, data, message", [
    ("seq_regressor", ["data=diabetes"], r"data=diabetes \(tabular, .*\): it reads sequences of steps; the data "
                                         r"gives rows of 10 features. Data choices that fit model=seq_regressor: "
                                         r".*airline_passengers.*stocks"),
    ("linear_regression", SHAMPOO, r"data=shampoo \(time_series, .*\): it reads rows of features; the data gives "
                                   r"sequences of 6 steps"),
    ("conv1d_regressor", SHAMPOO, r"data=shampoo \(time_series, .*\): its convolution over 5 steps and pooling of 5 "
                                  r"need windows of at least 9 steps; the data gives 6"),
])
def test_mismatched_model_and_data_are_refused(run_config, tmp_path, model, data, message):
    if data[0] == "data=shampoo":  # its real format, too short for the convolution
        write_series(tmp_path / "data" / "timeseries" / "shampoo.csv", seasonal(36), ("Month", "Sales"))
    cfg = run_config([f"model={model}", *data])
    with pytest.raises(DlbookError, match=f"model={model} does not fit {message}"):
        build_task(cfg, build_datamodule(cfg).spec, {"model": model, "data": data[0].split("=")[1]})


@pytest.mark.skipif(not (SHARED_DATA / "timeseries" / "airline-passengers.csv").exists(),
                    reason="no copy of the time series beside the checkout")
def test_real_series(run_config):
    real = [f"paths.data_dir={SHARED_DATA}", "data.download=false"]
    airline = datamodule_of(run_config, [*real, "data=airline_passengers"])
    windows = sum(len(getattr(airline, f"data_{split}")) for split in ("train", "val", "test"))
    assert windows == 144 - 12  # one window for each value after the first year, in one split or another
    last_window, last_target = (tensor[-1] for tensor in airline.data_test.tensors)
    assert last_target.item() * airline.spec.target_std[0] + airline.spec.target_mean[0] == pytest.approx(432)
    assert airline.dates[0] == "1949-01"
    stocks = datamodule_of(run_config, [*real, "data=stocks"])
    assert len(stocks.dates) == 123 and stocks.dates[-1] == "Mar 1 2010"
    for data in ("sunspots", "daily_min_temperatures", "shampoo"):
        assert len(datamodule_of(run_config, [*real, f"data={data}"]).data_test) > 0
