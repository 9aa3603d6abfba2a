"""Image classification with cross-entropy on logits."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from dlbook.data.spec import DataSpec
from dlbook.tasks.base import Task


class ClassificationTask(Task):
    accepts = ("labelled_images",)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, label_smoothing: float = 0.0):
        super().__init__(data_spec, optimizer, scheduler)
        self.net = net(input_shape=data_spec.input_shape, num_classes=data_spec.num_classes)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # Updated every step without host syncs (no argument checks, no NaN checks); logged once per epoch.
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_acc", MulticlassAccuracy(num_classes=data_spec.num_classes, average="micro",
                                                             validate_args=False))
            setattr(self, f"{stage}_loss", MeanMetric(nan_strategy="disable"))
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives resume, so the best is over the whole run

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def _step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        getattr(self, f"{stage}_acc").update(logits.detach(), labels)
        getattr(self, f"{stage}_loss").update(loss.detach())
        return loss

    def _log_epoch(self, stage: str) -> None:
        # Logging the metric objects makes Lightning compute, sync across processes and reset them.
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=True)
        self.log(f"{stage}/acc", getattr(self, f"{stage}_acc"), prog_bar=True)

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        self.watch_loss(loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:  # the sanity check must not count as a best epoch
            self.val_acc_best(self.val_acc.compute())
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch, batch_idx):
        return self(batch[0]).argmax(dim=1)
