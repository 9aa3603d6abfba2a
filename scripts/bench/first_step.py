"""Callbacks for startup.py: one reports the wall-clock time of the first training step and ends the process
there; the other reports the wall and CPU clocks when training starts and ends, as plain_mnist.py does."""

import os
import time

from lightning.pytorch.callbacks import Callback


class ExitAtFirstStep(Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        print(f"FIRST_STEP_AT {time.time():.6f}", flush=True)
        os._exit(0)


class TrainingSpan(Callback):
    """From the start of the first training batch to the end of the last one (a run without validation)."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == 0 and batch_idx == 0:
            self.start = time.time(), time.process_time()

    def on_train_epoch_end(self, trainer, module):
        self.end = time.time(), time.process_time()

    def on_train_end(self, trainer, module):
        print(f"TRAINING {self.start[0]:.6f} {self.start[1]:.6f} {self.end[0]:.6f} {self.end[1]:.6f}", flush=True)
