"""last.ckpt: the newest state of a run, written after every training epoch and when the run is told to stop."""

import logging
import os
import signal
import threading
from functools import partial
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dlbook.utils.entry import check_output_path

log = logging.getLogger(__name__)
# The signal submitit sends before a SLURM job's time limit or on preemption (its default, overridable).
SUBMITIT_SIGNAL = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)


class LastCheckpoint(ModelCheckpoint):
    """Writes <dirpath>/last.ckpt at the end of every training epoch (after its validation), whatever the
    monitored metric did, and at the next batch boundary after a request to stop:

    - SIGTERM (a scheduler's preemption, `kill`): Lightning stops the loop at the batch boundary.
    - SIGUSR1 (the usual warning before a job's time limit) and Ctrl-C: treated as SIGTERM. A second Ctrl-C
      stops at once, saving the state as it is.
    - submitit's preemption signal (SIGUSR2), when submitit runs the job: the checkpoint is written first,
      then submitit's own handler requeues the job and exits; the requeued job resumes from last.ckpt.

    A request that comes while the run validates waits for the validation's end (at an epoch's end, for that
    epoch's checkpoints too): Lightning would stop mid-validation and, resumed, never run it again, so the
    epoch's validation metrics and its chance at best.ckpt were lost.

    Other errors (a NaN loss, a bug) leave the last good checkpoint as it was, as does a stop after a NaN loss
    that the task had not checked for yet.
    """

    def __init__(self, dirpath: str):
        check_output_path("callbacks.last_checkpoint.dirpath", dirpath, folder=True)  # else a traceback at epoch 1
        super().__init__(dirpath=dirpath, filename=self.CHECKPOINT_NAME_LAST, monitor=None, save_top_k=1,
                         save_on_train_epoch_end=True, enable_version_counter=False)
        self._previous_handlers: dict[int, object] = {}
        self._stop_signal: int | None = None
        self._held_stop = None  # Lightning's SIGTERM handler, owed a call when the validation ends

    @property
    def path(self) -> Path:
        return Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        self._stop_signal = None
        stop_signals = [signal.SIGINT, signal.SIGUSR1]
        if callable(signal.getsignal(SUBMITIT_SIGNAL)):  # submitit's requeue handler is installed
            stop_signals.append(SUBMITIT_SIGNAL)
        for signum in stop_signals:
            self._previous_handlers[signum] = signal.signal(signum, self._request_stop)

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning installs its SIGTERM handler after setup() and puts the previous one back at its teardown.
        if threading.current_thread() is threading.main_thread():
            self._held_stop = None
            lightning_handler = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, partial(self._hold_during_validation, trainer, lightning_handler))

    def _hold_during_validation(self, trainer, lightning_handler, signum: int, frame) -> None:
        if trainer.validating and not trainer.sanity_checking:
            if self._held_stop is None:
                log.info("Stop requested during validation: stopping when it ends")
            self._held_stop = lightning_handler
            return
        lightning_handler(signum, frame)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._held_stop is not None:
            lightning_handler, self._held_stop = self._held_stop, None
            lightning_handler(signal.SIGTERM, None)  # Lightning stops at the next batch or epoch boundary

    def teardown(self, trainer, pl_module, stage: str) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _request_stop(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self._stop_signal is not None:
            raise KeyboardInterrupt
        if signum == signal.SIGINT:
            log.info("Ctrl-C: stopping after this batch and saving last.ckpt (press it again to stop at once)")
        self._stop_signal = signum
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler stops the loop at the next batch boundary

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if (not isinstance(exception, (SIGTERMException, KeyboardInterrupt))
                or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking):
            return
        cause = "Ctrl-C" if isinstance(exception, KeyboardInterrupt) else signal.Signals(
            self._stop_signal or signal.SIGTERM).name
        # The task reads its recent losses only every few steps: the weights may have diverged since.
        diverged = getattr(pl_module, "first_nonfinite_step", lambda: None)()
        if diverged is None:
            trainer.save_checkpoint(self.path)
            self.last_model_path = str(self.path)
            log.info(f"Saved a checkpoint on {cause} at step {trainer.global_step}: {self.path}")
        else:
            kept = "left as it was, the last good state" if self.path.exists() else "not written"
            log.error(f"The training loss became NaN or infinite at step {diverged}, before the {cause}: "
                      f"{self.path} is {kept}.")
        if self._stop_signal == SUBMITIT_SIGNAL:
            self._previous_handlers[SUBMITIT_SIGNAL](SUBMITIT_SIGNAL, None)  # submitit requeues and exits

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self.last_model_path = filepath
