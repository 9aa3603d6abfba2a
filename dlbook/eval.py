"""Evaluation entry point: rebuild model and data from a checkpoint's saved config and test it.

`python eval.py ckpt_path=outputs/train/runs/<timestamp>/checkpoints/best.ckpt`
"""

import logging
import warnings

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import apply_extras, config_dir, instantiate, instantiate_group, register_resolvers
from dlbook.utils.entry import guarded, refuse_several_processes, scalar_metrics, seed_run, write_summary

log = logging.getLogger("dlbook.eval")
register_resolvers()


def evaluate(cfg: DictConfig) -> tuple[dict, dict]:
    from hydra.core.hydra_config import HydraConfig

    from dlbook.errors import CheckpointError, DlbookError
    from dlbook.assembly import build_datamodule, build_task, without_pretrained_weights
    from dlbook.utils.checkpoints import load_checkpoint, resolve_checkpoint, saved_run_config

    ignored = [section for section in REBUILT_FROM_CHECKPOINT if section in cfg]
    if ignored:  # `+data.batch_size=512` would be composed, then silently not used
        raise DlbookError(f"eval.py rebuilds the run's {', '.join(REBUILT_FROM_CHECKPOINT[:2])} and training settings "
                          f"from the checkpoint, so settings under {', '.join(ignored)} would not be used. To test "
                          f"the checkpoint with other ones, run `python train.py train=false ckpt_path=<checkpoint> "
                          f"<the run's overrides> <these settings>`.")
    output_dir = HydraConfig.get().runtime.output_dir
    refuse_a_training_run_directory(output_dir)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, output_dir)
    run_cfg, choices = saved_run_config(load_checkpoint(ckpt_path), ckpt_path, "eval.py")
    without_pretrained_weights(run_cfg)
    if "data_dir" in run_cfg.data:  # the data may live elsewhere on this machine
        run_cfg.data.data_dir = cfg.paths.data_dir
    seed_run(cfg.get("seed"))

    log.info(f"Evaluating {ckpt_path}: model={choices.get('model')} data={choices.get('data')}")
    datamodule = build_datamodule(run_cfg)
    model = build_task(run_cfg, datamodule.spec, choices)
    if not model.has_test_metric:
        raise CheckpointError(f"ckpt_path={ckpt_path} holds model={choices.get('model')}, which has no test "
                              f"metric; draw samples from it with scripts/sample.py ckpt_path={ckpt_path}.")
    loggers = instantiate_group(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, logger=loggers or False)
    refuse_several_processes(trainer.world_size, choices, data=datamodule)  # testing updates no task's state
    # Testing needs only the weights; the checkpoint's training callbacks are of no use here.
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint.*")
    trainer.test(model, datamodule=datamodule, ckpt_path=str(ckpt_path), weights_only=True)
    metrics = scalar_metrics(trainer.callback_metrics)
    if not metrics:  # a summary without a number would read as an evaluation
        raise DlbookError(f"No test batch was run (trainer.limit_test_batches="
                          f"{cfg.trainer.get('limit_test_batches')}), so there is nothing to report.")
    write_summary(output_dir, {**metrics, "checkpoint": str(ckpt_path), "run_dir": output_dir})
    if model.summary(metrics):
        log.info(model.summary(metrics))
    log.info(f"Run directory: {output_dir}")
    return metrics, {"trainer": trainer, "model": model}


# What eval.py takes from the checkpoint and not from its own config.
REBUILT_FROM_CHECKPOINT = ("data", "model", "optimizer", "scheduler", "callbacks")


def refuse_a_training_run_directory(output_dir: str) -> None:
    """eval.py writes its metrics.json where it runs: in a training run's directory (run_dir=) that would replace
    the run's own summary."""
    import json
    from pathlib import Path

    from dlbook.errors import RunDirectoryInUse

    summary = Path(output_dir) / "metrics.json"
    try:
        written_by_eval = "status" not in json.loads(summary.read_text())  # train.py's has one
    except (FileNotFoundError, ValueError):
        written_by_eval = not summary.exists()
    if not written_by_eval:
        raise RunDirectoryInUse(f"run_dir={output_dir} is a training run's directory: eval.py would write its "
                                f"metrics.json over the run's. Leave run_dir out (eval.py writes to a directory of "
                                f"its own) and give the checkpoint as ckpt_path={Path(output_dir)} (its best.ckpt) "
                                f"or ckpt_path={Path(output_dir) / 'checkpoints' / 'last.ckpt'}.")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    apply_extras(cfg)
    guarded(evaluate, cfg)


if __name__ == "__main__":
    main()
