"""A callback that reports the wall-clock time of the first training step and ends the process there."""

import os
import time

from lightning.pytorch.callbacks import Callback


class ExitAtFirstStep(Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        print(f"FIRST_STEP_AT {time.time():.6f}", flush=True)
        os._exit(0)
