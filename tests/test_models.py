"""Every conf/model choice trains: one smoke run per model on its smallest fitting data, from the registry SMOKE,
and model/data pairs that must be refused are refused with a clear error."""

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from PIL import Image

from dlbook.assembly import build_datamodule, build_task
from dlbook.errors import DlbookError
from dlbook.train import train
from tests.conftest import batches_in
from tests.datasets import write_mnist, write_unpaired_folders
from tests.test_configs import choices

# Run lengths. A classifier must beat chance: Adam at 1e-2, not the default 1e-3, gets each one there in 3 epochs
# of the digits. A generative run takes a few batches and writes sample grids on the way; the sample-quality
# measurement, tested in test_sample_quality.py, would add seconds to each.
CLASSIFIER = ("trainer.max_epochs=3", "optimizer.lr=1e-2")
REGRESSOR = ("trainer.max_epochs=10", "optimizer=sgd", "optimizer.lr=0.05")
GENERATIVE = ("trainer.max_epochs=2", "++trainer.limit_train_batches=6", "callbacks.sample_grid.every_n_batches=4",
              "++callbacks.sample_quality=null")
SMALL_DCGAN = ("model.generator.features=8", "model.discriminator.features=8", "data.batch_size=16")  # narrow nets


# What a model adds to its family's checks, given the trained task, its train/ metrics and its run directory.
def critic_weights_stay_clipped(task, columns, run_dir):
    assert max(p.abs().max() for p in task.discriminator.parameters()) <= task.clip_value + 1e-7


def gradient_penalty_is_logged(task, columns, run_dir):
    assert all(value >= 0 for value in columns["train/gp"])


def one_row_per_class(task, columns, run_dir):
    last_grid = max((run_dir / "samples").glob("step_??????.png"))
    assert Image.open(last_grid).size == (8 * 10 + 2, 10 * 10 + 2)  # 8 of each of 10 classes, 8x8 digits, 2 px apart


@dataclass(frozen=True)
class Smoke:
    """How one model trains in a test: the smallest data choice it fits, overrides that make the run tiny, and
    what the model adds to its family's checks."""
    data: str
    overrides: tuple[str, ...]
    check: Callable | None = None


SMOKE = {
    "softmax_regression": Smoke("digits", CLASSIFIER),
    "mlp": Smoke("digits", CLASSIFIER),
    "mlp_small": Smoke("digits", CLASSIFIER),
    "mnist_cnn": Smoke("digits", (*CLASSIFIER, "model.net.channels=[8,16]", "model.net.hidden_size=64")),
    "lenet5": Smoke("mnist", CLASSIFIER),
    "resnet9": Smoke("digits", (*CLASSIFIER, "model.net.width=8", "optimizer.lr=3e-3")),
    "gan": Smoke("digits", GENERATIVE),
    "lsgan": Smoke("digits", GENERATIVE),
    "wgan": Smoke("digits", GENERATIVE, critic_weights_stay_clipped),
    "cgan": Smoke("digits", GENERATIVE, one_row_per_class),
    "infogan": Smoke("digits", GENERATIVE),
    "dcgan": Smoke("mnist", (*GENERATIVE, *SMALL_DCGAN)),
    "wgan_gp": Smoke("mnist", (*GENERATIVE, *SMALL_DCGAN), gradient_penalty_is_logged),
    "stackgan": Smoke("mnist", (*GENERATIVE, *SMALL_DCGAN, "model.generator.residual_blocks=1")),
    "linear_regression": Smoke("diabetes", REGRESSOR),
    "cyclegan": Smoke("unpaired_folders", (*GENERATIVE, "data.batch_size=8", "model.generator.features=8",
                                           "model.generator.blocks=1", "model.discriminator.features=8",
                                           "model.discriminator.layers=2", "model.pool_size=8",
                                           "model.num_fixed_samples=4")),
}
# Data choices the registry uses: the files each one's test writes, and the overrides that read them.
DATA = {
    "digits": (None, []),  # bundled with scikit-learn
    "diabetes": (None, []),  # likewise
    "mnist": (write_mnist, ["data.download=false"]),
    "unpaired_folders": (lambda data_dir: write_unpaired_folders(data_dir / "unpaired", size=16),
                         ["data.image_size=16"]),
}


def data_overrides(data: str, tmp_path) -> list[str]:
    write, overrides = DATA[data]
    if write:
        write(tmp_path / "data")
    return [f"data={data}", *overrides]


