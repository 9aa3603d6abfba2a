"""hydra/sweeper=optuna: an Optuna study (ask and tell) whose trials are the sweep's jobs.

Hydra's own Optuna sweeper stops at Optuna 2.x; this one takes the same `params` syntax with current Optuna,
adds a pruner, and numbers each job's directory by its trial. Optuna is imported only when a search runs:
Hydra imports every plugin module at each start.
"""

import itertools
import json
import logging
import math
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def search_space(overrides: list[str]) -> tuple[dict, list[str]]:
    """Optuna distributions of the sweep overrides (interval: uniform, int(interval): integers, tag(log, ...):
    log-uniform, choice and range: categorical) and the plain overrides every trial gets as they are. A later
    override of a key replaces an earlier one: a value on the command line fixes a parameter the config searches."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space, fixed = {}, {}
    for override in OverridesParser.create().parse_overrides(overrides):
        name = override.get_key_element()
        space.pop(name, None)
        fixed.pop(name, None)
        if not override.is_sweep_override():
            fixed[name] = override.input_line
        elif override.is_interval_sweep():
            interval, log_scale = override.value(), "log" in override.value().tags
            integers = isinstance(interval.start, int) and isinstance(interval.end, int)
            space[name] = (IntDistribution if integers else FloatDistribution)(interval.start, interval.end,
                                                                               log=log_scale)
        else:
            space[name] = CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    return space, list(fixed.values())


class OptunaSweeper(Sweeper):
    """Hydra instantiates sampler, pruner and a storage given as a config (a URL stays a string) before this."""

    def __init__(self, sampler, pruner, direction: str, storage, study_name: str, n_trials: int, n_jobs: int,
                 params: DictConfig | None):
        self.sampler, self.pruner, self.direction, self.storage = sampler, pruner, direction, storage
        self.study_name, self.n_trials, self.n_jobs, self.params = study_name, n_trials, n_jobs, params

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        from dlbook.callbacks.optuna_pruning import TRIALS

        space, fixed = search_space([f"{name}={value}" for name, value in (self.params or {}).items()]
                                    + list(arguments))
        study = optuna.create_study(study_name=self.study_name, direction=self.direction, storage=self.storage,
                                    sampler=self.sampler, pruner=self.pruner, load_if_exists=True)
        log.info(f"Study {study.study_name}: {len(study.trials)} trials so far; {self.n_trials} more, "
                 f"{self.n_jobs} at a time")
        for start in range(0, self.n_trials, self.n_jobs):
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - start))]
            told = set()
            try:
                # A job's number is its trial's: workers sharing a study never write into one directory.
                # Other workers' trials may take numbers in between, so consecutive numbers launch together.
                for _, group in itertools.groupby(enumerate(trials), key=lambda item: item[1].number - item[0]):
                    batch = [trial for _, trial in group]
                    TRIALS.update({trial.number: trial for trial in batch})  # for callbacks.optuna_pruning
                    returns = self.launcher.launch(
                        [[*fixed, *(f"{name}={value}" for name, value in trial.params.items())] for trial in batch],
                        initial_job_idx=batch[0].number)
                    for trial, job in zip(batch, returns):
                        state, value = outcome(job)
                        study.tell(trial, value, state=state)
                        told.add(trial.number)
                        log.info(f"Trial {trial.number}: {state.name.lower()}"
                                 + (f", {value}" if value is not None else ""))
            finally:  # a stopped sweep leaves no trial of its own running in the study
                TRIALS.clear()
                for trial in trials:
                    if trial.number not in told:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
            best = study.best_trial
            log.info(f"Best trial {best.number}: {best.value} with {best.params}")
            OmegaConf.save({"best_trial": best.number, "best_value": best.value, "best_params": best.params},
                           Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")


def outcome(job) -> tuple:
    """The Optuna state and value of a finished job: pruned or failed as its metrics.json says (a pruned trial
    keeps the values it reported), completed with the finite value train.py returned, else failed."""
    from optuna.trial import TrialState

    from dlbook.utils.entry import COMPLETED, PRUNED

    summary = Path(job.hydra_cfg.hydra.runtime.output_dir) / "metrics.json"
    status = json.loads(summary.read_text()).get("status") if summary.exists() else None
    value = job.return_value if job.status == JobStatus.COMPLETED else None
    if status == PRUNED:
        return TrialState.PRUNED, None
    if status == COMPLETED and isinstance(value, (int, float)) and math.isfinite(value):
        return TrialState.COMPLETE, float(value)
    return TrialState.FAIL, None
