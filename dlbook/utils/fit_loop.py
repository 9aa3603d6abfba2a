"""Lightning's fit loop with one resume defect mended: a step-limited run resumed from the end of an epoch."""

from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.loops.loop import _Loop


class FitLoop(_FitLoop):
    """With trainer.max_steps set, Lightning resumes every run as if it had stopped mid-epoch. From a checkpoint
    written at an epoch's end (last.ckpt) it then ran an empty epoch: the run ended one epoch of data short when
    max_epochs bound, and its epoch-interval schedulers one step behind. This loop resumes such a checkpoint at the
    next epoch, as Lightning does without max_steps. An epoch that max_steps cut short goes on where it stopped, as
    in Lightning (which counts it as one more epoch)."""

    @_FitLoop.restarting.setter
    def restarting(self, restarting: bool) -> None:
        epoch = self.epoch_progress.current
        epoch_unfinished = epoch.ready != epoch.processed or epoch.started != epoch.processed
        cut_short_by_max_steps = self._iteration_based_training() and not self.epoch_loop.batch_progress.is_last_batch
        _Loop.restarting.fset(self, restarting and (epoch_unfinished or cut_short_by_max_steps))


def use_fit_loop(trainer) -> None:
    """Put dlbook's FitLoop in the trainer, keeping the epoch loop and limits Lightning built from its config."""
    loop = FitLoop(trainer, min_epochs=trainer.fit_loop.min_epochs, max_epochs=trainer.fit_loop.max_epochs)
    loop.epoch_loop = trainer.fit_loop.epoch_loop
    trainer.fit_loop = loop
