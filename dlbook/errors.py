"""Errors that the entry points print as one paragraph instead of a stack trace."""

import errno
import math
import sys


class DlbookError(Exception):
    """A user-facing error: bad config value, missing data, unusable checkpoint."""


class DatasetNotFoundError(DlbookError):
    pass


class IncompatibleDataError(DlbookError):
    """A model cannot consume what the chosen datamodule produces."""


class CheckpointError(DlbookError):
    pass


class RunDirectoryInUse(CheckpointError):
    """A run would write over another run's checkpoints; it leaves that directory as it is, metrics.json too."""


class NonFiniteLossError(DlbookError):
    """The training loss became NaN or infinite."""


COUNT_RANGES = {1: "a positive integer", 0: "a non-negative integer", -1: "-1 (no limit) or a non-negative integer"}


def check_count(key: str, value, least: int = 1, note: str = "") -> None:
    """Refuse a setting that must be a whole number from `least` up (a bool is none), naming it; `note` adds
    what else it may be or where it came from."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise DlbookError(f"{key}={value} must be {COUNT_RANGES.get(least, f'an integer from {least} up')}{note}.")


def check_sizes(key: str, sizes) -> None:
    """Refuse a list of layer widths (units, channels) holding one that is not a positive integer: torch builds a
    layer of width 0 and fails only when it runs, or never, training nothing through it."""
    for index, size in enumerate(sizes):
        check_count(f"{key}[{index}]", size)


def check_number(key: str, value, least: float | None = None, most: float | None = None, note: str = "",
                 above: float | None = None, below: float | None = None) -> None:
    """Refuse a setting that must be a finite number (from `least`, or `above` it, to `most`, or `below` it, where
    given), naming it."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or (least is not None and value < least) or (above is not None and value <= above)
            or (most is not None and value > most) or (below is not None and value >= below)):
        lower = f" from {least}" if least is not None else f" above {above}" if above is not None else ""
        if most is not None:
            upper = f" to {most}" if least is not None else f" and at most {most}" if lower else f" up to {most}"
        elif below is not None:
            upper = f" to below {below}" if least is not None else f" and below {below}" if lower else f" below {below}"
        else:
            upper = " up" if least is not None else ""
        raise DlbookError(f"{key}={value} must be a finite number{lower}{upper}{note}.")


def check_gradient_clip_val(key: str, value) -> None:
    """Lightning clips nothing at a value of 0 or below, so a negative one would train unclipped, silently."""
    if value is not None:
        check_number(key, value, least=0, note=" (0 or null: no clipping)")


def user_error_message(error: BaseException) -> str | None:
    """The paragraph to show for an error the user's settings caused: a DlbookError, a Lightning
    MisconfigurationException (a Trainer or callback setting it refuses, such as a `monitor` no metric has), the
    RuntimeError of Lightning's early stopping for such a `monitor`, the ValueError or TypeError of an argument
    Lightning refuses when the Trainer, a callback or a logger is built (`trainer.precision=fp8`, a model
    summary's `max_depth=-3`) or its fit loop meets as the data is set up (a `val_check_interval` longer than an
    epoch), a required value (???) left unset, or a full disk; None for any other error, a bug to show with its
    stack trace."""
    if isinstance(error, DlbookError):
        return str(error)
    if refused_by_lightning(error):
        return f"Lightning refused a setting: {str(error).strip()}"  # some of its messages start with a space
    omegaconf_errors = sys.modules.get("omegaconf.errors")
    if omegaconf_errors is not None and isinstance(error, omegaconf_errors.MissingMandatoryValue):
        return f"{error.full_key} is required (??? in the config): pass {error.full_key}=<value>."
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk is full or over its quota ({error}). Checkpoints are written whole or not at all, so "
                f"the last one written is intact: free some space and resume with ckpt_path=last.")
    return None


def refused_by_lightning(error: BaseException) -> bool:
    lightning_errors = sys.modules.get("lightning.fabric.utilities.exceptions")  # loaded if Lightning raised it
    return ((lightning_errors is not None and isinstance(error, lightning_errors.MisconfigurationException))
            or (isinstance(error, RuntimeError)
                and raised_in(error, "lightning/pytorch/callbacks/early_stopping.py", "_validate_condition_metric"))
            or (isinstance(error, (ValueError, TypeError)) and raised_by_lightning_in_init(error))
            or (isinstance(error, ValueError)  # a val_check_interval of more batches than an epoch has
                and raised_in(error, "lightning/pytorch/loops/fit_loop.py", "setup_data")))


def raised_in(error: BaseException, file: str, function: str) -> bool:
    """Whether the error was raised by `function` of the file whose path ends in `file`."""
    frames = traceback_frames(error)
    return bool(frames) and frames[-1][1] == function and frames[-1][0].endswith(file)


def raised_by_lightning_in_init(error: BaseException) -> bool:
    """Whether Lightning's own code raised the error while one of its objects, the Trainer, a callback or a
    logger, was checking its arguments (`precision=fp8`, a model summary's `max_depth=-3`)."""
    frames = traceback_frames(error)
    in_lightning_init = any(function == "__init__" and "/lightning/pytorch/" in file for file, function in frames)
    return in_lightning_init and "/lightning/" in frames[-1][0]


def raised_by_torch_nn(error: BaseException) -> bool:
    """Whether a torch.nn layer raised the error: a layer's own check of its arguments (a dropout above 1, a
    negative width) while a net was built."""
    frames = traceback_frames(error)
    return bool(frames) and "/torch/nn/" in frames[-1][0]


def traceback_frames(error: BaseException) -> list[tuple[str, str]]:
    """(file as a POSIX path, function) of each frame the error passed through, the one that raised it last."""
    import traceback
    from pathlib import Path

    return [(Path(frame.filename).as_posix(), frame.name) for frame in traceback.extract_tb(error.__traceback__)]
