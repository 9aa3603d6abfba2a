"""A threshold unit trained by the perceptron learning rule, not by gradient descent (the step function has no
useful gradient): the TF 1.x Cookbook's batch rule or Rosenblatt's rule one row at a time (Pro Deep Learning with
TensorFlow 2, ch. 2). It separates two classes if a hyperplane does, and never stops erring otherwise (XOR)."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MaxMetric

from dlbook import plots
from dlbook.data.spec import DataSpec, TabularSpec
from dlbook.errors import DlbookError, IncompatibleDataError, check_number
from dlbook.tasks.base import Task

RULES = ("batch", "online")


class PerceptronTask(Task):
    """`rule` batch: each batch (a truth table is one: an update an epoch) W += learning_rate * X^T (Y - Yhat),
    with X's last column the bias input 1; online: for each row in turn w += learning_rate * (y - yhat) * x, which with learning_rate 1
    adds a missed positive row to w and subtracts a false positive. `train/mean_error` is the epoch's mean of
    (y - yhat)^2 (the fraction of rows wrong), before each update; training stops once it is at most
    `stop_at_error` (null: never), and `train/converged_epoch` is the first epoch (counted from 1, as the book
    does) whose mean error was 0, logged when training ends if there was one."""

    accepts = (TabularSpec,)
    summary_metrics = (("test/acc", "Test accuracy"),)
    one_process_only = "updates its weights by the perceptron rule, which DDP would let drift apart between processes"

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, rule: str = "batch", learning_rate: float = 0.4,
                 stop_at_error: float | None = 1e-3):
        super().__init__(data_spec, optimizer, scheduler)
        if data_spec.num_classes != 2:
            kind = "numeric targets" if data_spec.is_regression else f"{data_spec.num_classes} classes"
            raise IncompatibleDataError(f"a threshold unit separates two classes; the data has {kind}")
        if rule not in RULES:
            raise DlbookError(f"model.rule={rule!r} is not one of {', '.join(RULES)}.")
        check_number("model.learning_rate", learning_rate, above=0)
        if stop_at_error is not None:  # below 0 no epoch's error would ever be small enough
            check_number("model.stop_at_error", stop_at_error, least=0, note=", or null to train every epoch")
        if optimizer is not None:
            raise DlbookError("model=perceptron updates its weights by the perceptron rule, not by an optimizer; "
                              "this run sets one. Use optimizer=none.")
        self.automatic_optimization = False
        self.net = net(num_features=data_spec.num_features)
        self.rule = rule
        self.learning_rate = learning_rate
        self.stop_at_error = stop_at_error
        self.register_buffer("converged_epoch", torch.zeros((), dtype=torch.long))  # 0: not yet
        self.val_acc_best = self.best_of_run(MaxMetric)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The class, 0 or 1, of each row."""
        return self.net(features).long()

    @torch.no_grad()
    def training_step(self, batch, batch_idx):
        features, labels = batch
        targets = labels.to(features.dtype)
        inputs = self.net.with_bias_input(features)
        weight = self.net.weight
        if self.rule == "batch":
            errors = targets - self.net(features)
            weight += self.learning_rate * inputs.T @ errors
        else:
            errors = torch.empty_like(targets)
            for row, (x, y) in enumerate(zip(inputs, targets)):
                errors[row] = y - (x @ weight >= 0).to(x.dtype)
                weight += self.learning_rate * errors[row] * x
        self.log_epoch_mean("train/mean_error", errors.square().mean(), len(errors))
        # Lightning counts an update (global_step, by which checkpoints are kept) when an optimizer steps; with
        # optimizer=none its placeholder optimizer steps and changes nothing.
        self.optimizers().step()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        error = self.epoch_means["train/mean_error"].item()  # one sync an epoch: the run may stop here
        if error == 0 and self.converged_epoch == 0:
            self.converged_epoch.fill_(self.current_epoch + 1)
        if self.stop_at_error is not None and error <= self.stop_at_error:
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        if self.converged_epoch > 0:  # Lightning refuses self.log here; callback_metrics go to metrics.json
            self.trainer.callback_metrics["train/converged_epoch"] = self.converged_epoch.float()

    def _evaluate(self, batch, stage: str) -> None:
        features, labels = batch
        predictions = self(features)
        self.log_epoch_mean(f"{stage}/mean_error", (labels - predictions).float().square().mean(), len(labels))
        self.log_epoch_mean(f"{stage}/acc", (labels == predictions).float().mean(), len(labels))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log_best("val/acc", self.epoch_means["val/acc"], self.val_acc_best)

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        """On tables of two inputs, when training ends: the decision regions with the rows, in their own units."""
        datamodule = self.trainer.datamodule
        if stage != "fit" or self.data_spec.num_features != 2 or datamodule is None:
            return {}
        features, labels = datamodule.data_train.tensors
        scaling = datamodule.scaling  # the rows arrive scaled (data.scaling; truth tables default to none)
        points = features * scaling.feature_scale + scaling.feature_offset
        offset, scale = scaling.feature_offset.to(self.device), scaling.feature_scale.to(self.device)
        figure, axes = plots.new_figure()
        plots.decision_regions(axes, lambda grid: self((grid.to(self.device) - offset) / scale), points)
        plots.scatter(axes, points, labels, self.data_spec.target_names, edgecolors="black", linewidths=0.5)
        axes.set(xlabel=self.data_spec.feature_names[0], ylabel=self.data_spec.feature_names[1],
                 title=f"Perceptron ({self.rule} rule), training rows")
        return {"decision_regions_train": figure}
