"""GAN family: the generator learns, resume, the scheduler, samples, bad input (every GAN model trains in
test_models.py)."""

import csv
import math
import subprocess
import sys
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from dlbook.assembly import build_datamodule, build_task
from dlbook.data.spec import ImageSpec
from dlbook.errors import DlbookError
from dlbook.eval import evaluate
from dlbook.nets.gan.mlp import MLPDiscriminator, MLPGenerator
from dlbook.tasks.gan import GANTask
from dlbook.train import train
from tests.conftest import batches_in
from tests.datasets import write_mnist

ROOT = Path(__file__).resolve().parents[1]
BATCHES = 12  # per epoch


def epoch_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("train/d_loss")]


def sine_points(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points (x / pi, sin x), x uniform in [-pi, pi], as 1x1x2 "images" (the sine GAN of The Deep Learning
    Workshop, ch. 7, scaled into the generator's tanh range)."""
    x = (torch.rand(n, generator=generator) * 2 - 1) * math.pi
    return torch.stack([x / math.pi, torch.sin(x)], dim=1).view(n, 1, 1, 2)


def chamfer(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean distance from each point to the nearest of the other set, both ways: small only if the sets overlap."""
    distances = torch.cdist(a.flatten(1), b.flatten(1))
    return (distances.min(dim=1).values.mean() + distances.min(dim=0).values.mean()).item()


@pytest.mark.slow  # trains for about 15 s; the model's smoke run is in the default suite
def test_generator_learns_the_sine_curve():
    L.seed_everything(0, verbose=False)
    rng = torch.Generator().manual_seed(0)
    real, held_out = sine_points(2048, rng), sine_points(512, rng)
    task = GANTask(partial(MLPGenerator, hidden_sizes=(64, 64)), partial(MLPDiscriminator, hidden_sizes=(64, 64)),
                   ImageSpec((1, 1, 2), 1), latent_dim=8,
                   optimizer=partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999)))
    noise, _ = task.sample_inputs(512)
    untrained = chamfer(task.generate(noise), held_out)
    trainer = L.Trainer(max_epochs=60, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(task, DataLoader(TensorDataset(real, torch.zeros(len(real), dtype=torch.long)), batch_size=128,
                                 shuffle=True))
    trained = chamfer(task.generate(noise), held_out)
    assert trained < 0.5 * untrained, (untrained, trained)


def test_resume_continues_the_batch_counter_and_keeps_the_fixed_noise(run_config, tmp_path):
    common = ["model=gan", f"++trainer.limit_train_batches={BATCHES}", "callbacks.sample_grid.every_n_batches=100"]
    _, first = train(run_config([*common, "trainer.max_epochs=1", "seed=1"]))
    fixed_noise = first["model"].fixed_noise.clone()

    # Another seed would draw other fixed noise; the checkpoint's must win.
    _, resumed = train(run_config([*common, "trainer.max_epochs=2", "seed=2", "ckpt_path=last"]))
    task = resumed["model"]
    assert task.batches == 2 * BATCHES
    assert torch.equal(task.fixed_noise, fixed_noise)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert batches_in(checkpoint) == 2 * BATCHES
    assert [int(state["state"][0]["step"]) for state in checkpoint["optimizer_states"]] == [2 * BATCHES] * 2
    assert {path.name for path in (tmp_path / "run" / "samples").glob("*.png")} == {
        f"step_{BATCHES:06d}.png", f"step_{2 * BATCHES:06d}.png"}


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_the_scheduler_steps_both_optimizers(run_config, interval):
    _, objects = train(run_config(["model=gan", "scheduler=step", "scheduler.scheduler.step_size=2",
                                   "scheduler.scheduler.gamma=0.5",
                                   f"scheduler.interval={interval}", "trainer.max_epochs=2",
                                   "++trainer.limit_train_batches=3"]))
    steps = 2 if interval == "epoch" else 2 * 3
    for optimizer in objects["trainer"].optimizers:
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 ** (steps // 2))


def test_wandb_gets_the_sample_grids(run_config, tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login: offline
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    train(run_config(["model=gan", "logger=wandb", "trainer.max_epochs=1", "++trainer.limit_train_batches=4",
                      "callbacks.sample_grid.every_n_batches=2"]))
    images = list((tmp_path / "run" / "wandb").glob("offline-run-*/files/media/images/samples_*.png"))
    assert len(images) == 2
    assert all(Image.open(path).getextrema()[0][1] > 0 for path in images)  # not blank


def test_sample_script_draws_one_row_per_class(run_config, tmp_path):
    train(run_config(["model=cgan", "trainer.max_epochs=1", "++trainer.limit_train_batches=3"]))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sample.py"), f"ckpt_path={tmp_path / 'run'}",
                             "n=25", f"output={tmp_path / 'grid.png'}", f"paths.log_dir={tmp_path / 'outputs'}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 * 10 + 2, 10 * 10 + 2)  # 2 of each of 10 classes


def test_sample_script_refuses_a_classifier(run_config, tmp_path):
    train(run_config(["trainer.max_epochs=1", "++trainer.limit_train_batches=2"]))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sample.py"), f"ckpt_path={tmp_path / 'run'}",
                             f"paths.log_dir={tmp_path / 'outputs'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "holds model=mlp: ClassificationTask makes no samples" in result.stdout + result.stderr


@pytest.mark.parametrize("overrides, message", [
    (["model=gan", "model.loss=hinge"], "model.loss='hinge' is not one of non_saturating, least_squares"),
    (["model=gan", "model.clip_value=0.01"], "needs model.loss=wasserstein"),
    (["model=wgan_gp", "data=mnist", "data.download=false", "model.discriminator.norm=batch"],
     "set model.discriminator.norm=layer"),
    (["model=dcgan", "data=mnist", "data.download=false", "model.discriminator.norm=group"],
     "norm='group' is not one of batch, layer"),
    (["model=dcgan"], "DCGAN takes square images of 14x14, 16x16, 28x28, 32x32, 64x64 pixels, the data gives 8x8.*"
                      "Data choices that fit .*: cifar10, fashion_mnist, mnist"),
    (["model=gan", "scheduler=plateau"], "watches val/loss"),
    # these trained the wrong way without a word, or failed at the first step or grid
    (["model=wgan", "model.clip_value=-0.01"], r"model.clip_value=-0.01 must be a finite number above 0\."),
    (["model=wgan_gp", "data=mnist", "data.download=false", "model.gradient_penalty_weight=-1"],
     r"model.gradient_penalty_weight=-1 must be a finite number from 0 up \(a negative weight rewards"),
    (["model=infogan", "data=mnist", "data.download=false", "model.info_weight=-1"],
     r"model.info_weight=-1 must be a finite number from 0 up"),
    (["model=infogan", "data=mnist", "data.download=false", "model.categorical_code=-1"],
     r"model.categorical_code=-1 must be a non-negative integer\."),
    (["model=cgan", "model.num_fixed_samples=0"], r"model.num_fixed_samples=0 must be a positive integer\."),
    (["model=gan", "model.latent_dim=0"], r"model.latent_dim=0 must be a positive integer"),
    # Lightning clips nothing at a negative value
    (["model=gan", "model.gradient_clip_val=-1"], r"model.gradient_clip_val=-1 must be a finite number from 0 up \(0"),
])
def test_bad_gan_settings_are_one_clear_error(run_config, tmp_path, overrides, message):
    write_mnist(tmp_path / "data")
    cfg = run_config(overrides)
    with pytest.raises(DlbookError, match=message):
        build_task(cfg, build_datamodule(cfg).spec, {})


def test_gan_runs_scale_images_for_the_tanh_generator_and_skip_testing(run_config):
    cfg = run_config(["model=gan"])
    assert cfg.data.normalization == "symmetric" and cfg.test is False and "sample_grid" in cfg.callbacks


def test_classification_runs_are_unchanged(run_config):
    cfg = run_config()
    assert "sample_grid" not in cfg.callbacks
    assert cfg.monitor == "val/acc" and cfg.data.normalization == "standard" and cfg.test is True


def test_gan_has_no_test_metric_to_ask_for(run_config, tmp_path):
    with pytest.raises(DlbookError, match="test=true, but model=gan has no test metric"):
        train(run_config(["model=gan", "test=true"]))
    train(run_config(["model=gan", "trainer.max_epochs=1", "++trainer.limit_train_batches=2"]))
    with pytest.raises(DlbookError, match="has no test metric; draw samples from it with scripts/sample.py"):
        evaluate(run_config([f"ckpt_path={tmp_path / 'run'}"], config_name="eval", run_name="eval"))
