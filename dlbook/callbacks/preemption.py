"""Save last.ckpt when the process is told to stop (SIGTERM or SIGUSR1: a scheduler's preemption, `kill`, a
timeout)."""

import logging
import os
import signal
import threading
from pathlib import Path

from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class CheckpointOnPreemption(Callback):
    """Lightning turns SIGTERM into an exception at the next batch boundary; this writes the interrupted state
    to <checkpoints>/last.ckpt, so `ckpt_path=last run_dir=<run>` continues from that step.

    SIGUSR1, the usual warning before a job's time runs out, is treated as SIGTERM, except under SLURM, where
    Lightning answers it by checkpointing and requeueing the job. Other errors (a NaN loss, a bug) must not
    replace the last good checkpoint.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if (stage == "fit" and not SLURMEnvironment.detect()
                and threading.current_thread() is threading.main_thread()):
            signal.signal(signal.SIGUSR1, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        checkpoint = trainer.checkpoint_callback
        # During fit, the signal can also land in its validation loop.
        if not isinstance(exception, SIGTERMException) or checkpoint is None or trainer.state.fn != TrainerFn.FITTING:
            return
        path = Path(checkpoint.dirpath) / f"{checkpoint.CHECKPOINT_NAME_LAST}{checkpoint.FILE_EXTENSION}"
        trainer.save_checkpoint(path)
        log.info(f"Saved a checkpoint on SIGTERM at step {trainer.global_step}: {path}")
