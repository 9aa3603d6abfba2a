"""An exponential moving average of the weights: Lightning's EMAWeightAveraging, tested from the average."""

from lightning.pytorch.callbacks import EMAWeightAveraging as LightningEMAWeightAveraging


class EMAWeightAveraging(LightningEMAWeightAveraging):
    """Lightning's callback, except when a checkpoint is read to test, validate or predict: Lightning's then loads
    the checkpoint's current (not averaged) weights whenever the callback still holds an average, which it does
    after fitting, so train.py's test pass would score other weights than eval.py's. Outside fitting the
    checkpoint's state_dict, the average, is what the model keeps."""

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if trainer.state.fn == "fit":
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
