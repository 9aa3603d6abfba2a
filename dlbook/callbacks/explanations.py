"""Grad-CAM and saliency maps of a few test images when testing ends: what the classifier looked at, as PNG grids
in the run directory and images in W&B."""

from pathlib import Path

import lightning as L
import torch
from torchvision.utils import make_grid

from dlbook import interpret
from dlbook.data.spec import ImageSpec
from dlbook.errors import DlbookError, check_count
from dlbook.utils.entry import check_output_path


class Explanations(L.Callback):
    """When testing ends, on global rank 0: each of `methods` (dlbook.interpret's image methods) for the first
    `num_images` test images and their predicted classes, as one grid `<dirpath>/<method>.png` (dirpath defaults
    to `<trainer.default_root_dir>/explanations`), logged to the run's W&B logger. `layer`: Grad-CAM's and the
    feature maps' layer, by dotted name; null: the net's last Conv2d."""

    def __init__(self, methods: tuple[str, ...] = ("gradcam", "saliency"), num_images: int = 8,
                 layer: str | None = None, dirpath: str | None = None):
        if isinstance(methods, str):  # methods=gradcam on the command line: one method, not its letters
            methods = [methods]
        if not methods:
            raise DlbookError(f"callbacks.explanations.methods is empty; give one or more of "
                              f"{', '.join(interpret.IMAGE_METHODS)}, or remove the callback with "
                              f"callbacks.explanations=null.")
        check_count("callbacks.explanations.num_images", num_images)
        unknown = [method for method in methods if method not in interpret.IMAGE_METHODS]
        if unknown:
            raise DlbookError(f"callbacks.explanations.methods has {', '.join(unknown)}; the methods are "
                              f"{', '.join(interpret.IMAGE_METHODS)}.")
        self.methods = tuple(methods)
        self.num_images = num_images
        self.layer = layer
        if dirpath is not None:  # a file there would fail only when the first file is written
            check_output_path("callbacks.explanations.dirpath", dirpath, folder=True)
        self.dirpath = dirpath

    def setup(self, trainer, pl_module, stage: str) -> None:
        net = getattr(pl_module, "net", None)
        if not isinstance(getattr(pl_module, "data_spec", None), ImageSpec) or net is None:
            raise DlbookError(f"callbacks.explanations explains image classifiers; {type(pl_module).__name__} is "
                              f"not one. Remove it with callbacks.explanations=null")
        interpret.named_layer(net, self.layer or interpret.default_layer(net))  # refused before training

    def on_test_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        with torch.inference_mode(False), torch.enable_grad():  # the test loop runs in inference mode
            images = next(iter(datamodule.test_dataloader()))[0][:self.num_images].to(pl_module.device)
            images = datamodule.preprocess(images, augment=False)
            grids = {method: make_grid(interpret.explanation_images(pl_module.net, images, method, None, self.layer),
                                       nrow=self.num_images, padding=1, pad_value=1.0)
                     for method in self.methods}
        folder = Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "explanations"
        interpret.write_images(grids, folder, trainer.loggers, key="explanations", step=trainer.global_step)
