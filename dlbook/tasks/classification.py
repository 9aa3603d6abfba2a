"""Image classification with cross-entropy on logits."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MaxMetric

from dlbook.data.spec import DataSpec, ImageSpec
from dlbook.tasks.base import Task


class ClassificationTask(Task):
    accepts = (ImageSpec,)
    summary_metrics = (("test/acc", "Test accuracy"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, label_smoothing: float = 0.0):
        super().__init__(data_spec, optimizer, scheduler)
        self.net = net(input_shape=data_spec.input_shape, num_classes=data_spec.num_classes)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives resume, so the best is over the whole run

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        # Summed on the device and logged once per epoch: a few kernels a step where torchmetrics' accuracy and
        # mean launch dozens.
        self.log_epoch_mean(f"{stage}/loss", loss, len(labels))
        self.log_epoch_sum(f"{stage}/acc", (logits.argmax(dim=1) == labels).sum(), len(labels))
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        self.watch_loss(loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:  # the sanity check must not count as a best epoch
            self.val_acc_best(self.epoch_means["val/acc"])
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def predict_step(self, batch, batch_idx):
        return self(batch[0]).argmax(dim=1)
