"""scripts/predict.py: a checkpoint's predictions on new files (images, reviews, CSV rows), prepared as its training
data was, written as CSV or JSON; what it cannot predict for is refused in one paragraph."""

import csv
import json

import pytest
import torch
from PIL import Image

from dlbook.errors import DlbookError
from dlbook.train import train
from dlbook.utils.config import compose_run
from scripts.predict import predict
from tests.datasets import NEGATIVE, POSITIVE, write_reviews


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


def test_reviews_are_read_with_the_training_vocabulary(run_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=48)
    train(run_config(["model=rnn_classifier", "data=imdb", "data.download=false", "data.batch_size=8",
                      "data.max_length=24", "optimizer.lr=1e-2", "trainer.max_epochs=3"]))
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "a.txt").write_text(f"What a {POSITIVE[0]} and {POSITIVE[1]} film, {POSITIVE[2]} acting.")
    (folder / "b.txt").write_text(f"A {NEGATIVE[0]}, {NEGATIVE[1]} and {NEGATIVE[2]} film.")
    rows = predicted(tmp_path, f"input={folder}", "output=${paths.output_dir}/predictions.json")
    assert [row["prediction"] for row in rows] == ["pos", "neg"]
    assert json.loads((tmp_path / "predict" / "predictions.json").read_text()) == rows


def test_table_rows_are_scaled_as_the_training_rows_and_predicted_in_their_units(run_config, tmp_path):
    _, objects = train(run_config(["data=diabetes", "model=linear_regression", "optimizer=sgd", "optimizer.lr=0.05",
                                   "trainer.max_epochs=5"]))
    task, datamodule = objects["model"], objects["datamodule"]
    spec, scaling = datamodule.spec, datamodule.scaling
    scaled = datamodule.data_test.tensors[0][:5]
    original = scaled * scaling.feature_scale + scaling.feature_offset
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *reversed(spec.feature_names)])  # any order, other columns ignored
        writer.writerows([[i, *reversed(row.tolist())] for i, row in enumerate(original)])
    rows = predicted(tmp_path, f"input={path}")
    with torch.no_grad():
        expected = task.eval()(scaled)[:, 0] * spec.target_std[0] + spec.target_mean[0]
    assert [row[spec.target_names[0]] for row in rows] == pytest.approx(expected.tolist(), rel=1e-4)
    assert rows[0]["input"] == "rows.csv:2"
    path.write_text("id,age\n1,50\n")
    with pytest.raises(DlbookError, match="lacks the feature columns sex, bmi"):
        predicted(tmp_path, f"input={path}", name="bad")


def test_models_predict_does_not_take_are_sent_to_their_script(run_config, tmp_path):
    train(run_config(["model=gan", "trainer.max_epochs=1", "++trainer.limit_train_batches=2",
                      "++callbacks.sample_quality=null"]))
    with pytest.raises(DlbookError, match="predict.py takes classifiers and regressors .* Generators: "
                                          "scripts/sample.py"):
        predicted(tmp_path, f"input={tmp_path}")
