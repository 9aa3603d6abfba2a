"""CycleGAN: the unpaired-folders data, the nets, the image pool, training through dlbook.train, resume, LR decay,
translating a folder with scripts/sample.py."""

import csv
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlbook.assembly import build_datamodule
from dlbook.assembly import restore_task
from dlbook.data.spec import UnpairedImageSpec
from dlbook.data.image_folder import decode_images, image_files
from dlbook.errors import DlbookError
from dlbook.nets.gan.cyclegan import PatchDiscriminator, ResnetGenerator
from dlbook.tasks.cyclegan import ImagePool
from dlbook.train import train
from dlbook.utils.checkpoints import resolve_checkpoint
from dlbook.utils.config import compose_run
from tests.conftest import batches_in
from tests.datasets import write_unpaired_folders

ROOT = Path(__file__).resolve().parents[1]

PER_DOMAIN, BATCH_SIZE, SIZE = 64, 8, 16
BATCHES = PER_DOMAIN // BATCH_SIZE  # per epoch
FIXED = 4  # A images in the sample grid


def small_run(tmp_path, *overrides) -> list[str]:
    """A CycleGAN of narrow nets on 16 px digits: A = zeros, B = ones."""
    root = tmp_path / "data" / "unpaired"
    if not root.exists():
        write_unpaired_folders(root, size=SIZE, per_domain=PER_DOMAIN)
    return ["model=cyclegan", "data=unpaired_folders", f"data.image_size={SIZE}", f"data.batch_size={BATCH_SIZE}",
            "model.generator.features=8", "model.generator.blocks=2", "model.discriminator.features=8",
            "model.discriminator.layers=2", "model.pool_size=12", f"model.num_fixed_samples={FIXED}",
            "callbacks.sample_grid.every_n_batches=1000", *overrides]


