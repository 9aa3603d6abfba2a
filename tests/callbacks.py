"""Callbacks that break a run on purpose, for tests of what happens then, or record what a test checks."""

import errno
import os
import signal

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


class SignalAtStep(Callback):
    """Sends this process `signum` after training step `step`, as a scheduler or a user would mid-epoch."""

    def __init__(self, step: int, signum: str = "SIGTERM"):
        self.step = step
        self.signum = signum

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.signum))


class SignalDuringValidation(Callback):
    """Sends this process SIGTERM after the first validation batch of epoch `epoch` (not the sanity check), as a
    scheduler would while a run validates."""

    def __init__(self, epoch: int = 0):
        self.epoch = epoch

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.current_epoch == self.epoch and batch_idx == 0 and not trainer.sanity_checking:
            os.kill(os.getpid(), signal.SIGTERM)


class FreezeAfterEpoch(Callback):
    """Sets every learning rate to 0 after epoch `epoch`, so the monitored metric stops improving."""

    def __init__(self, epoch: int = 0):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch > self.epoch:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = 0.0


class DiskFullAtEpoch(Callback):
    """Raises what writing a file raises on a full disk at the end of training epoch `epoch`, after epoch 0's
    checkpoints."""

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise OSError(errno.ENOSPC, "No space left on device")
