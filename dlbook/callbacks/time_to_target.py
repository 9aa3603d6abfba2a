"""Time to a target metric, as speed runs report it: wall seconds until `val/acc` first reaches 0.94."""

import logging
import time

from lightning.pytorch.callbacks import Callback

from dlbook.errors import DlbookError, check_number

log = logging.getLogger(__name__)
MODES = ("max", "min")


class TimeToTarget(Callback):
    """Measures wall time from the start of fit to the end of the first validation pass whose `monitor` reaches
    `target` (at least it for mode=max, at most for min), and logs it as `time_to_target` (seconds) with
    `epochs_to_target` (epochs trained by then) every training epoch from then on, so both end in metrics.json.

    The clock starts at on_fit_start: after the dataset is read from disk and the model is built and moved to the
    device; it includes the sanity check, moving the data to the device, torch.compile's warm-up and every
    training and validation pass, which a run pays for. A resumed run adds the time saved in its checkpoint.
    With stop_on_target, training ends after that epoch. A target never reached logs nothing, and says so when
    fit ends.
    """

    def __init__(self, target: float = 0.94, monitor: str = "val/acc", mode: str = "max",
                 stop_on_target: bool = False):
        if mode not in MODES:
            raise DlbookError(f"callbacks.time_to_target.mode={mode!r} is not one of {', '.join(MODES)}.")
        check_number("callbacks.time_to_target.target", target)  # compared with the metric after each epoch
        self.target, self.monitor, self.mode, self.stop_on_target = target, monitor, mode, stop_on_target
        self.seconds: float | None = None  # when the target was reached
        self.epochs: int | None = None
        self.best: float | None = None
        self.elapsed_before = 0.0  # seconds of the run before the checkpoint it resumed from
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.start

    def on_fit_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or self.seconds is not None:
            return
        if value is None:  # it would never be reached, silently, as ModelCheckpoint's monitor would not be
            logged = ", ".join(sorted(name for name in trainer.callback_metrics if not name.startswith("train/")))
            raise DlbookError(f"callbacks.time_to_target.monitor={self.monitor} is not logged by this run's "
                              f"validation; what it logs: {logged or 'nothing'}.")
        value = float(value)  # a host sync: the device has finished this pass
        self.best = value if self.best is None else (max if self.mode == "max" else min)(self.best, value)
        reached = value >= self.target if self.mode == "max" else value <= self.target
        if trainer.strategy.reduce_boolean_decision(reached, all=False):  # every rank decides alike
            self.seconds, self.epochs = self.elapsed(), trainer.current_epoch + 1
            log.info(f"{self.monitor} reached {value:.4f} (target {self.target}) after {self.epochs} epochs, "
                     f"{self.seconds:.1f} s from the start of fit")
            if self.stop_on_target:
                trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.seconds is not None:
            pl_module.log("time_to_target", self.seconds)
            pl_module.log("epochs_to_target", float(self.epochs))

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.seconds is None:
            best = "no value logged" if self.best is None else f"best {self.best:.4f}"
            log.info(f"{self.monitor} did not reach {self.target} ({best}) in {trainer.current_epoch} epochs, "
                     f"{self.elapsed():.1f} s; no time_to_target is logged")

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed(), "seconds": self.seconds, "epochs": self.epochs, "best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.elapsed_before = state_dict["elapsed"]
        self.seconds, self.epochs, self.best = state_dict["seconds"], state_dict["epochs"], state_dict["best"]
