"""The GAN on vectors: the DL Workshop's sine-curve data, its dense nets at the book's sizes, the discriminator
trained alone, and the full GAN pulling its points towards the curve."""

import math

import lightning as L
import pytest
import torch

from dlbook.assembly import build_datamodule, build_task
from dlbook.data.sine import SineCurveDataModule
from dlbook.errors import DlbookError
from dlbook.train import train
from tests.test_models import train_columns

SINE = ["model=sine_gan", "data=sine", "logger=csv"]


def test_the_nets_have_the_books_parameter_counts(run_config):
    cfg = run_config(SINE)
    task = build_task(cfg, build_datamodule(cfg).spec, {})
    count = lambda net: sum(parameter.numel() for parameter in net.parameters())  # noqa: E731
    assert (count(task.generator), count(task.discriminator)) == (6722, 609)  # the book's model summaries
    assert task.generate(task.fixed_noise).shape == (128, 2)


def test_each_batch_is_a_stretch_of_the_curve_around_a_normal_centre():
    datamodule = SineCurveDataModule(num_batches=500, generation_seed=3)
    datamodule.setup("fit")
    centres = datamodule.data_train.tensors[0]
    assert abs(centres.mean().item() - 3.0) < 0.15 and abs(centres.std().item() - 1.0) < 0.1  # N(3, 1)
    (points,) = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert points.shape == (128, 2)
    x, y = points.T
    assert torch.allclose(x.diff(), torch.full((127,), 0.1), atol=1e-5)  # 64 points left of the centre, 64 from it
    assert x[64].item() in centres.tolist() and torch.allclose(y, torch.sin(x))
    again = SineCurveDataModule(num_batches=500, generation_seed=3)
    again.setup("fit")
    assert torch.equal(again.data_train.tensors[0], centres)
    other = SineCurveDataModule(num_batches=500, generation_seed=4)
    other.setup("fit")
    assert not torch.equal(other.data_train.tensors[0], centres)


def test_the_discriminator_alone_tells_real_from_fake(run_config, tmp_path):
    cfg = run_config([*SINE, "model.train_generator=false", "data.num_batches=100", "trainer.max_epochs=3"])
    metrics, objects = train(cfg)
    columns = train_columns(tmp_path / "run")
    assert columns["train/d_loss"][-1] < 0.6 * columns["train/d_loss"][0]
    assert metrics["train/d_real_acc"] > 0.8 and metrics["train/d_fake_acc"] > 0.8  # chance is 0.5
    assert "train/g_loss" not in metrics and objects["trainer"].global_step == 300  # no generator step
    assert not objects["trainer"].optimizers[1].state  # the generator's Adam never stepped


class DistanceToTheCurve(L.Callback):
    """Mean |y - sin x| of 1,000 generated points (x, y) before training and after each batch."""

    def __init__(self):
        self.noise = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0))
        self.values: list[float] = []

    def on_train_start(self, trainer, task):
        self.record(task)

    def on_train_batch_end(self, trainer, task, *args):
        self.record(task)

    def record(self, task):
        points = task.generate(self.noise)
        self.values.append((points[:, 1] - torch.sin(points[:, 0])).abs().mean().item())


def test_the_gan_draws_its_points_towards_the_curve(run_config, tmp_path):
    cfg = run_config([*SINE, "data.num_batches=300", "trainer.max_epochs=2",
                      "+callbacks.distance._target_=tests.test_vector_gan.DistanceToTheCurve"])
    metrics, objects = train(cfg)
    (distances,) = [callback.values for callback in objects["trainer"].callbacks
                    if isinstance(callback, DistanceToTheCurve)]
    # The game swings from batch to batch (the book's run takes 18,000 to settle), so the second epoch's mean;
    # 600 batches bring the points into the curve's range (about 1.0 from 2.1), not yet onto it.
    untrained, trained = distances[0], sum(distances[-300:]) / 300
    assert trained < 0.6 * untrained, (untrained, trained)
    assert 0.0 < metrics["train/d_fake_acc"] < 1.0 and math.isfinite(metrics["train/g_loss"])
    assert (tmp_path / "run" / "figures" / "samples.png").is_file()


@pytest.mark.parametrize("overrides, message", [
    (["model.loss=wasserstein"], "model.log_accuracy=true needs a discriminator that classifies"),
    (["model.conditional=true"], "model.conditional=true needs class labels, and vectors have none"),
])
def test_bad_vector_gan_settings_are_one_clear_error(run_config, overrides, message):
    cfg = run_config([*SINE, *overrides])
    with pytest.raises(DlbookError, match=message):
        build_task(cfg, build_datamodule(cfg).spec, {})


def test_a_vector_gan_has_no_image_grid_to_sample(run_config):
    cfg = run_config(SINE)
    task = build_task(cfg, build_datamodule(cfg).spec, {})
    with pytest.raises(DlbookError, match="makes vectors, not images"):
        task.sample(16)
