"""StackGAN: trains through dlbook.train with both stages' grids, resumes and samples; the generator learns the
classes; the stages' shapes, the KL term, and bad settings."""

import math
import subprocess
import sys
from functools import partial

import lightning as L
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from dlbook.data.spec import ImageSpec
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.gan.stackgan import (ConditioningAugmentation, StackGANDiscriminator, StackGANGenerator,
                                      kl_to_standard_normal)
from dlbook.assembly import build_datamodule, build_task
from dlbook.tasks.stackgan import StackGANTask
from dlbook.train import train
from dlbook.utils.config import choices
from tests.conftest import batches_in
from tests.datasets import digits, write_cifar10, write_mnist
from tests.test_gan import ROOT, epoch_rows

BATCHES = 6  # per epoch
SMALL = ["model=stackgan", "model.generator.features=8", "model.generator.residual_blocks=1",
         "model.discriminator.features=8", "data.batch_size=16"]
LOSSES = [f"train/{net}_loss{stage}" for net in ("d", "g") for stage in ("", "_stage1", "_stage2")]


def test_stackgan_trains_draws_both_stages_resumes_and_samples(run_config, tmp_path):
    write_cifar10(tmp_path / "data")
    common = [*SMALL, "data=cifar10", "data.download=false", "logger=csv", f"++trainer.limit_train_batches={BATCHES}",
              f"callbacks.sample_grid.every_n_batches={2 * BATCHES}"]
    _, first = train(run_config([*common, "trainer.max_epochs=2"]))
    run_dir = tmp_path / "run"
    rows = epoch_rows(run_dir)
    assert len(rows) == 2
    for name in [*LOSSES, "train/kl_loss"]:
        values = [float(row[name]) for row in rows]
        assert all(math.isfinite(value) for value in values) and values[0] != values[1], (name, values)
    assert float(rows[0]["train/kl_loss"]) > 0
    for row in rows:  # each net's loss is the sum over the stages
        for net in ("d", "g"):
            stages = float(row[f"train/{net}_loss_stage1"]) + float(row[f"train/{net}_loss_stage2"])
            assert float(row[f"train/{net}_loss"]) == pytest.approx(stages, rel=1e-5)
    # One row of 8 per class: 32 px images and Stage I's 16 px ones, with 2 px of padding.
    assert Image.open(run_dir / "samples" / "step_000012.png").size == (8 * 34 + 2, 10 * 34 + 2)
    assert Image.open(run_dir / "samples" / "step_000012_stage1.png").size == (8 * 18 + 2, 10 * 18 + 2)
    fixed_noise = first["model"].fixed_noise.clone()

    # Another seed would draw other fixed noise; the checkpoint's must win. One D and one G step a batch.
    _, resumed = train(run_config([*common, "trainer.max_epochs=3", "seed=2", "ckpt_path=last"]))
    task = resumed["model"]
    assert task.batches == 3 * BATCHES and resumed["trainer"].global_step == 2 * 3 * BATCHES
    assert torch.equal(task.fixed_noise, fixed_noise)
    assert batches_in(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)) == 3 * BATCHES
    assert len(epoch_rows(run_dir)) == 3
    assert {path.name for path in (run_dir / "samples").glob("*.png")} == {
        f"step_{step:06d}{suffix}.png" for step in (12, 18) for suffix in ("", "_stage1")}

    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sample.py"), f"ckpt_path={run_dir}", "n=20",
                             f"output={tmp_path / 'grid.png'}", f"paths.log_dir={tmp_path / 'outputs'}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 * 34 + 2, 10 * 34 + 2)  # 2 of each of 10 classes


