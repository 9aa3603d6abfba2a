"""scripts/predict.py: a checkpoint's predictions on new files (images, reviews, CSV rows), prepared as its training
data was, written as CSV or JSON; what it cannot predict for is refused in one paragraph."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dlbook.data.image_folder import ImageFolderDataModule, decode_images
from dlbook.data.spec import TabularSpec
from dlbook.errors import DlbookError
from dlbook.train import train
from dlbook.utils.config import compose_run
from scripts.predict import predict, read_inputs, read_table_rows
from tests.datasets import NEGATIVE, POSITIVE, write_image_folder, write_reviews


def predicted(tmp_path, *overrides, name="predict"):
    return predict(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}",
                                f"paths.data_dir={tmp_path / 'data'}", *overrides], tmp_path / name, "predict"))


def test_image_files_get_the_classes_the_model_gives_their_tensors(run_config, tmp_path):
    _, objects = train(run_config(["trainer.max_epochs=3", "optimizer.lr=1e-2"]))
    task, datamodule = objects["model"], objects["datamodule"]
    images, labels = datamodule.data_test.tensors[0][:40], datamodule.data_test.tensors[1][:40]
    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{index:03d}.png")
    rows = predicted(tmp_path, f"input={folder}")
    with torch.no_grad():
        expected = task.eval()(datamodule.preprocess(images, augment=False)).softmax(dim=1)
    assert [row["prediction"] for row in rows] == [str(i) for i in expected.argmax(dim=1).tolist()]
    assert [row["probability"] for row in rows] == pytest.approx(expected.max(dim=1).values.tolist(), abs=1e-5)
    assert sum(row["prediction"] == str(label) for row, label in zip(rows, labels.tolist())) > 0.7 * len(rows)
    with open(tmp_path / "predict" / "predictions.csv") as f:
        written = list(csv.DictReader(f))
    assert len(written) == 40 and written[0]["input"].endswith("000.png") and "p_9" in written[0]
    single = predicted(tmp_path, f"input={folder / '000.png'}", name="one")
    assert single[0]["prediction"] == rows[0]["prediction"]


def test_16_bit_32_bit_and_float_images_are_scaled_to_8_bits(tmp_path):
    values = np.linspace(0, 65535, 64).round().astype(np.uint16).reshape(8, 8)
    images = {"i16.png": (values, "I;16"), "i32.tif": (values.astype(np.int32), "I"),
              "float.tif": (values.astype(np.float32) / 65535, "F")}
    for name, (array, mode) in images.items():
        Image.fromarray(array).save(tmp_path / name)
        assert Image.open(tmp_path / name).mode == mode
    decoded = decode_images([tmp_path / name for name in images], size=8, channels=1)
    assert (decoded == torch.from_numpy(np.rint(values / 257).astype(np.uint8))).all()
    Image.fromarray(values.astype(np.float32)).save(tmp_path / "unscaled.tif")  # floats beyond 0..1
    with pytest.raises(DlbookError, match=r"unscaled.tif is a mode F image with values from 0 to 65535"):
        decode_images([tmp_path / "unscaled.tif"], size=8, channels=1)


def noise_png(path, size=16):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)).save(path)


def truncated_png(path):
    noise_png(path)
    path.write_bytes(path.read_bytes()[:150])


@pytest.mark.parametrize("write", [truncated_png, lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\nnot a png"),
                                   lambda path: noise_png(path, size=64)], ids=["truncated", "not_png", "too_large"])
def test_an_image_file_that_cannot_be_read_is_refused_naming_it(tmp_path, monkeypatch, write):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses 64x64 as a header claiming 1e10
    noise_png(tmp_path / "good.png")
    write(tmp_path / "bad.png")
    with pytest.raises(DlbookError, match=f"{tmp_path / 'bad.png'} cannot be read as an image"):
        decode_images([tmp_path / "good.png", tmp_path / "bad.png"], size=8, channels=1)


def test_training_on_an_image_folder_with_a_truncated_file_names_it(tmp_path):
    write_image_folder(tmp_path, per_class=4, with_test=False)
    truncated_png(tmp_path / "train" / "digit_1" / "0002.png")
    with pytest.raises(DlbookError, match="digit_1/0002.png cannot be read as an image"):
        ImageFolderDataModule(root=str(tmp_path), image_size=8).setup("fit")


def test_reviews_are_read_with_the_training_vocabulary(run_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=48)
    _, objects = train(run_config(["model=rnn_classifier", "data=imdb", "data.download=false", "data.batch_size=8",
                                   "data.max_length=24", "optimizer.lr=1e-2", "trainer.max_epochs=3"]))
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "a.txt").write_text(f"What a {POSITIVE[0]} and {POSITIVE[1]} film, {POSITIVE[2]} acting.")
    (folder / "b.txt").write_text(f"A {NEGATIVE[0]}, {NEGATIVE[1]} and {NEGATIVE[2]} film.")
    rows = predicted(tmp_path, f"input={folder}", "output=${paths.output_dir}/predictions.json")
    assert [row["prediction"] for row in rows] == ["pos", "neg"]
    assert json.loads((tmp_path / "predict" / "predictions.json").read_text()) == rows
    for text in ("", " \n\t"):  # no words: it would be classified from padding alone
        (folder / "empty.txt").write_text(text)
        with pytest.raises(DlbookError, match="empty.txt holds no words"):
            read_inputs(folder, objects["model"], objects["datamodule"])


def test_table_rows_are_scaled_as_the_training_rows_and_predicted_in_their_units(run_config, tmp_path):
    _, objects = train(run_config(["data=diabetes", "model=linear_regression", "optimizer=sgd", "optimizer.lr=0.05",
                                   "trainer.max_epochs=5"]))
    task, datamodule = objects["model"], objects["datamodule"]
    spec, scaling = datamodule.spec, datamodule.scaling
    scaled = datamodule.data_test.tensors[0][:5]
    original = scaled * scaling.feature_scale + scaling.feature_offset
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark
        writer = csv.writer(f)
        writer.writerow([*reversed(spec.feature_names), "id"])  # any order, other columns ignored
        lines = [[*reversed(row.tolist()), i] for i, row in enumerate(original)]
        writer.writerow(lines[0])
        f.write("\r\n")  # a blank line, which rows are named past
        writer.writerows(lines[1:])
    rows = predicted(tmp_path, f"input={path}")
    with torch.no_grad():
        expected = task.eval()(scaled)[:, 0] * spec.target_std[0] + spec.target_mean[0]
    assert [row[spec.target_names[0]] for row in rows] == pytest.approx(expected.tolist(), rel=1e-4)
    assert [row["input"] for row in rows[:2]] == ["rows.csv:2", "rows.csv:4"]
    path.write_text("id,age\n1,50\n")
    with pytest.raises(DlbookError, match="lacks the feature columns sex, bmi"):
        predicted(tmp_path, f"input={path}", name="bad")


@pytest.mark.parametrize("content, message", [
    (b"a,b\n1,nan\n", r"Line 2 of .*rows.csv: b='nan' is not a finite number"),
    (b"a,b\n1,2\n\n3,-inf\n", r"Line 4 of .*rows.csv: b='-inf' is not a finite number"),
    (b"a,b\n1,2\n3\n", r"Line 3 of .*rows.csv: b is missing: the line has fewer fields than the header"),
    (b"a,b\n1,\xe9\n", r"input=.*rows.csv is not UTF-8 text \(byte 6"),
    (b"b,a\n", r"input=.*rows.csv has a header row but no rows"),
    (None, r"input=.*rows.csv is a folder: a table model reads the rows of one CSV file"),
], ids=["nan", "inf_past_a_blank_line", "short_row", "latin_1", "header_only", "folder"])
def test_table_rows_that_cannot_be_predicted_for_are_refused_naming_line_and_column(tmp_path, content, message):
    path = tmp_path / "rows.csv"
    path.mkdir() if content is None else path.write_bytes(content)
    with pytest.raises(DlbookError, match=message):
        read_table_rows(path, TabularSpec(num_features=2, feature_names=("a", "b")), datamodule=None)


@pytest.mark.parametrize("setting, message", [
    ("batch_size=0", "batch_size=0 must be a positive integer"),
    ("batch_size=-1", "batch_size=-1 must be a positive integer"),
    ("output={tmp}", "output=.* is a folder"),
    ("output={tmp}/rows.csv/out.csv", "lies under .*rows.csv, which is a file"),
    ("output={tmp}/rows.txt", r"rows.txt must end in one of .csv, .json"),  # written as CSV, whatever its name
])
def test_settings_are_refused_before_the_checkpoint_is_read(tmp_path, setting, message):
    (tmp_path / "rows.csv").write_text("a\n1\n")
    with pytest.raises(DlbookError, match=message):  # there is no checkpoint at ckpt_path
        predicted(tmp_path, f"input={tmp_path / 'rows.csv'}", setting.format(tmp=tmp_path))


def test_models_predict_does_not_take_are_sent_to_their_script(run_config, tmp_path):
    train(run_config(["model=gan", "trainer.max_epochs=1", "++trainer.limit_train_batches=2",
                      "++callbacks.sample_quality=null"]))
    with pytest.raises(DlbookError, match="predict.py takes classifiers and regressors .* Generators: "
                                          "scripts/sample.py"):
        predicted(tmp_path, f"input={tmp_path}")
