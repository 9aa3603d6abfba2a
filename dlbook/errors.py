"""Errors that the entry points print as one paragraph instead of a stack trace."""


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