def test_unpaired_folders_give_independent_batches_of_both_domains(run_config, tmp_path):
    cfg = run_config(small_run(tmp_path))
    datamodule = build_datamodule(cfg)
    spec = datamodule.spec
    assert spec == UnpairedImageSpec((3, SIZE, SIZE))
    datamodule.setup("fit")
    assert len(datamodule.data_train) == PER_DOMAIN
    loader = datamodule.train_dataloader()
    images_a, images_b = next(iter(loader))
    assert images_a.dtype == images_b.dtype == torch.uint8
    assert images_a.shape == images_b.shape == (BATCH_SIZE, 3, SIZE, SIZE)
    # Zeros have an empty middle, ones a full one: the two folders were not mixed up.
    middle = slice(SIZE // 2 - 1, SIZE // 2 + 1)
    assert images_a[..., middle, middle].float().mean() < images_b[..., middle, middle].float().mean()
    normalised_a, _ = datamodule.on_after_batch_transfer((images_a, images_b), 0)
    assert normalised_a.min() >= -1 and normalised_a.max() <= 1 and normalised_a.min() < 0 < normalised_a.max()
    # The same A batch meets other B images: the pairing is redrawn.
    torch.manual_seed(0)
    first = next(iter(loader))
    torch.manual_seed(1)
    second = next(iter(loader))
    assert torch.equal(first[0], second[0]) and not torch.equal(first[1], second[1])


def test_missing_domain_is_one_clear_error(run_config, tmp_path):
    write_unpaired_folders(tmp_path / "data" / "unpaired", with_b=False)
    with pytest.raises(DlbookError, match=r"no images in .*unpaired/trainB: lay the two domains out as "
                                          r"<root>/trainA/<image> and <root>/trainB/<image>"):
        build_datamodule(run_config(small_run(tmp_path)))


def test_a_pool_size_given_as_text_is_refused_before_training(run_config, tmp_path):
    with pytest.raises(DlbookError, match=r"model.pool_size=abc must be a positive integer \(images\)"):
        train(run_config(small_run(tmp_path, "model.pool_size=abc")))  # was a TypeError comparing it


def test_nets_keep_the_image_shape_and_refuse_small_images():
    images = torch.randn(2, 3, 32, 32)
    generator = ResnetGenerator((3, 32, 32), features=8)
    assert len([m for m in generator.modules() if type(m).__name__ == "ResidualBlock"]) == 6
    assert generator(images).shape == images.shape and generator(images).abs().max() <= 1
    assert PatchDiscriminator((3, 32, 32), features=8)(images).shape == (2, 1, 2, 2)  # one score per patch
    with pytest.raises(DlbookError, match="at least 24 px, the data gives 16x16"):
        PatchDiscriminator((3, 16, 16))
    with pytest.raises(DlbookError, match="multiples of 4"):
        ResnetGenerator((3, 30, 30))


def test_image_pool_fills_then_swaps_and_is_saved():
    pool = ImagePool(4, (1, 2, 2))
    first = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    assert torch.equal(pool(first), first) and pool.filled == 3
    torch.manual_seed(0)
    shown = pool(torch.full((64, 1, 2, 2), 9.0))
    assert shown.shape == (64, 1, 2, 2) and pool.filled == 4
    assert (shown[1:] != 9).any() and (shown[1:] == 9).any()  # some fakes swapped for stored ones, some not
    assert (pool.images == 9).any()
    restored = ImagePool(4, (1, 2, 2))
    restored.load_state_dict(pool.state_dict())
    assert restored.filled == 4 and torch.equal(restored.images, pool.images)


def test_cyclegan_trains_its_cycle_loss_falls_and_its_rate_decays(run_config, tmp_path):
    epochs = 4
    cfg = run_config(small_run(tmp_path, "logger=csv", "scheduler=linear_decay", f"trainer.max_epochs={epochs}"))
    _, objects = train(cfg)
    task, run_dir = objects["model"], tmp_path / "run"
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    losses = [row for row in rows if row.get("train/d_loss")]
    assert len(losses) == epochs
    for name in ("train/d_loss", "train/g_loss", "train/cycle_loss", "train/identity_loss"):
        values = [float(row[name]) for row in losses]
        assert all(math.isfinite(value) for value in values) and len(set(values)) == epochs, (name, values)
    cycle = [float(row["train/cycle_loss"]) for row in losses]
    assert cycle[-1] < 0.7 * cycle[0], cycle

    # Constant for the first half, then down by 1/3 of the rate each epoch (Zhu et al.'s 1 - k / (decay + 1)).
    rates = {name: [float(row[name]) for row in rows if row.get(name)] for name in rows[0] if name.startswith("lr-")}
    assert len(rates) == 2  # the generators' and the discriminators' optimizers
    for values in rates.values():
        assert values == pytest.approx([2e-4, 2e-4, 2e-4 * 2 / 3, 2e-4 / 3])
    assert all(optimizer.param_groups[0]["lr"] == 0 for optimizer in objects["trainer"].optimizers)

    assert task.batches == epochs * BATCHES
    assert objects["trainer"].global_step == 2 * epochs * BATCHES  # a generator and a discriminator step a batch
    # The final grid: rows of real A, fake B and reconstructed A, FIXED images of 16 px with 2 px of padding.
    grid = Image.open(run_dir / "samples" / f"step_{epochs * BATCHES:06d}.png")
    assert grid.size == (FIXED * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2)


def test_resume_continues_the_counter_the_pools_and_the_fixed_images(run_config, tmp_path):
    _, first = train(run_config(small_run(tmp_path, "trainer.max_epochs=1", "seed=1")))
    fixed = first["model"].fixed_images.clone()
    pool = first["model"].pool_b.images.clone()
    assert first["model"].pool_b.filled == 12 and fixed.abs().sum() > 0

    _, resumed = train(run_config(small_run(tmp_path, "trainer.max_epochs=2", "seed=2", "ckpt_path=last")))
    task = resumed["model"]
    assert task.batches == 2 * BATCHES and task.fixed_count == FIXED
    assert torch.equal(task.fixed_images, fixed)  # another seed would take other A images first
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert batches_in(checkpoint) == 2 * BATCHES
    assert [int(state["state"][0]["step"]) for state in checkpoint["optimizer_states"]] == [2 * BATCHES] * 2
    assert checkpoint["state_dict"]["pool_b._extra_state"] == 12
    assert not torch.equal(task.pool_b.images, pool)  # the restored pool kept taking fakes
    assert {path.name for path in (tmp_path / "run" / "samples").glob("*.png")} == {
        f"step_{BATCHES:06d}.png", f"step_{2 * BATCHES:06d}.png"}


def run_sample_script(tmp_path, *overrides) -> Path:
    """scripts/sample.py in this process, as `python scripts/sample.py <overrides>` would run it."""
    spec = importlib.util.spec_from_file_location("sample_script", ROOT / "scripts" / "sample.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.sample(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", *overrides], tmp_path / "sample",
                                     "sample"))


