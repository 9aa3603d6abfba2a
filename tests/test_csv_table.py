"""Tables from CSV files (data=csv, data=california_housing): one-hot encoding of text columns, missing values
filled from the rows not held out for testing and reported, classes from a text target, the one-paragraph errors
for bad files, the California housing download, and a linear regression that learns from a file."""

import csv
import hashlib
import io
import logging
import re
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dlbook.assembly import build_datamodule, data_choices_for
from dlbook.data.csv_table import CSVTableDataModule
from dlbook.errors import DatasetNotFoundError, DlbookError
from dlbook.eval import evaluate
from dlbook.train import train
from dlbook.utils.config import config_dir, instantiate
from tests.datasets import SHARED_DATA
from tests.test_models import regressor_beats_the_mean, train_columns
from tests.test_regression import datamodule_of

SHARED_CALIFORNIA = SHARED_DATA / "california_housing" / "housing.csv"
CITIES = ("Avon", "Bath", "Cork")
CALIFORNIA_COLUMNS = ["longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms", "population",
                      "households", "median_income", "median_house_value", "ocean_proximity"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_houses(path: Path, rows: int = 200) -> list[list]:
    """price = 3 size + 40 (Bath) or 80 (Cork) + noise; `size` misses every 10th value and `city` every 25th
    (NA), the last row misses its price."""
    generator = np.random.default_rng(0)
    table = []
    for row in range(rows):
        size, city = generator.uniform(50, 150), CITIES[row % 3]
        price = 3 * size + 40 * CITIES.index(city) + generator.normal(0, 5)
        table.append(["" if row % 10 == 3 else f"{size:.2f}", "NA" if row % 25 == 7 else city,
                      int(generator.integers(1, 6)), "" if row == rows - 1 else f"{price:.2f}"])
    write_csv(path, ["size", "city", "rooms", "price"], table)
    return table


def test_text_columns_are_one_hot_and_missing_values_filled_from_the_training_rows(run_config, tmp_path, caplog):
    written = write_houses(tmp_path / "houses.csv")
    with caplog.at_level(logging.INFO, logger="dlbook.data.csv_table"):
        datamodule = datamodule_of(run_config, ["data=csv", f"data.path={tmp_path / 'houses.csv'}",
                                                "data.target=price"])
    table = datamodule.table
    assert table.feature_names == ("size", "city=Avon", "city=Bath", "city=Cork", "rooms")
    kept = written[:-1]  # the row without a price is dropped
    assert table.features.shape == (199, 5) and table.num_classes == 0
    assert torch.allclose(table.targets[:, 0], torch.tensor([float(row[3]) for row in kept]))

    _, training = datamodule.split_rows(199)
    sizes = np.array([float(row[0]) if row[0] else np.nan for row in kept])
    median = np.nanmedian(sizes[training.numpy()])
    assert median != pytest.approx(np.nanmedian(sizes), abs=1e-3)  # the test rows would move it
    missing = np.isnan(sizes)
    assert torch.allclose(table.features[missing, 0], torch.tensor(median, dtype=torch.float32))
    assert torch.allclose(table.features[~missing, 0], torch.from_numpy(sizes[~missing]).float())
    cities = [row[1] for row in kept]
    known = [cities[i] for i in training.tolist() if cities[i] != "NA"]
    most_frequent = max(CITIES, key=known.count)
    for row, city in enumerate(cities):
        one_hot = [float(name == (most_frequent if city == "NA" else city)) for name in CITIES]
        assert table.features[row, 1:4].tolist() == one_hot
    assert datamodule.filled == {"size": 20, "city": 8}
    assert (f"filled missing values of houses.csv with the median (numbers) or the most frequent category of the "
            f"159 rows not held out for testing: size 20 (median {median:g}), city 8 (most frequent "
            f"'{most_frequent}').") in caplog.text
    assert "dropped the 1 of 200 rows of houses.csv that miss their target (price), on lines 201." in caplog.text
    assert sum(len(d) for d in (datamodule.data_train, datamodule.data_val, datamodule.data_test)) == 199
    # The file tells the spec: a mismatched model lists data=csv as of its kind, shaped by its files.
    assert CSVTableDataModule.fixed_spec(OmegaConf.load(Path(config_dir()) / "data" / "csv.yaml")) is None


def test_a_relative_path_is_read_from_the_working_directory(run_config, tmp_path, monkeypatch):
    write_houses(tmp_path / "tables" / "houses.csv", rows=30)
    monkeypatch.chdir(tmp_path)
    datamodule = instantiate(run_config(["data=csv", "data.path=tables/houses.csv", "data.target=price"]).data)
    assert datamodule.path == tmp_path / "tables" / "houses.csv"
    assert datamodule.table.features.shape == (29, 5)


def test_a_text_target_or_task_classification_gives_classes(run_config, tmp_path):
    write_houses(tmp_path / "houses.csv", rows=60)
    path = f"data.path={tmp_path / 'houses.csv'}"
    cities = datamodule_of(run_config, ["data=csv", path, "data.target=city"])
    assert (cities.spec.num_classes, cities.spec.target_names) == (3, CITIES)
    assert len(cities.table.targets) == 57  # the 3 rows of city NA are dropped
    rooms = datamodule_of(run_config, ["data=csv", path, "data.target=rooms", "data.task=classification"])
    assert rooms.spec.target_names == ("1", "2", "3", "4", "5") and rooms.table.targets.dtype == torch.int64
    ordered = datamodule_of(run_config, ["data=csv", path, "data.target=city",
                                         "+data.categories.city=[Cork,Bath,Avon]"])
    assert ordered.spec.target_names == ("Cork", "Bath", "Avon")
    # Given data.categories, the one-hot columns are in that order; `rooms` listed as categorical is one-hot too.
    encoded = datamodule_of(run_config, ["data=csv", path, "data.target=price", "data.categorical=[city,rooms]",
                                         "data.categories={city: [Cork, Bath, Avon]}"])  # the README's spelling
    assert encoded.spec.feature_names == ("size", "city=Cork", "city=Bath", "city=Avon", *(f"rooms={n}" for n in
                                                                                          range(1, 6)))


def test_linear_regression_learns_a_csv_file_and_eval_reproduces_it(run_config, tmp_path):
    write_houses(tmp_path / "houses.csv")
    cfg = run_config(["data=csv", f"data.path={tmp_path / 'houses.csv'}", "data.target=price",
                      "model=linear_regression", "optimizer=sgd", "optimizer.lr=0.05", "trainer.max_epochs=10",
                      "logger=csv"])
    metrics, objects = train(cfg)
    regressor_beats_the_mean(cfg, metrics, objects, train_columns(tmp_path / "run"))
    assert metrics["test/r2"] > 0.9  # the city effect is only learnt through its one-hot columns
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    evaluated, _ = evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="eval"))
    assert evaluated["test/rmse"] == pytest.approx(metrics["test/rmse"], rel=1e-6)


