"""Regression of numeric targets with mean squared or absolute error, trained on scaled targets and reported in
their original units; a linear net can instead be solved by least squares, for checking gradient descent. Rows
of a table go to a table's nets, windows of a time series to the sequence nets."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, MinMetric, R2Score

from dlbook import plots
from dlbook.data.spec import DataSpec, TabularSpec, TimeSeriesSpec
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.sequence.regressor import SequenceRegressor
from dlbook.nets.tabular.linear import Linear
from dlbook.tasks.base import Task

LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss}  # mae: the DL Workshop's absolute loss
SOLVERS = ("gradient", "least_squares")
INITIAL_MSE_KEY = "dlbook_initial_train_mse"  # checkpoint entry: the training MSE before the first step
EVALUATION_STAGES = ("val", "test")


def error_metrics(prefix: str) -> MetricCollection:
    return MetricCollection({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(), "r2": R2Score()},
                            prefix=prefix)


def series_metrics(forecast: bool) -> nn.ModuleDict:
    """What a time series adds to each evaluation stage's errors, by "<stage>_<name>": the RMSE in scaled units and,
    forecasting, the last-value baseline's RMSE in the series' units and in scaled units."""
    names = ("rmse_scaled", "rmse_last_value", "rmse_scaled_last_value") if forecast else ("rmse_scaled",)
    return nn.ModuleDict({f"{stage}_{name}": MeanSquaredError(squared=False) for stage in EVALUATION_STAGES
                          for name in names})


def reads_sequences(net: Callable[..., nn.Module]) -> bool:
    """Whether the net (a class, or a partial of one) reads windows whole."""
    net_class = getattr(net, "func", net)
    return isinstance(net_class, type) and issubclass(net_class, SequenceRegressor)


def predicted_against_actual(axes, actual: torch.Tensor, predicted: torch.Tensor, name: str) -> None:
    axes.scatter(actual, predicted, s=12)
    low, high = min(actual.min(), predicted.min()).item(), max(actual.max(), predicted.max()).item()
    axes.plot([low, high], [low, high], color="C1", linewidth=1)  # where perfect predictions lie
    axes.set(xlabel=f"actual {name}", ylabel=f"predicted {name}")


class RegressionTask(Task):
    """`loss` mse or mae on the scaled targets. `solver` gradient trains the net with the optimizer; least_squares
    (a Linear net, mse, optimizer=none) sets its weights to the least-squares fit of the training rows when
    training starts, and the epochs only measure it. `train_start/mse` is the training rows' MSE, in the targets'
    units, before the first step (the Hands-On book's cost at theta = 0).

    On time series it also logs `rmse_scaled`, the RMSE in scaled units (the DL Workshop's), and, forecasting,
    `rmse_last_value` and `rmse_scaled_last_value`, the RMSE of the persistence baseline that predicts each
    window's last value for every step ahead. `rounded_accuracy` logs `acc`, the fraction of samples whose
    predictions, rounded, equal their targets (Advanced DL with Python's counting of ones)."""

    accepts = (TabularSpec, TimeSeriesSpec)
    summary_metrics = (("test/acc", "Test accuracy"), ("test/rmse", "Test RMSE"))

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, loss: str = "mse", solver: str = "gradient",
                 rounded_accuracy: bool = False):
        super().__init__(data_spec, optimizer, scheduler)
        if not data_spec.is_regression:
            raise IncompatibleDataError(f"it regresses numeric targets; the data has {data_spec.num_classes} classes")
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r} is not one of {', '.join(LOSSES)}.")
        if solver not in SOLVERS:
            raise DlbookError(f"model.solver={solver!r} is not one of {', '.join(SOLVERS)}.")
        outputs = data_spec.num_targets
        self.series = isinstance(data_spec, TimeSeriesSpec)
        if self.series and not reads_sequences(net):
            raise IncompatibleDataError(f"it reads rows of features; the data gives sequences of "
                                        f"{data_spec.window} steps")
        if reads_sequences(net) and not self.series:
            raise IncompatibleDataError(f"it reads sequences of steps; the data gives rows of "
                                        f"{data_spec.num_features} features")
        self.net = (net(input_shape=data_spec.input_shape, num_outputs=outputs) if self.series else
                    net(num_features=data_spec.num_features, num_outputs=outputs))
        if solver == "least_squares" and (loss != "mse" or optimizer is not None or not isinstance(self.net, Linear)):
            raise DlbookError(f"model.solver=least_squares solves a linear net for the mean squared error without an "
                              f"optimizer; this run has model.loss={loss}, optimizer "
                              f"{'none' if optimizer is None else 'set'} and net {type(self.net).__name__}. Use "
                              f"model=linear_regression model.loss=mse optimizer=none, or model.solver=gradient.")
        self.solver = solver
        self.rounded_accuracy = rounded_accuracy
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
        self.series_metrics = series_metrics(data_spec.forecast) if self.series else nn.ModuleDict()

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
        if self.rounded_accuracy:
            self.log_rounded_accuracy("train", predictions.detach(), batch[1])
        return loss

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        _, predictions = self._loss(batch, stage)
        features, targets = batch
        actual = self.original_units(targets)
        metrics.update(self.original_units(predictions), actual)
        if self.series:
            compared = {"rmse_scaled": (predictions, targets)}
            if self.data_spec.forecast:  # the first series' last value, for every step ahead
                last_values = features[:, 0 if self.data_spec.newest_first else -1, :1].expand_as(targets)
                compared.update(rmse_last_value=(self.original_units(last_values), actual),
                                rmse_scaled_last_value=(last_values, targets))
            for name, (predicted, expected) in compared.items():
                self.series_metrics[f"{stage}_{name}"].update(predicted, expected)
        if self.rounded_accuracy:
            self.log_rounded_accuracy(stage, predictions, targets)

    def log_rounded_accuracy(self, stage: str, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Adds the batch's samples whose every prediction, rounded, is its target (in the targets' units)."""
        correct = (self.original_units(predictions).round() == self.original_units(targets).round()).all(dim=1)
        self.log_epoch_sum(f"{stage}/acc", correct.sum(), len(correct))

    def original_units(self, scaled: torch.Tensor) -> torch.Tensor:
        return scaled * self.target_std + self.target_mean  # the scaling's offset and scale, whichever scaling

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", self.test_metrics)

    def log_metrics(self, metrics: MetricCollection, stage: str) -> dict[str, torch.Tensor]:
        values = metrics.compute()
        for key, metric in self.series_metrics.items():
            if key.startswith(f"{stage}_"):
                values[f"{stage}/{key.removeprefix(f'{stage}_')}"] = metric.compute()
                metric.reset()
        metrics.reset()  # also after the sanity check, whose batches must not count towards epoch 0
        self.log_dict(values, prog_bar=True)
        return values

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        values = self.log_metrics(self.val_metrics, "val")
        self.log_best("val/rmse", values["val/rmse"], self.val_rmse_best)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_metrics(self.test_metrics, "test")

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        """The fit on the training rows ("fit") or the test rows ("test"), in the data's own units: the points and
        the fitted line for one feature, predicted against actual values otherwise (the first target). A forecast
        is drawn over time, the series and the predictions one step ahead."""
        datamodule = self.trainer.datamodule
        rows = getattr(datamodule, "data_train" if stage == "fit" else "data_test", None)
        if rows is None or len(rows) == 0:
            return {}
        features, targets = (tensor.to(self.device) for tensor in rows.tensors)
        if self.series:
            return self.series_figures(stage, features, targets)
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
            predicted_against_actual(axes, actual, self(features)[:, 0].cpu(), spec.target_names[0])
        self.train(training)
        axes.set_title(f"Regression fit, {split} rows")
        return {f"regression_fit_{split}": figure}

    def series_figures(self, stage: str, features: torch.Tensor, targets: torch.Tensor) -> dict:
        """A forecast's actual and predicted values one step ahead over the training or test part of the series,
        by date when the data has dates; a sequence's targets predicted against actual values otherwise."""
        spec, split = self.data_spec, "training" if stage == "fit" else "test"
        training = self.training
        self.eval()  # no dropout in the picture
        actual, predicted = self.original_units(targets)[:, 0].cpu(), self(features)[:, 0].cpu()
        self.train(training)
        name = spec.target_names[0] if spec.target_names else "target"
        if not spec.forecast:
            figure, axes = plots.new_figure()
            predicted_against_actual(axes, actual, predicted, name)
            axes.set_title(f"Predictions, {split} sequences")
            return {f"regression_fit_{split}": figure}
        datamodule = self.trainer.datamodule
        positions = (datamodule.target_positions("train" if stage == "fit" else "test")
                     if hasattr(datamodule, "target_positions") else torch.arange(len(actual)))
        figure, axes = plots.new_figure(width=8.0)
        axes.plot(positions, actual, label="actual", linewidth=1.2)
        axes.plot(positions, predicted, label="predicted", linewidth=1.2)
        dates = getattr(datamodule, "dates", ())
        if dates:  # a few dates along the axis: every step's would overlap
            ticks = positions[torch.linspace(0, len(positions) - 1, min(6, len(positions))).round().long()]
            axes.set_xticks(ticks.tolist(), [dates[position] for position in ticks.tolist()], fontsize="small")
        axes.set(xlabel="date" if dates else "step", ylabel=name)
        axes.legend(fontsize="small")
        axes.set_title(f"One step ahead, {split} part")
        return {f"forecast_{split}": figure}
