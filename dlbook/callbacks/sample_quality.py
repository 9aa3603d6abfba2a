"""A sample-quality metric for GANs that works offline: the Fréchet distance between generated and real training
images, measured in the features of a classifier trained with dlbook on the same data (FID uses Inception
features instead, which need downloaded weights)."""

import logging
from pathlib import Path

import lightning as L
import torch

from dlbook.errors import DlbookError
from dlbook.metrics import frechet_distance, penultimate_features

log = logging.getLogger(__name__)


class FrechetDistance(L.Callback):
    """Every `every_n_epochs` epochs logs `val/frechet_distance` (lower is better) over `num_samples` generated and
    as many real training images, on global rank 0 only.

    `classifier_ckpt` is a checkpoint written by train.py for a classifier of images of the same shape, e.g.
    `python train.py model=mnist_cnn data=mnist` for MNIST GANs.
    """

    def __init__(self, classifier_ckpt: str, num_samples: int = 1000, every_n_epochs: int = 1):
        if not classifier_ckpt:
            raise DlbookError("callbacks.sample_quality.classifier_ckpt is not set: give the best.ckpt of a "
                              "classifier trained on the same data, e.g. `python train.py model=mnist_cnn data=mnist`.")
        self.classifier_ckpt = classifier_ckpt
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.classifier = self.classifier_data = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not hasattr(pl_module, "sample_inputs"):
            raise DlbookError(f"callbacks.sample_quality measures a GAN's samples; {type(pl_module).__name__} "
                              f"has none. Remove it with callbacks.sample_quality=null")
        if trainer.is_global_zero and self.classifier is None:
            self.classifier, self.classifier_data = load_classifier(Path(self.classifier_ckpt))
            if self.classifier_data.spec.input_shape != pl_module.data_spec.input_shape:
                raise DlbookError(
                    f"callbacks.sample_quality.classifier_ckpt={self.classifier_ckpt} classifies "
                    f"{self.classifier_data.spec.describe()} images, the GAN makes {pl_module.data_spec.describe()}; "
                    f"train a classifier on the GAN's data.")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epochs_done = trainer.current_epoch + 1
        if not trainer.is_global_zero or (epochs_done % self.every_n_epochs and epochs_done != trainer.max_epochs):
            return
        pl_module.log("val/frechet_distance", self.measure(trainer, pl_module), rank_zero_only=True)

    def measure(self, trainer, pl_module) -> torch.Tensor:
        real = trainer.datamodule.data_train.images
        real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:self.num_samples]]
        fake = pl_module.generate(*pl_module.sample_inputs(len(real)))
        fake = ((fake.float() + 1) * 127.5).clamp(0, 255)  # [-1, 1] back to the pixel scale the classifier reads
        self.classifier.to(pl_module.device)
        features = [penultimate_features(self.classifier, self.classifier_data.normalize(images.to(pl_module.device)))
                    for images in (real, fake)]
        return frechet_distance(*features).float()


def load_classifier(path: Path):
    """The net and (unloaded) datamodule of a classifier checkpoint, rebuilt from the config saved in it."""
    from dlbook.tasks.classification import ClassificationTask
    from dlbook.utils.checkpoints import check_checkpoint, restore_task

    task, datamodule, choices = restore_task(check_checkpoint(path), "callbacks.sample_quality")
    if not isinstance(task, ClassificationTask):
        raise DlbookError(f"callbacks.sample_quality.classifier_ckpt={path} is not a classifier written by train.py.")
    log.info(f"Sample quality measured in the features of {path} ({choices.get('model')})")
    return task.net.eval(), datamodule