def pixels(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).int()


def cell(grid: torch.Tensor, row: int, column: int) -> torch.Tensor:
    """One image of a grid of SIZE px images with 2 px of padding."""
    top, left = 2 + row * (SIZE + 2), 2 + column * (SIZE + 2)
    return grid[:, top:top + SIZE, left:left + SIZE]


@pytest.mark.parametrize("direction, there, back", [("AB", "generator_ab", "generator_ba"),
                                                    ("BA", "generator_ba", "generator_ab")])
def test_sample_script_translates_a_folder_with_a_generator(run_config, tmp_path, direction, there, back):
    train(run_config(small_run(tmp_path, "trainer.max_epochs=1", "++trainer.limit_train_batches=2")))
    folder = tmp_path / "data" / "unpaired" / f"train{direction[0]}"
    n = 10  # a block of 8 and one of 2
    output = run_sample_script(tmp_path, f"ckpt_path={tmp_path / 'run'}", f"input={folder}", f"n={n}",
                               f"direction={direction}", f"output={tmp_path / 'grid.png'}",
                               f"output_dir={tmp_path / 'translated'}")
    grid = pixels(Image.open(output))
    assert grid.shape == (3, 2 * 3 * (SIZE + 2) + 2, 8 * (SIZE + 2) + 2)  # 2 blocks of 3 rows, 8 columns

    files = image_files(folder)[:n]
    written = [pixels(Image.open(tmp_path / "translated" / file.name)) for file in files]
    task, datamodule, _ = restore_task(resolve_checkpoint(str(tmp_path / "run"), ""), "test")
    inputs = datamodule.normalize(decode_images(files, SIZE, 3))
    task.eval()
    with torch.no_grad():
        translated = getattr(task, there)(inputs)
        reconstructed = getattr(task, back)(translated)
    as_pixels = lambda images: ((images + 1) * 127.5).round().int()  # noqa: E731
    for index, (real, translation, reconstruction) in enumerate(zip(*map(as_pixels, (inputs, translated,
                                                                                      reconstructed)))):
        block, column = divmod(index, 8)
        assert torch.equal(cell(grid, 3 * block, column), real)
        assert torch.equal(cell(grid, 3 * block + 1, column), written[index])
        assert (written[index] - translation).abs().max() <= 1  # PNG rounding
        assert (cell(grid, 3 * block + 2, column) - reconstruction).abs().max() <= 1
        assert (written[index] - real).abs().float().mean() > 10  # not the input passed through
    assert cell(grid, 3, 2).max() == 0  # the short last block is filled out with black


def test_sample_script_errors_for_cyclegan_input(run_config, tmp_path):
    train(run_config(small_run(tmp_path, "trainer.max_epochs=1", "++trainer.limit_train_batches=1")))
    train(run_config(["model=gan", "trainer.max_epochs=1", "++trainer.limit_train_batches=1"], run_name="gan"))
    (tmp_path / "empty").mkdir()
    cyclegan, gan = f"ckpt_path={tmp_path / 'run'}", f"ckpt_path={tmp_path / 'gan'}"
    for overrides, message in [
        ([cyclegan], r"holds model=cyclegan: a CycleGAN translates images: give input=<folder of A images> "
                     r"\(direction=AB\)"),
        ([cyclegan, f"input={tmp_path / 'empty'}"], r"input=.*empty is not a folder holding images \(.bmp, "),
        ([cyclegan, f"input={tmp_path / 'missing'}"], "input=.*missing is not a folder holding images"),
        ([cyclegan, f"input={tmp_path}", "direction=ab"], "direction=ab must be AB .* or BA"),
        ([gan, f"input={tmp_path / 'data' / 'unpaired' / 'trainA'}"], "holds model=gan: input= is for models that transform images, such as a "
                                     "CycleGAN; a GAN draws from noise: leave input= out"),
    ]:
        with pytest.raises(DlbookError, match=message):
            run_sample_script(tmp_path, *overrides)
