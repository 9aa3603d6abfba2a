"""Regression of numeric targets with mean squared or absolute error, trained on scaled targets and reported in
their original units; a linear net can instead be solved by least squares, for checking gradient descent."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, MinMetric, R2Score

from dlbook import plots
from dlbook.data.spec import DataSpec, TabularSpec
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.tabular.linear import Linear
from dlbook.tasks.base import Task

LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss}  # mae: the DL Workshop's absolute loss
SOLVERS = ("gradient", "least_squares")
INITIAL_MSE_KEY = "dlbook_initial_train_mse"  # checkpoint entry: the training MSE before the first step


def error_metrics(prefix: str) -> MetricCollection:
    return MetricCollection({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()},
                            prefix=prefix)


class RegressionTask(Task):
    """`loss` mse or mae on the scaled targets. `solver` gradient trains the net with the optimizer; least_squares
    (a Linear net, mse, optimizer=none) sets its weights to the least-squares fit of the training rows when
    training starts, and the epochs only measure it. `train_start/mse` is the training rows' MSE, in the targets'
    units, before the first step (the Hands-On book's cost at theta = 0)."""

    accepts = (TabularSpec,)
    summary_metrics = (("test/rmse", "Test RMSE"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, loss: str = "mse", solver: str = "gradient"):
        super().__init__(data_spec, optimizer, scheduler)
        if not data_spec.is_regression:
            raise IncompatibleDataError(f"it regresses numeric targets; the data has {data_spec.num_classes} classes")
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r} is not one of {', '.join(LOSSES)}.")
        if solver not in SOLVERS:
            raise DlbookError(f"model.solver={solver!r} is not one of {', '.join(SOLVERS)}.")
        outputs = data_spec.num_targets
        self.net = net(num_features=data_spec.num_features, num_outputs=outputs)
        if solver == "least_squares" and (loss != "mse" or optimizer is not None or not isinstance(self.net, Linear)):
            raise DlbookError(f"model.solver=least_squares solves a linear net for the mean squared error without an "
                              f"optimizer; this run has model.loss={loss}, optimizer "
                              f"{'none' if optimizer is None else 'set'} and net {type(self.net).__name__}. Use "
                              f"model=linear_regression model.loss=mse optimizer=none, or model.solver=gradient.")
        self.solver = solver
        self.initial_mse: torch.Tensor | None = None
        # Not saved: the datamodule recomputes them from the same training rows.
        self.register_buffer("target_mean", torch.tensor(data_spec.target_mean or (0.0,) * outputs),
                             persistent=False)
        self.register_buffer("target_std", torch.tensor(data_spec.target_std or (1.0,) * outputs),
                             persistent=False)
        self.criterion = LOSSES[loss]()
        self.val_metrics = error_metrics("val/")
        self.test_metrics = error_metrics("test/")
        self.val_rmse_best = self.best_of_run(MinMetric)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predictions in the targets' original units."""
        return self.original_units(self.net(features))

    def _loss(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss on scaled targets, and the batch's predictions in scaled units."""
        features, targets = batch
        predictions = self.net(features)
        loss = self.criterion(predictions, targets)
        self.log_epoch_mean(f"{stage}/loss", loss, len(targets))
        return loss, predictions

    def training_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every training row, scaled, on the task's device (tables are small)."""
        features, targets = self.trainer.datamodule.data_train.tensors
        return features.to(self.device), targets.to(self.device)

    @torch.no_grad()
    def solve_least_squares(self) -> None:
        features, targets = self.training_rows()
        design = torch.cat([features, torch.ones_like(features[:, :1])], dim=1).double()
        solution = torch.linalg.lstsq(design.cpu(), targets.double().cpu()).solution  # (features + 1, targets)
        self.net.layer.weight.copy_(solution[:-1].T)
        self.net.layer.bias.copy_(solution[-1])

    def on_train_start(self) -> None:
        super().on_train_start()
        if self.solver == "least_squares":
            self.solve_least_squares()
        if self.initial_mse is None:  # a fresh run; a resumed one has it from its checkpoint
            features, targets = self.training_rows()
            self.net.eval()  # without dropout
            with torch.no_grad():
                squared = ((self.net(features) - targets) * self.target_std).square()
            self.net.train()
            self.initial_mse = squared.mean().cpu()
            for logger in self.trainer.loggers:
                logger.log_metrics({"train_start/mse": float(self.initial_mse)}, step=self.trainer.global_step)

    def on_train_end(self) -> None:
        # Lightning refuses self.log here; callback_metrics is what train.py writes to metrics.json.
        self.trainer.callback_metrics["train_start/mse"] = self.initial_mse

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.initial_mse is not None:
            checkpoint[INITIAL_MSE_KEY] = self.initial_mse

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.initial_mse = checkpoint.get(INITIAL_MSE_KEY)

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

    def original_units(self, scaled: torch.Tensor) -> torch.Tensor:
        return scaled * self.target_std + self.target_mean  # the scaling's offset and scale, whichever scaling

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
        self.log_best("val/rmse", values["val/rmse"], self.val_rmse_best)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_metrics(self.test_metrics)

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        """The fit on the training rows ("fit") or the test rows ("test"), in the data's own units: the points and
        the fitted line for one feature, predicted against actual values otherwise (the first target)."""
        datamodule = self.trainer.datamodule
        rows = getattr(datamodule, "data_train" if stage == "fit" else "data_test", None)
        if rows is None or len(rows) == 0:
            return {}
        features, targets = (tensor.to(self.device) for tensor in rows.tensors)
        scaling = datamodule.scaling  # the rows arrive scaled (data.scaling)
        offset, scale = scaling.feature_offset.to(self.device), scaling.feature_scale.to(self.device)
        actual = self.original_units(targets)[:, 0].cpu()
        spec, split = self.data_spec, "training" if stage == "fit" else "test"
        training = self.training
        self.eval()  # no dropout in the picture
        figure, axes = plots.new_figure()
        if spec.num_features == 1:
            x = features[:, 0] * scale[0] + offset[0]
            line = torch.linspace(x.min().item(), x.max().item(), 100, device=self.device)
            axes.scatter(x.cpu(), actual, s=12, label=f"{split} rows")
            axes.plot(line.cpu(), self(((line - offset[0]) / scale[0]).unsqueeze(1))[:, 0].cpu(), color="C1",
                      label="fit")
            axes.set(xlabel=spec.feature_names[0], ylabel=spec.target_names[0])
            axes.legend(fontsize="small")
        else:
            predicted = self(features)[:, 0].cpu()
            axes.scatter(actual, predicted, s=12)
            low, high = min(actual.min(), predicted.min()).item(), max(actual.max(), predicted.max()).item()
            axes.plot([low, high], [low, high], color="C1", linewidth=1)  # where perfect predictions lie
            axes.set(xlabel=f"actual {spec.target_names[0]}", ylabel=f"predicted {spec.target_names[0]}")
        self.train(training)
        axes.set_title(f"Regression fit, {split} rows")
        return {f"regression_fit_{split}": figure}
