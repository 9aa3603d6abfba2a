"""Training entry point: seed -> datamodule -> model -> callbacks -> loggers -> trainer -> fit -> test.

`python train.py model=lenet5 data=mnist optimizer.lr=3e-4`; see conf/train.yaml for every option.
"""

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from dlbook.errors import DlbookError
from dlbook.tuning import tune
from dlbook.utils.config import (apply_extras, choices, config_dir, instantiate, instantiate_group,
                                 register_resolvers)
from dlbook.utils.entry import (COMPLETED, close_wandb, drop_nvml_check_without_cuda, guarded,
                                refuse_several_processes, scalar_metrics, seed_run, write_summary)

log = logging.getLogger("dlbook.train")
register_resolvers()
RESTORE_MODES = ("full", "weights")


def compile_mode(setting) -> str | None:
    """The torch.compile mode that `compile=` asks for (true means "default"), or None for false."""
    if setting in (None, False):
        return None
    if setting is True:
        return "default"
    import torch._inductor

    modes = list(torch._inductor.list_mode_options())
    if setting not in modes:
        raise DlbookError(f"compile={setting} is not one of false, true, {', '.join(modes)}.")
    return setting


def apply_speed_options(model, channels_last: bool, mode: str | None) -> None:
    """channels_last: 4-D weights in torch.channels_last (the datamodule puts batches in it too). mode: the task's
    nets compiled in place (Task.compile_nets)."""
    import torch

    if channels_last:
        model.to(memory_format=torch.channels_last)
    if mode is not None:
        model.compile_nets(mode)


def continue_wandb_run(cfg: DictConfig, output_dir: str) -> None:
    """One W&B run per run directory, its id kept in <run dir>/wandb_run_id. Online, a resume there continues
    that run. W&B cannot resume an offline run, and `wandb sync` does not append two offline runs of one id, so
    an offline resume is a run of its own, <id>-resume<N>, in the same group, its config naming the original."""
    import secrets
    from pathlib import Path

    from omegaconf import open_dict

    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not wandb_cfg or wandb_cfg.get("id"):
        return
    id_file = Path(output_dir) / "wandb_run_id"
    resuming = id_file.exists()
    if not resuming:
        id_file.write_text(secrets.token_hex(4) + "\n")
    run_id = id_file.read_text().strip()
    with open_dict(wandb_cfg):
        wandb_cfg.id, wandb_cfg.resume = run_id, "allow"
        if resuming and wandb_cfg.get("offline"):
            resumes = 1 + len(list((Path(output_dir) / "wandb").glob(f"*run-*-{run_id}-resume*")))
            wandb_cfg.id = f"{run_id}-resume{resumes}"
            wandb_cfg.name = f"{wandb_cfg.get('name')}-resume{resumes}"
            with open_dict(cfg):
                cfg.resumes_wandb_run = run_id


def requeued_job_checkpoint(output_dir: str):
    """The run directory's last.ckpt when this is a SLURM job started again after a requeue (preemption, or
    submitit resubmitting it before its time limit): it runs the command line it had, without ckpt_path."""
    import os
    from pathlib import Path

    last = Path(output_dir) / "checkpoints" / "last.ckpt"
    if int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0 and last.exists():
        log.info(f"SLURM requeued this job (restart {os.environ['SLURM_RESTART_COUNT']}): resuming from {last}")
        return last
    return None


