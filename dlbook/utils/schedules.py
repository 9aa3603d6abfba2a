"""Learning-rate schedules that torch does not ship as classes."""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from dlbook.errors import DlbookError, check_count


def linear_decay(optimizer: Optimizer, total_epochs: int, decay_epochs: int | None = None) -> LambdaLR:
    """The optimizer's rate for the first total_epochs - decay_epochs epochs, then down by an equal step each
    epoch to 1 / (decay_epochs + 1) of it in the last, on the way to 0 (Zhu et al. 2017). Step it per epoch.
    decay_epochs defaults to the second half of the run."""
    if total_epochs is None or total_epochs < 1:
        raise DlbookError(f"The linear_decay schedule spans trainer.max_epochs, which is {total_epochs}; set it")
    if decay_epochs is not None:
        check_count("scheduler.scheduler.decay_epochs", decay_epochs, note=f" up to {total_epochs}")
    decay = decay_epochs if decay_epochs is not None else total_epochs - total_epochs // 2
    if not 0 < decay <= total_epochs:
        raise DlbookError(f"scheduler.scheduler.decay_epochs={decay_epochs} must lie in 1..{total_epochs}")
    return LambdaLR(optimizer, lambda epoch: min(1.0, (total_epochs - epoch) / (decay + 1)))
