"""A CSV logger that appends when a resumed run writes into the same directory (Lightning's deletes the file), and a
W&B logger that logs checkpoints as artifacts offline too."""

import csv
import sys
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from dlbook.errors import DlbookError


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Keep the rows of earlier epochs; new rows extend the existing header.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, with checkpoints logged as W&B artifacts offline as well as online (`log_model`):
    Lightning refuses log_model offline, where W&B itself keeps an offline run's artifacts for `wandb sync`.
    log_model=true logs best.ckpt and last.ckpt when training ends, `all` each checkpoint as it is written: one
    artifact a run, `model-<run id>`, of type model, each file a version with the alias `best` (the monitored
    score in its metadata) or `latest` (last.ckpt), which `ckpt_path=wandb:<entity>/<project>/model-<id>:best`
    reads back."""

    def __init__(self, *args, log_model: bool | str = False, **kwargs):
        if log_model not in (True, False, "all"):
            raise DlbookError(f"logger.wandb.log_model={log_model!r} is not one of true, false, all.")
        super().__init__(*args, log_model=False, **kwargs)
        skip_unstaged_launch_inputs()
        self.checkpoint_uploads = log_model
        self.checkpoint_callbacks: list = []
        self.logged: dict[str, int] = {}  # checkpoint path -> the modification time logged

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        if checkpoint_callback not in self.checkpoint_callbacks:
            self.checkpoint_callbacks.append(checkpoint_callback)
        if self.checkpoint_uploads == "all":
            self.log_checkpoints()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self.checkpoint_uploads and self._experiment is not None:
            self.log_checkpoints()
        super().finalize(status)

    def log_checkpoints(self) -> None:
        """Log each best and last checkpoint not logged since it was written."""
        import wandb

        for callback in self.checkpoint_callbacks:
            best = getattr(callback, "best_model_path", "")
            for path, alias in ((best, "best"), (getattr(callback, "last_model_path", ""), "latest")):
                if not path or not Path(path).is_file() or self.logged.get(path) == Path(path).stat().st_mtime_ns:
                    continue
                score = callback.best_model_score if alias == "best" else None
                artifact = wandb.Artifact(f"model-{self.experiment.id}", type="model", metadata={
                    "file": Path(path).name, "monitor": getattr(callback, "monitor", None),
                    "score": float(score) if score is not None else None})
                artifact.add_file(path, name=Path(path).name)
                self.experiment.log_artifact(artifact, aliases=[alias])
                self.logged[path] = Path(path).stat().st_mtime_ns


LAUNCH_INPUTS = "wandb.sdk.launch.inputs.internal"


def skip_unstaged_launch_inputs() -> None:
    """wandb.init applies the inputs staged for W&B Launch jobs (wandb.sdk.launch.manage_config_file and friends),
    importing the Launch package to look: about 1 s of CPU per run, for none, since nothing can have been staged
    unless that module was imported. Look only when it was."""
    from wandb.sdk.wandb_run import Run

    apply = getattr(Run, "_detect_and_apply_job_inputs", None)
    if apply is None or getattr(apply, "skips_unstaged", False):
        return

    def apply_staged(run) -> None:
        if LAUNCH_INPUTS in sys.modules:
            apply(run)

    apply_staged.skips_unstaged = True
    Run._detect_and_apply_job_inputs = apply_staged
