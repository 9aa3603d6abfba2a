"""InfoGAN: the codes are learned (information loss falls, Q recovers the category), per-code sample grids,
resume keeps the fixed codes, the discriminators' features, and InfoGAN on the DCGAN nets."""

import csv
import math
from functools import partial
from pathlib import Path

import pytest
import torch
from PIL import Image

from dlbook.data.spec import ImageSpec
from dlbook.errors import DlbookError
from dlbook.nets.gan.dcgan import DCGANDiscriminator
from dlbook.nets.gan.infogan import QHead
from dlbook.nets.gan.mlp import MLPDiscriminator, MLPGenerator
from dlbook.tasks.gan import GANTask
from dlbook.train import train
from tests.datasets import write_mnist

BATCHES = 12  # per epoch


def epoch_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("train/info_loss")]


def categorical_accuracy(task: GANTask, n: int = 500) -> float:
    """How often Q names the category a generated image was drawn with (Q with batch statistics, as in training)."""
    latent = task.random_latent(n)
    task.q_head.train()
    with torch.no_grad():
        outputs = task.q_head(task.discriminator.features(task.generate(latent)))
    codes = latent[:, task.latent_dim:task.latent_dim + task.categorical_code]
    return (outputs[:, :task.categorical_code].argmax(1) == codes.argmax(1)).float().mean().item()


def test_infogan_learns_its_codes_and_draws_a_grid_per_code(run_config, tmp_path):
    torch.manual_seed(0)
    _, objects = train(run_config(["model=infogan", "logger=csv", "trainer.max_epochs=4",
                                   f"++trainer.limit_train_batches={BATCHES}",
                                   f"callbacks.sample_grid.every_n_batches={2 * BATCHES}"]))
    task, run_dir = objects["model"], tmp_path / "run"

    rows = epoch_rows(run_dir)
    assert len(rows) == 4
    for name in ("train/d_loss", "train/g_loss", "train/info_loss"):
        assert all(math.isfinite(float(row[name])) for row in rows), name
    info = [float(row["train/info_loss"]) for row in rows]
    # It starts near ln 10 + 1/3 (a guessed category, continuous codes predicted as 0) and must fall well below.
    assert info[0] > 2.0 and info[-1] < 0.8 * info[0], info
    assert categorical_accuracy(task) > 0.3  # chance is 0.1

    # The fixed samples have a row per category; each continuous code sweeps along the rows of its own grid.
    names = sorted(path.name for path in (run_dir / "samples").glob("*.png"))
    assert names == [f"step_{step:06d}{suffix}.png" for step in (24, 48) for suffix in ("", "_code_1", "_code_2")]
    assert Image.open(run_dir / "samples" / "step_000048.png").size == (8 * 10 + 2, 10 * 10 + 2)
    assert Image.open(run_dir / "samples" / "step_000048_code_1.png").size == (10 * 10 + 2, 10 * 10 + 2)
    sweep = task.fixed_sweeps[0].view(10, 10, -1)  # (category, step, input)
    assert torch.equal(sweep[:, :, 62:72].argmax(-1), torch.arange(10)[:, None].expand(10, 10))
    assert torch.allclose(sweep[3, :, 72], torch.linspace(-1, 1, 10)) and not sweep[:, :, 73].any()
    assert (sweep[:, :, :62] == sweep[0, 0, :62]).all()  # one noise vector for the whole grid


def test_resume_keeps_the_fixed_codes_and_the_q_head_state(run_config, tmp_path):
    common = ["model=infogan", "++trainer.limit_train_batches=3", "callbacks.sample_grid.every_n_batches=100"]
    _, first = train(run_config([*common, "trainer.max_epochs=1", "seed=1"]))
    fixed = {name: getattr(first["model"], name).clone() for name in ("fixed_noise", "fixed_sweeps")}

    # Another seed would draw other fixed inputs; the checkpoint's must win.
    _, resumed = train(run_config([*common, "trainer.max_epochs=2", "seed=2", "ckpt_path=last"]))
    task = resumed["model"]
    assert all(torch.equal(getattr(task, name), value) for name, value in fixed.items())
    # The generator's optimizer holds G's and Q's parameters; their Adam state came back and went on (3 + 3 steps).
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["optimizer_states"][1]
    assert len(state["state"]) == len([*task.generator.parameters(), *task.q_head.parameters()])
    assert {int(entry["step"]) for entry in state["state"].values()} == {6}


@pytest.mark.parametrize("discriminator, shape", [(partial(MLPDiscriminator, hidden_sizes=(32, 16)), (1, 8, 8)),
                                                  (partial(DCGANDiscriminator, features=8), (3, 32, 32))])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_discriminator_features_lead_to_its_scores(discriminator, shape, num_classes):
    torch.manual_seed(0)
    net = discriminator(input_shape=shape, num_classes=num_classes).eval()
    images, labels = torch.randn(4, *shape), torch.arange(4) if num_classes else None
    features = net.features(images, labels)
    assert features[0].numel() == net.feature_dim
    assert torch.allclose(net.score(features), net(images, labels))


def test_infogan_on_the_dcgan_nets(run_config, tmp_path):
    write_mnist(tmp_path / "data")
    _, objects = train(run_config(["experiment=infogan_mnist", "data.download=false", "trainer.max_epochs=1",
                                   "++trainer.limit_train_batches=2", "data.batch_size=16", "logger=csv",
                                   "model.generator.features=8", "model.discriminator.features=8"]))
    assert objects["model"].q_head.layers[1].in_features == 16 * 7 * 7  # Q reads D's last 7x7 map
    assert math.isfinite(float(epoch_rows(tmp_path / "run")[0]["train/info_loss"]))
    assert len(list((tmp_path / "run" / "samples").glob("step_000002*.png"))) == 3


@pytest.mark.parametrize("settings", [{"q_head": None}, {"q_head": QHead, "conditional": True}])
def test_codes_need_a_q_head_and_no_labels(settings):
    with pytest.raises(DlbookError, match="need a model.q_head and take the place of labels"):
        GANTask(MLPGenerator, MLPDiscriminator, ImageSpec((1, 8, 8), 10), categorical_code=10,
                **settings)