def test_generator_draws_the_class_it_is_given():
    """Generated images of class k lie nearest the mean real image of class k (a nearest-class-mean classifier,
    right on 90% of the real digits), far more often than the 1 in 10 of chance."""
    L.seed_everything(0, verbose=False)
    images, labels = digits(28)
    real = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = torch.from_numpy(labels)
    class_means = torch.stack([real[labels == k].mean(0) for k in range(10)]).flatten(1)
    task = StackGANTask(partial(StackGANGenerator, features=8, residual_blocks=1),
                        partial(StackGANDiscriminator, features=8), ImageSpec((1, 28, 28), 10),
                        latent_dim=16, optimizer=partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999)))

    def nearest_class_accuracy() -> float:
        noise, classes = task.sample_inputs(500)
        distances = torch.cdist(task.generate(noise, classes).flatten(1), class_means)
        return (distances.argmin(1) == classes).float().mean().item()

    untrained = nearest_class_accuracy()
    trainer = L.Trainer(max_epochs=2, limit_train_batches=40, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(task, DataLoader(TensorDataset(real, labels), batch_size=32, shuffle=True))
    trained = nearest_class_accuracy()
    assert untrained < 0.3 and trained > 0.6, (untrained, trained)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_stage_shapes(shape):
    generator = StackGANGenerator(shape, num_classes=10, latent_dim=16, features=8, residual_blocks=1)
    discriminator = StackGANDiscriminator(shape, num_classes=10, features=8)
    labels = torch.arange(4)
    low_res, high_res, kl = generator.stages(torch.randn(4, 16), labels)
    channels, height, width = shape
    assert low_res.shape == (4, channels, height // 2, width // 2) and high_res.shape == (4, *shape)
    assert kl.shape == () and low_res.abs().max() <= 1 and high_res.abs().max() <= 1
    assert discriminator.stage1(low_res, labels).shape == discriminator.stage2(high_res, labels).shape == (4,)


def test_conditioning_augmentation_samples_around_the_mean_and_pays_its_kl():
    torch.manual_seed(0)
    augment = ConditioningAugmentation(embedding_dim=6, condition_dim=4)
    phi = torch.randn(8, 6)
    assert kl_to_standard_normal(torch.randn(8, 4), torch.randn(8, 4)) > 0
    mean = augment.layer(phi)[:, :4]
    augment.eval()
    assert torch.equal(augment(phi)[0], mean)  # eval: c^ = mu, so fixed noise draws the same images
    augment.train()
    assert not torch.allclose(augment(phi)[0], mean)
    with torch.no_grad():  # mu = 0 and log sigma^2 = 0: the condition is the prior itself
        augment.layer.weight.zero_()
        augment.layer.bias.zero_()
    assert augment(phi)[1] == 0


MNIST = ["data=mnist", "data.download=false"]


@pytest.mark.parametrize("overrides, message", [
    ([*MNIST, "model.conditional=false"], "StackGAN is conditioned on class labels .* model.conditional must be true"),
    ([*MNIST, "model.loss=wasserstein_gp"], "model.loss='wasserstein_gp': StackGAN trains with non_saturating or "
                                            "least_squares"),
    ([], "model=stackgan does not fit data=digits .*StackGAN draws square images of 28x28, 32x32, 64x64 pixels "
         r"\(Stage I at half that\), the data gives 8x8\. Data choices that fit model=stackgan: cifar10, "
         "fashion_mnist, mnist"),
])
def test_bad_stackgan_settings_are_one_clear_error(run_config, tmp_path, overrides, message):
    write_mnist(tmp_path / "data")
    cfg = run_config(["model=stackgan", *overrides])
    with pytest.raises(DlbookError, match=message):
        build_task(cfg, build_datamodule(cfg).spec, choices())


def test_stackgan_needs_two_classes():
    with pytest.raises(IncompatibleDataError, match="at least 2 classes, not 1"):
        StackGANGenerator((1, 28, 28), num_classes=1, latent_dim=16)


def test_compile_reaches_the_parts_stackgan_calls(run_config, tmp_path):
    # module.compile() compiles calls of that module only; StackGAN calls generator.stages() and each stage's
    # discriminator, never the nets' own forward.
    write_mnist(tmp_path / "data")
    cfg = run_config([*SMALL, "data=mnist", "data.download=false"])
    task = build_task(cfg, build_datamodule(cfg).spec, choices())
    task.compile_nets("default")
    called = [task.generator.stage1, task.generator.encode, task.generator.refine, task.discriminator.stage1,
              task.discriminator.stage2]
    assert all(module._compiled_call_impl is not None for module in called)
