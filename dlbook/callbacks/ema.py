"""An exponential moving average of the weights: Lightning's EMAWeightAveraging, tested from the average."""

from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMAWeightAveraging

from dlbook.errors import check_count, check_number


class EMAWeightAveraging(LightningEMAWeightAveraging):
    """Lightning's callback, except when a checkpoint is read to test, validate or predict: Lightning's then loads
    the checkpoint's current (not averaged) weights whenever the callback still holds an average, which it does
    after fitting, so train.py's test pass would score other weights than eval.py's. Outside fitting the
    checkpoint's state_dict, the average, is what the model keeps. Its settings are checked before training:
    Lightning never updates the average with update_every_n_steps below 1, so the untrained weights would be
    tested and saved."""

    def __init__(self, decay: float = 0.999, update_every_n_steps: int = 1,
                 update_starting_at_step: int | None = None, **kwargs):
        check_number("callbacks.ema.decay", decay, 0, 1, note=" (the old average's weight in each update)")
        check_count("callbacks.ema.update_every_n_steps", update_every_n_steps)
        if update_starting_at_step is not None:
            check_count("callbacks.ema.update_starting_at_step", update_starting_at_step, least=0,
                        note=", or null to average from the first step")
        super().__init__(decay=decay, update_every_n_steps=update_every_n_steps,
                         update_starting_at_step=update_starting_at_step, **kwargs)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.state.fn == "fit":
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
