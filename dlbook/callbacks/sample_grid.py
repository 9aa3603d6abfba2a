"""Sample grids from a GAN's fixed inputs: PNGs in the run directory, and images in W&B when it logs there."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torchvision.transforms.functional import to_pil_image
from torchvision.utils import make_grid, save_image

from dlbook.errors import DlbookError, check_count
from dlbook.utils.entry import check_output_path


def save_grid(images: torch.Tensor, path: Path, columns: int) -> torch.Tensor:
    """Images in [-1, 1] as one PNG grid of `columns` columns; returns the grid, in [0, 1]."""
    grid = make_grid(((images.float() + 1) / 2).clamp(0, 1), nrow=columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return grid


class SampleGrid(L.Callback):
    """Every `every_n_batches` training batches and when training ends, on global rank 0 only, writes the grids
    of the task's `sample_grids()`: "samples" as `<dirpath>/step_<batches>.png`, any other as
    `step_<batches>_<name>.png` (dirpath defaults to `<trainer.default_root_dir>/samples`).
    A conditional GAN's grid has one row per class."""

    def __init__(self, every_n_batches: int = 500, dirpath: str | None = None):
        check_count("callbacks.sample_grid.every_n_batches", every_n_batches)
        if dirpath is not None:  # a file there would fail only when the first file is written
            check_output_path("callbacks.sample_grid.dirpath", dirpath, folder=True)
        self.every_n_batches = every_n_batches
        self.dirpath = dirpath

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not hasattr(pl_module, "sample_grids"):
            raise DlbookError(f"callbacks.sample_grid draws a GAN's sample grids; "
                              f"{type(pl_module).__name__} has none. Remove it with callbacks.sample_grid=null")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.batches % self.every_n_batches == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if pl_module.batches % self.every_n_batches:  # else the last batch has just written it
            self.write(trainer, pl_module)

    def write(self, trainer, task) -> None:
        if not trainer.is_global_zero:
            return
        folder = Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "samples"
        for name, (images, columns) in task.sample_grids().items():
            suffix = "" if name == "samples" else f"_{name}"
            grid = save_grid(images, folder / f"step_{task.batches:06d}{suffix}.png", columns)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):  # as a PIL image: W&B versions disagree on the range of tensors
                    logger.log_image(f"samples{suffix}", [to_pil_image(grid)], step=trainer.global_step,
                                     caption=[f"batch {task.batches}"])
