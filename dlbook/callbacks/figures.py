"""The task's figures (fits, decision boundaries, clusters, sampler traces): PNGs in the run directory, and
images in W&B and TensorBoard when the run logs there."""

import io
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from dlbook.errors import check_count
from dlbook.utils.entry import check_output_path


class Figures(L.Callback):
    """When training ends and when testing ends, on global rank 0, saves each figure of the task's
    `figures(stage)` ("fit" or "test") as `<dirpath>/<name>.png` (dirpath defaults to
    `<trainer.default_root_dir>/figures`) and logs it to the run's W&B and TensorBoard loggers."""

    def __init__(self, dirpath: str | None = None, dpi: int = 120):
        check_count("callbacks.figures.dpi", dpi)  # refused now, not by matplotlib when training ends
        if dirpath is not None:  # a file there would fail only when the first file is written
            check_output_path("callbacks.figures.dirpath", dirpath, folder=True)
        self.dirpath = dirpath
        self.dpi = dpi

    def on_train_end(self, trainer, pl_module) -> None:
        self.write(trainer, pl_module, "fit")

    def on_test_end(self, trainer, pl_module) -> None:
        self.write(trainer, pl_module, "test")

    def write(self, trainer, task, stage: str) -> list[Path]:
        if not trainer.is_global_zero or not hasattr(task, "figures"):
            return []
        folder = Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "figures"
        written = []
        for name, figure in task.figures(stage).items():
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}.png"
            png = io.BytesIO()  # drawn once, for the file and for W&B
            figure.savefig(png, format="png", dpi=self.dpi, bbox_inches="tight")
            path.write_bytes(png.getvalue())
            written.append(path)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    from PIL import Image

                    png.seek(0)
                    logger.log_image(f"figures/{name}", [Image.open(png)], step=trainer.global_step)
                elif isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_figure(f"figures/{name}", figure, global_step=trainer.global_step,
                                                 close=False)
        return written
