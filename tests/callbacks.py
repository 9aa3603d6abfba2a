"""Callbacks that break a run on purpose, for tests of what happens then, or record what a test checks."""

import torch
from lightning.pytorch.callbacks import Callback


class PoisonWeights(Callback):
    """Sets every weight to NaN at the start of epoch `at_epoch`, as a diverging run would."""

    def __init__(self, at_epoch: int = 0):
        self.at_epoch = at_epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.at_epoch:
            with torch.no_grad():
                for parameter in module.parameters():
                    parameter.fill_(float("nan"))


class CrashAfterEpoch(Callback):
    """Raises as epoch `epoch` + 1 starts, after epoch `epoch` and its checkpoints are done: a process that
    died between two epochs."""

    def __init__(self, epoch: int = 0):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch + 1:
            raise RuntimeError(f"simulated crash after epoch {self.epoch}")


class SaveWeightsPerRank(Callback):
    """Saves each process's weights to <dirpath>/rank_<global rank>.pt when training ends."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_train_end(self, trainer, module):
        torch.save(module.state_dict(), f"{self.dirpath}/rank_{trainer.global_rank}.pt")