def cluster_plugins() -> dict:
    """Under SLURM, submitit requeues a job (conf/hydra/launcher/slurm.yaml) after LastCheckpoint has saved it;
    Lightning's own requeue on SIGUSR1 is turned off, so one requeuer acts."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return {"plugins": [SLURMEnvironment(auto_requeue=False)]} if SLURMEnvironment.detect() else {}


def point_ddp_ranks_at_this_job(output_dir: str) -> None:
    """Lightning's DDP launcher starts ranks 1.. by re-running this command line into hydra.run.dir. In a sweep
    that command line is the whole sweep; make it this job's overrides, writing into this job's directory."""
    import sys

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import read_write

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task, f"run_dir={output_dir}"]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = output_dir


def job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def completed_sweep_job(output_dir: str) -> dict | None:
    """In a sweep, the metrics of this job when its directory holds a metrics.json that says it completed with
    these same overrides (the sweep run again with sweep_dir= after a crash); None: the job runs. ckpt_path=auto,
    added to the command that runs a sweep again, says how a job starts, not what it computes."""
    import json
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    summary = Path(output_dir) / "metrics.json"
    if HydraConfig.get().mode != RunMode.MULTIRUN or not summary.exists():
        return None
    metrics = json.loads(summary.read_text())
    stored, this_job = ([override for override in overrides if override != "ckpt_path=auto"]
                        for overrides in (metrics.get("overrides") or [], job_overrides()))
    if metrics.get("status") != COMPLETED or stored != this_job:
        return None
    log.info(f"Job {HydraConfig.get().job.num} completed before ({summary}): skipped")
    return metrics


def train(cfg: DictConfig) -> tuple[dict, dict]:
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar

    from dlbook.assembly import build_datamodule, build_task, check_trainer_settings
    from dlbook.utils.checkpoints import (changed_settings, check_weights_fit, limit_reached, load_checkpoint,
                                         newest_checkpoint, refuse_to_overwrite, resolve_checkpoint)
    from dlbook.utils.fit_loop import use_fit_loop

    drop_nvml_check_without_cuda()
    output_dir = HydraConfig.get().runtime.output_dir
    run_choices = choices()
    completed = completed_sweep_job(output_dir)
    if completed is not None:
        return completed, {}
    if cfg.get("ckpt_path") == "auto":  # a preemptible job's one setting: resume if run_dir has a checkpoint
        ckpt_path = newest_checkpoint(output_dir)
        log.info(f"ckpt_path=auto: {f'resuming from {ckpt_path}' if ckpt_path else 'no checkpoint yet, starting'}")
    else:
        ckpt_path = (resolve_checkpoint(cfg.ckpt_path, output_dir) if cfg.get("ckpt_path")
                     else requeued_job_checkpoint(output_dir))
    restore = cfg.get("ckpt_restore", "full")
    if restore not in RESTORE_MODES:
        raise DlbookError(f"ckpt_restore={restore} is not one of {', '.join(RESTORE_MODES)}.")
    check_trainer_settings(cfg.trainer)
    if cfg.get("train") and cfg.get("ckpt_path") != "auto" and not (ckpt_path and restore == "full"):
        refuse_to_overwrite(output_dir, restore)
    mode = compile_mode(cfg.get("compile"))
    continue_wandb_run(cfg, output_dir)
    seed_run(cfg.get("seed"))

    log.info(f"Data: data={run_choices.get('data')} <{cfg.data._target_}>")
    datamodule = build_datamodule(cfg, run_choices)
    data_spec = datamodule.spec
    log.info(f"Model: model={run_choices.get('model')} on {data_spec.describe()}")
    model = build_task(cfg, data_spec, run_choices)
    if cfg.get("test") and not model.has_test_metric:
        raise DlbookError(f"test=true, but model={run_choices.get('model')} has no test metric (a GAN is judged by "
                          f"its samples: see samples/ in the run directory and scripts/sample.py); set test=false.")
    if ckpt_path:  # read safely and checked here; Lightning reads it again to resume
        checkpoint = load_checkpoint(ckpt_path)
        check_weights_fit(model, checkpoint, ckpt_path)
        if restore == "weights":  # fine-tuning: the weights, but a fresh optimizer, schedule and count
            model.load_state_dict(checkpoint["state_dict"])
        elif cfg.get("train") and (changes := changed_settings(checkpoint, cfg)):  # train=false: a test, no resume
            log.warning(f"Resuming from {ckpt_path} with settings other than those of the run that wrote it: "
                        f"{'; '.join(changes)}. To continue that run as it was, pass its overrides (its "
                        f".hydra/overrides.yaml).")
        if restore == "full" and cfg.get("train") and (reached := limit_reached(checkpoint, cfg.trainer)):
            log.warning(f"{ckpt_path} has trained {reached}: there is nothing left to train, so this run only "
                        f"tests it, and its metrics.json has no training metrics. To train on, raise the limit.")
        del checkpoint
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1 and not model.automatic_optimization:
        raise DlbookError(f"trainer.accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}: "
                          f"model={run_choices.get('model')} steps its own optimizers (several per batch), which "
                          f"Lightning cannot accumulate for; set trainer.accumulate_grad_batches=1 and a larger "
                          f"data.batch_size instead.")
    apply_speed_options(model, cfg.get("channels_last", False), mode)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    model.run_config = {"config": resolved, "choices": run_choices}

    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    if not loggers:  # it has nothing to write to
        callbacks = [callback for callback in callbacks if not isinstance(callback, LearningRateMonitor)]
    if cfg.trainer.get("enable_progress_bar") is False:  # Lightning refuses a progress bar callback then
        callbacks = [callback for callback in callbacks if not isinstance(callback, ProgressBar)]
    point_ddp_ranks_at_this_job(output_dir)
    strategy = {}
    if cfg.trainer.get("strategy") == "ddp" and model.steps_use_part_of_the_model:
        strategy["strategy"] = "ddp_find_unused_parameters_true"
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **strategy, **cluster_plugins())
    refuse_several_processes(trainer.world_size, run_choices, model=model, data=datamodule)
    use_fit_loop(trainer)
    for logger in loggers:
        logger.log_hyperparams({**resolved, "run_dir": output_dir, "choices": run_choices})

    tuned = tune(cfg, trainer, model, datamodule, output_dir) if cfg.get("train") else {}
    train_metrics = {}
    if cfg.get("train"):
        log.info("Training" + (f", resumed from {ckpt_path}" if ckpt_path and restore == "full" else ""))
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path if restore == "full" else None,
                    weights_only=True)
        train_metrics = scalar_metrics(trainer.callback_metrics)

    test_metrics, best_path = {}, ""
    if cfg.get("test"):
        if cfg.get("train"):
            best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        else:  # `train=false ckpt_path=X` tests X
            best_path = str(ckpt_path or "")
        log.info(f"Testing {best_path or 'the current weights (no checkpoint was saved)'}")
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True)
        test_metrics = scalar_metrics(trainer.callback_metrics)

    metrics = {**tuned, **train_metrics, **test_metrics}
    objects = {"trainer": trainer, "model": model, "datamodule": datamodule}
    if not trainer.is_global_zero:  # under DDP one process writes the summary
        return metrics, objects
    summary_path = write_summary(output_dir, {**metrics, "status": COMPLETED, "overrides": job_overrides(),
                                              "model/params": sum(p.numel() for p in model.parameters()),
                                              "best_checkpoint": best_path, "run_dir": output_dir,
                                              "epochs": trainer.current_epoch, "global_step": trainer.global_step})
    close_wandb()  # its shutdown report would otherwise bury the lines below
    if model.summary(metrics):
        log.info(model.summary(metrics))
    log.info(f"Run directory: {output_dir} (summary in {summary_path.name})")
    return metrics, objects


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    apply_extras(cfg)
    result = guarded(train, cfg)
    metric_name = cfg.get("optimized_metric")
    if not metric_name:
        return None
    metrics = result[0] if result else {}
    return metrics.get(metric_name, worst_value())  # what a sweeper minimises or maximises


def worst_value() -> float:
    """What a failed job reports to the sweeper: the worst value of its direction, so Optuna steers away from
    it (Optuna's Hydra sweeper cannot take NaN); NaN for sweepers without a direction."""
    from hydra.core.hydra_config import HydraConfig

    direction = str(HydraConfig.get().sweeper.get("direction", ""))
    return {"maximize": float("-inf"), "minimize": float("inf")}.get(direction, float("nan"))


if __name__ == "__main__":
    main()
