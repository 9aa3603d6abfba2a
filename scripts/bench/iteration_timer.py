"""A callback that times one training epoch of a benchmark run, after a few warm-up batches, and a run of
train.py with it."""

import copy
import time

from common import synchronize
from lightning.pytorch.callbacks import Callback


class IterationTimer(Callback):
    """`rate`: training iterations/s from the end of batch `warmup` to the end of the first epoch's last batch;
    `fit_rate`: the same to the end of training, all epochs and what the callbacks listed before this one do at
    their ends included; `warmup_seconds`: from the start of training to the end of batch `warmup` (torch.compile
    compiles there)."""

    def __init__(self, warmup: int = 1):
        self.warmup = warmup
        self.batches = 0

    def on_train_start(self, trainer, module):
        self.initial_state = copy.deepcopy(module.state_dict())
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.batches += 1
        if self.batches == self.warmup:
            synchronize(module.device)
            self.timed_from = time.perf_counter()
            self.warmup_seconds = self.timed_from - self.start

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == 0:
            synchronize(module.device)
            self.rate = (self.batches - self.warmup) / (time.perf_counter() - self.timed_from)

    def on_train_end(self, trainer, module):
        synchronize(module.device)
        self.fit_rate = (self.batches - self.warmup) / (time.perf_counter() - self.timed_from)


def timed_train(overrides: list[str], run_dir, warmup: int = 1) -> tuple[dict, IterationTimer]:
    """train.py with `overrides` and an IterationTimer, writing into run_dir: (the objects train returns, the timer).
    The model is returned with the weights it started training from, so a plain loop compared with the run trains
    the same net from the same point (a trained net's steps can cost more than a fresh one's)."""
    from dlbook.train import train
    from dlbook.utils.config import compose_run

    with_timer = ["+callbacks.iteration_timer._target_=iteration_timer.IterationTimer",
                  f"+callbacks.iteration_timer.warmup={warmup}"]
    _, objects = train(compose_run([*overrides, *with_timer], run_dir))
    timer = next(callback for callback in objects["trainer"].callbacks if isinstance(callback, IterationTimer))
    objects["model"].load_state_dict(timer.initial_state)
    return objects, timer