HEADER = "size,city,price\n"


@pytest.mark.parametrize("text, overrides, message", [
    ("", [], "{path} is empty: a CSV file needs a header line naming its columns"),
    ("\n\n", [], "{path} is empty"),
    (HEADER, [], r"{path} has a header line \(size, city, price\) but no rows."),
    ("5.1,3.5,1.4\n4.9,3.0,1.4\n", [],  # UCI's iris.data: its first row would have named the columns
     r"{path} starts with a row of numbers \(5.1, 3.5, 1.4\) where its header line should name the columns"),
    (HEADER + "1,Avon,2\n", ["data.target=cost"],
     r"data.target names 'cost', which {path} has no column of; its columns: size, city, price."),
    (HEADER + "1,Avon,2\n2.5,Bath,3\n3,Cork\n", [],
     r"{path}, line 4: 2 fields where the header has 3 \(size, city, price\)."),
    (HEADER + "1,Avon,2\n2.5,Bath,3\nlarge,Cork,4\n", [],
     r"{path}, line 4: column 'size' holds 'large', which is no finite number, in a column of numbers. Fix the "
     r"value; or, if the column holds categories, list it in data.categorical"),
    (HEADER + "1,Avon,2\n2,Bath,3\n", ["data.categorical=[size]"],
     r"{path}, line 2: column 'city' holds 'Avon', which is no finite"),  # only the columns named are categorical
    # inf, nan and 1e999 (inf) are numbers to float(), but would train into NaN losses; they are no category either
    (HEADER + "1,Avon,2\n-inf,Bath,3\n", [], r"{path}, line 3: column 'size' holds '-inf', which is no finite "
                                            r"number, in a column of numbers. Fix the value; or, if '-inf' marks"),
    (HEADER + "1,Avon,2\n2,Bath,1e999\n", [], r"{path}, line 3: column 'price' holds '1e999', which is no finite"),
    (HEADER + "1,Avon,2\n2,Bath,NAN\n", [], r"{path}, line 3: column 'price' holds 'NAN', which is no finite"),
    # A typo in a column of numbers does not make each distinct number a class: the target is regressed and the
    # values that are no numbers are named, the first five.
    (HEADER + "1,Avon,2\n2,Bath,3.5x\n3,Cork,4\n", [], r"{path}, line 3: column 'price' holds '3.5x', which is no "
                                                      r"finite number, in a column of numbers. Fix the value; or, to "
                                                      r"classify the target's values, set data.task=classification"),
    (HEADER + "".join(f"{row},Avon,{row if row % 3 else f'x{row}'}\n" for row in range(1, 30)), [],
     r"{path}, line 4: column 'price' holds 'x3', which is no finite number, in a column of numbers \(8 more: line "
     r"7 'x6', line 10 'x9', line 13 'x12', line 16 'x15', ...\)\."),
    # A quote left open swallows the rows after it into one field: silently, when the field is the row's last.
    ("size,price,city\n1,2,\"Avon\n2,3,Bath\n", [], r"{path}, line 2: a field opened with a quote \(\"\) does not "
                                                r"close on that line and runs on to line 3. A quote is likely"),
    (HEADER + "1,Avon,2\n2,Bath,dear\n", ["data.task=regression"],
     r"line 3: column 'price' holds 'dear', .* to classify the target's values, set data.task=classification"),
    (HEADER + "1,Avon,2\n2,Bath,3\n", ["+data.categories.city=[Avon]"],
     r"{path}, line 3: column 'city' holds 'Bath', which is not among its data.categories: 'Avon'."),
    (HEADER + "1,Avon,2\n", ["data.columns=[size,town,price]"],
     r"{path} has the columns size, city, price; data.columns expects size, town, price."),
    (HEADER + "1,Avon,2\n", ["data.categorical=[town]"],
     r"data.categorical names 'town', which {path} \(but its target\) has no column of"),
    (HEADER + "1,Avon,NA\n2,Bath,\n", [], r"Every row of {path} misses its target \(price\)"),
    (HEADER + "1,Avon,2\n1,Bath,3\n", ["data.target=[city,price]"], "classification takes one"),
    ("size,size,price\n1,2,3\n", [], r"{path} names the column\(s\) 'size' more than once"),
])
def test_bad_files_get_one_paragraph_naming_what_is_wrong(run_config, tmp_path, text, overrides, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    cfg = run_config(["data=csv", f"data.path={path}", "data.target=price", *overrides])
    with pytest.raises(DlbookError, match=message.format(path=path)) as error:
        instantiate(cfg.data).table
    assert "\n" not in str(error.value)


def test_a_quote_left_open_in_a_long_file_names_its_line(run_config, tmp_path):
    # Beyond 131072 characters the csv module stops, "field larger than field limit": it names no line.
    (tmp_path / "houses.csv").write_text(HEADER + '1,Avon,2\n2,"Bath,3\n' + "3,Cork,4\n" * 15_000)
    with pytest.raises(DlbookError, match=r"houses.csv, line 3: a field opened with a quote \(\"\) does not close "
                                          r"on that line and runs on over 131072 characters. A quote is likely "
                                          r"missing or stray on line 3"):
        instantiate(run_config(["data=csv", f"data.path={tmp_path / 'houses.csv'}", "data.target=price"]).data).table


def test_a_missing_file_is_named_with_its_path(run_config, tmp_path):
    cfg = run_config(["data=csv", f"data.path={tmp_path / 'nowhere.csv'}", "data.target=price"])
    with pytest.raises(DatasetNotFoundError, match=f"data=csv reads {tmp_path / 'nowhere.csv'} \\(data.path=.*"
                                                   f"\\), which is not a file. Set data.path to a CSV file"):
        build_datamodule(cfg)
    with pytest.raises(DlbookError, match="data=csv reads one CSV file with a header line: set data.path=<file>"):
        instantiate(run_config(["data=csv"]).data)
    with pytest.raises(DlbookError, match="data.target is not set: name the column of"):
        instantiate(run_config(["data=csv", f"data.path={tmp_path / 'x.csv'}"]).data)


def california_rows(rows: int = 40) -> list[list]:
    """Rows in the Hands-On ML file's layout, every category of ocean_proximity present, total_bedrooms missing
    in every 8th."""
    generator = np.random.default_rng(1)
    categories = ["NEAR BAY", "<1H OCEAN", "INLAND", "NEAR OCEAN", "ISLAND"]
    return [[-122.23 + row / 100, 37.88, 41.0, 880.0, "" if row % 8 == 0 else 129.0, 322.0, 126.0,
             round(generator.uniform(1, 10), 4), float(generator.integers(50, 500) * 1000),
             categories[row % 5]] for row in range(rows)]


def test_california_housing_is_downloaded_from_the_book_archive_and_its_spec_is_known(run_config, tmp_path,
                                                                                     monkeypatch):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([CALIFORNIA_COLUMNS, *california_rows()])
    info, payload = tarfile.TarInfo("housing.csv"), buffer.getvalue().encode()
    info.size = len(payload)
    served = io.BytesIO()
    with tarfile.open(fileobj=served, mode="w:gz") as archive:
        archive.addfile(info, io.BytesIO(payload))
    md5 = hashlib.md5(served.getvalue()).hexdigest()
    asked = []

    def fetch(request):  # the archive as the book's repository serves it, but for its rows
        asked.append(request.full_url)
        response = io.BytesIO(served.getvalue())
        response.headers = {}  # no Content-Length: the MD5 alone tells a whole file
        return response

    monkeypatch.setattr(urllib.request, "urlopen", fetch)
    url = "https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.tgz"
    with pytest.raises(DatasetNotFoundError, match=f"{re.escape(url)} has MD5 {md5}, not the published "
                                                   f"cdcd0f93f7aeaebbe1d63c1071ad7687"):
        datamodule_of(run_config, ["data=california_housing"])
    datamodule = datamodule_of(run_config, ["data=california_housing", f"data.md5={md5}"])
    assert asked == [url, url]
    assert (tmp_path / "data" / "california_housing" / "housing.csv").is_file()
    assert datamodule.filled == {"total_bedrooms": 5}
    spec = datamodule.spec
    assert spec.num_features == 13 and spec.target_names == ("median_house_value",) and spec.is_regression
    fixed = CSVTableDataModule.fixed_spec(OmegaConf.load(Path(config_dir()) / "data" / "california_housing.yaml"))
    assert fixed.feature_names == spec.feature_names and fixed.num_targets == 1

    fitting, by_files = data_choices_for(run_config(["model=linear_regression"]).model)
    assert "california_housing" in fitting and "csv" in by_files


def test_missing_california_housing_offline_names_the_file(run_config, monkeypatch):
    def offline(request):
        raise OSError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DatasetNotFoundError) as error:
        build_datamodule(run_config(["data=california_housing"]))
    message = str(error.value)
    assert "downloading it failed (OSError: no network)" in message and "\n" not in message
    assert "Missing (1, under that folder): california_housing/housing.csv." in message
    assert "california_housing/housing.csv (a CSV file with a header line: longitude, latitude, " in message


@pytest.mark.skipif(not SHARED_CALIFORNIA.exists(), reason="no copy of California housing beside the checkout")
def test_real_california_housing(run_config):
    datamodule = datamodule_of(run_config, [f"paths.data_dir={SHARED_CALIFORNIA.parents[1]}",
                                            "data=california_housing", "data.download=false"])
    assert datamodule.table.features.shape == (20640, 13)
    assert datamodule.filled == {"total_bedrooms": 207}
    assert datamodule.table.features[:, 8:].sum(0).tolist() == [9136, 6551, 5, 2290, 2658]  # <1H OCEAN .. NEAR OCEAN


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CALIFORNIA.exists(), reason="no copy of California housing beside the checkout")
def test_linear_regression_learns_real_california_housing(run_config):
    cfg = run_config([f"paths.data_dir={SHARED_CALIFORNIA.parents[1]}", "data=california_housing",
                      "data.download=false", "model=linear_regression", "trainer.max_epochs=3"])
    metrics, objects = train(cfg)
    spec = objects["datamodule"].spec
    deviations = objects["datamodule"].data_test.tensors[1] * spec.target_std[0]
    assert metrics["test/rmse"] < 0.7 * deviations.square().mean().sqrt().item()  # predicting the training mean
