"""Regression of numeric targets with mean squared error, trained on standardised targets and reported in their
original units."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, MinMetric, R2Score

from dlbook.data.spec import DataSpec, TabularSpec
from dlbook.errors import IncompatibleDataError
from dlbook.tasks.base import Task


def error_metrics(prefix: str) -> MetricCollection:
    return MetricCollection({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()},
                            prefix=prefix)


class RegressionTask(Task):
    accepts = (TabularSpec,)
    summary_metrics = (("test/rmse", "Test RMSE"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None):
        super().__init__(data_spec, optimizer, scheduler)
        if not data_spec.is_regression:
            raise IncompatibleDataError(f"it regresses numeric targets; the data has {data_spec.num_classes} classes")
        outputs = data_spec.num_targets
        self.net = net(num_features=data_spec.num_features, num_outputs=outputs)
        # Not saved: the datamodule recomputes them from the same training rows.
        self.register_buffer("target_mean", torch.tensor(data_spec.target_mean or (0.0,) * outputs),
                             persistent=False)
        self.register_buffer("target_std", torch.tensor(data_spec.target_std or (1.0,) * outputs),
                             persistent=False)
        self.criterion = nn.MSELoss()
        self.val_metrics = error_metrics("val/")
        self.test_metrics = error_metrics("test/")
        self.val_rmse_best = MinMetric()
        self.val_rmse_best.persistent(True)  # survives resume, so the best is over the whole run

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predictions in the targets' original units."""
        return self.original_units(self.net(features))

    def _loss(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The MSE on standardised targets, and the batch's prediction errors in standardised units."""
        features, targets = batch
        predictions = self.net(features)
        loss = self.criterion(predictions, targets)
        self.log_epoch_mean(f"{stage}/loss", loss, len(targets))
        return loss, predictions

    def training_step(self, batch, batch_idx):
        loss, predictions = self._loss(batch, "train")
        self.watch_loss(loss)
        # The books report the training MSE in the data's units: summed on the device, no host sync.
        squared = ((predictions.detach() - batch[1]) * self.target_std).square()
        self.log_epoch_sum("train/mse", squared.mean(dim=1).sum(), len(squared))
        return loss

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        _, predictions = self._loss(batch, stage)
        metrics.update(self.original_units(predictions), self.original_units(batch[1]))

    def original_units(self, standardized: torch.Tensor) -> torch.Tensor:
        return standardized * self.target_std + self.target_mean

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", self.test_metrics)

    def log_metrics(self, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        values = metrics.compute()
        metrics.reset()  # also after the sanity check, whose batches must not count towards epoch 0
        self.log_dict(values, prog_bar=True)
        return values

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        values = self.log_metrics(self.val_metrics)
        if not self.trainer.sanity_checking:  # the sanity check must not count as a best epoch
            self.val_rmse_best(values["val/rmse"])
            self.log("val/rmse_best", self.val_rmse_best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_metrics(self.test_metrics)

    def predict_step(self, batch, batch_idx):
        return self(batch[0])