def train_columns(run_dir: Path) -> dict[str, list[float]]:
    """Each train/ metric of the CSV log, one value per epoch."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return {name: [float(row[name]) for row in rows if row[name]] for name in rows[0] if name.startswith("train/")}


def test_every_model_has_a_smoke_case():
    assert sorted(SMOKE) == choices("model")


@pytest.mark.parametrize("model", [model for model, case in SMOKE.items() if case.data != "digits"])
def test_smoke_data_is_the_smallest_that_fits(run_config, model):
    cfg = run_config([f"model={model}"])
    with pytest.raises(DlbookError, match=f"model={model} does not fit data=digits"):
        build_task(cfg, build_datamodule(cfg).spec, {"model": model, "data": "digits"})


def classifier_learns(cfg, metrics, objects, columns):
    assert columns["train/loss"][-1] < 0.5 * columns["train/loss"][0]
    assert metrics["test/acc"] > 0.5  # chance is 0.1
    task, datamodule = objects["model"], objects["datamodule"]
    images, labels = next(iter(datamodule.train_dataloader()))
    assert task(datamodule.normalize(images)).shape == (len(labels), datamodule.spec.num_classes)


def regressor_beats_the_mean(cfg, metrics, objects, columns):
    assert columns["train/loss"][-1] < 0.7 * columns["train/loss"][0]
    spec = objects["datamodule"].spec
    targets = objects["datamodule"].data_test.tensors[1] * spec.target_std[0]  # deviations from the training mean
    assert metrics["test/rmse"] < 0.8 * targets.square().mean().sqrt().item()  # predicting the training mean


def generative_run_counts_its_batches_and_draws_grids(cfg, metrics, objects, columns):
    task, run_dir = objects["model"], Path(cfg.paths.output_dir)
    batches = cfg.trainer.max_epochs * cfg.trainer.limit_train_batches
    assert task.batches == batches  # one D step a batch, a G step every n_critic
    assert objects["trainer"].global_step == batches + math.ceil(batches / getattr(task, "n_critic", 1))
    assert batches_in(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)) == batches

    images, grid_columns = task.sample_grids()["samples"]
    assert images.shape[1:] == objects["datamodule"].spec.input_shape
    every = cfg.callbacks.sample_grid.every_n_batches
    grids = sorted((run_dir / "samples").glob("step_??????.png"))
    assert [path.name for path in grids] == [f"step_{step:06d}.png"
                                             for step in sorted({*range(every, batches + 1, every), batches})]
    _, height, width = images.shape[1:]
    rows = math.ceil(len(images) / grid_columns)
    assert Image.open(grids[-1]).size == (grid_columns * (width + 2) + 2, rows * (height + 2) + 2)  # 2 px apart


# What every model of a task must show, by task.
FAMILY_CHECKS = {"ClassificationTask": classifier_learns, "RegressionTask": regressor_beats_the_mean,
                 **{task: generative_run_counts_its_batches_and_draws_grids
                    for task in ("GANTask", "StackGANTask", "CycleGANTask")}}


@pytest.mark.parametrize("model", SMOKE)
def test_model_trains(run_config, tmp_path, model):
    case = SMOKE[model]
    cfg = run_config([f"model={model}", *data_overrides(case.data, tmp_path), *case.overrides, "logger=csv"])
    metrics, objects = train(cfg)
    run_dir = tmp_path / "run"
    columns = train_columns(run_dir)
    assert columns
    for name, values in columns.items():
        assert len(values) == cfg.trainer.max_epochs, (name, values)  # one per epoch
        assert all(map(math.isfinite, values)) and values[0] != values[-1], (name, values)
    FAMILY_CHECKS[type(objects["model"]).__name__](cfg, metrics, objects, columns)
    if case.check:
        case.check(objects["model"], columns, run_dir)


# Pairs that must stop before training, with what the user reads.
REFUSED = [
    ("lenet5", "digits", "LeNet-5 takes images of 28x28 to 32x32 pixels, the data gives 8x8. Data choices that fit "
                         "model=lenet5: cifar10, fashion_mnist, mnist"),
    ("mlp", "unpaired_folders", r"\(unpaired_images\): it trains on labelled_images data. Data choices that fit "
                                r"model=mlp: cifar10, digits, fashion_mnist, mnist; of its kind, shaped by their "
                                r"files: image_folder"),
    ("gan", "diabetes", r"\(tabular\): it trains on labelled_images data"),
    ("cyclegan", "digits", r"it trains on unpaired_images data. Data choices that fit model=cyclegan: "
                           r"unpaired_folders\."),
]


@pytest.mark.parametrize("model, data, message", REFUSED)
def test_mismatched_model_and_data_are_refused(run_config, tmp_path, model, data, message):
    cfg = run_config([f"model={model}", *data_overrides(data, tmp_path)])
    with pytest.raises(DlbookError, match=f"model={model} does not fit data={data} .*{message}"):
        choices = {"model": model, "data": data}
        build_task(cfg, build_datamodule(cfg, choices).spec, choices)
