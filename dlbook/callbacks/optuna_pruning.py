"""callbacks.optuna_pruning: Optuna's Lightning pruning callback, reporting to the trial of this sweep job."""

import optuna
from optuna_integration import PyTorchLightningPruningCallback

from dlbook.errors import DlbookError
from dlbook.utils.entry import scalar_metrics

# The trials of the jobs that hydra/sweeper=optuna is running in this process, by job (= trial) number.
TRIALS: dict[int, optuna.trial.Trial] = {}


class OptunaPruning(PyTorchLightningPruningCallback):
    """Reports `monitor` to the job's trial after each validation; when the study's pruner says so, raises
    optuna.TrialPruned carrying the run's metrics at that point, which train.py writes to metrics.json."""

    def __init__(self, monitor: str, strategy: str | None = None):
        from hydra.core.hydra_config import HydraConfig

        trial = TRIALS.get(HydraConfig.get().job.get("num"))
        if trial is None:
            raise DlbookError("callbacks.optuna_pruning reports to an Optuna trial, and this job has none: it runs "
                              "in a search (python train.py -m hparams_search=...) whose trials run in the "
                              "sweeper's process (hydra/launcher=basic). Elsewhere set callbacks.optuna_pruning=null.")
        if "ddp" in str(strategy):  # its other processes would have no trial to report to
            raise DlbookError(f"callbacks.optuna_pruning prunes trials of one process; trainer.strategy={strategy} "
                              f"starts several. Set callbacks.optuna_pruning=null to search with DDP trials.")
        super().__init__(trial, monitor)

    def on_validation_end(self, trainer, pl_module) -> None:
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned as pruned:
            pruned.metrics = scalar_metrics(trainer.callback_metrics)
            raise
