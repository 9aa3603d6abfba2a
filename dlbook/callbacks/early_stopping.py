"""Early stopping: Lightning's EarlyStopping with its settings checked when it is built."""

from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping

from dlbook.errors import check_count, check_number


class EarlyStopping(LightningEarlyStopping):
    """Lightning's callback. It takes `patience` and `min_delta` unchecked and meets them only once the monitored
    value stops improving, mid-run: a patience of -2 stopped at the first epoch without improvement, `abc` failed
    there with a TypeError, a text min_delta at the first validation. Both are checked before training."""

    def __init__(self, monitor: str, patience: int = 3, min_delta: float = 0.0, **kwargs):
        check_count("callbacks.early_stopping.patience", patience, least=0,
                    note=" (validations without improvement before stopping)")
        check_number("callbacks.early_stopping.min_delta", min_delta, least=0,
                     note=" (the least change that counts as an improvement)")
        super().__init__(monitor=monitor, patience=patience, min_delta=min_delta, **kwargs)
