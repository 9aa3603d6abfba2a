"""Minimising an objective of the task's own parameters with the configured optimizer (the DL Workshop solves
x^2 - 10x + 25 = 0 with Adam); each training batch is one optimizer step."""

from collections.abc import Callable

import torch
from torch import nn

from dlbook import plots
from dlbook.data.spec import DataSpec, StepsSpec
from dlbook.errors import DlbookError
from dlbook.tasks.base import Task


class MinimizeTask(Task):
    """`objective` builds a module whose forward() returns the value to minimise from its own parameters (e.g.
    dlbook.nets.basics.objectives.Quadratic). Each epoch logs `train/objective`, the value after its last step,
    and `train/<parameter>` (`train/<parameter>.<i>` for each element of a longer one); the figure is the
    objective's path over the training steps."""

    accepts = (StepsSpec,)
    summary_metrics = (("train/objective", "Objective"),)

    def __init__(self, objective: Callable[[], nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None):
        super().__init__(data_spec, optimizer, scheduler)
        self.objective = objective()
        self.path: list[float] = []  # the objective at each step of this process, for the figure

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise DlbookError("model=minimize descends its objective with an optimizer, and optimizer=none gives it "
                              "none: choose one, e.g. optimizer=adam.")
        return super().configure_optimizers()

    def training_step(self, batch, batch_idx):
        value = self.objective()
        self.watch_loss(value)
        self.path.append(value.detach())
        return value

    @torch.no_grad()
    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/objective", self.objective())
        for name, parameter in self.objective.named_parameters():
            values = parameter.detach().flatten()
            for index, value in enumerate(values):
                self.log(f"train/{name}" if len(values) == 1 else f"train/{name}.{index}", value)

    def figures(self, stage: str) -> dict:
        if stage != "fit" or not self.path:
            return {}
        figure, axes = plots.new_figure()
        start = self.batches - len(self.path)  # a resumed run draws the steps it ran
        axes.plot(range(start + 1, self.batches + 1), torch.stack(self.path).cpu().float())
        axes.set_yscale("symlog", linthresh=1e-6)
        axes.set_xlabel("step")
        axes.set_ylabel("objective")
        axes.set_title(f"Minimising {type(self.objective).__name__}")
        return {"objective": figure}
