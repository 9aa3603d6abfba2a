"""Sample a trained GAN: `python scripts/sample.py ckpt_path=outputs/train/runs/<timestamp> n=64`.

Rebuilds the generator from the config saved in the checkpoint and writes an n-image PNG grid (`output=`).
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import guarded

log = logging.getLogger("dlbook.sample")
register_resolvers()


def sample(cfg: DictConfig) -> Path:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook.callbacks.sample_grid import save_grid
    from dlbook.errors import CheckpointError, DlbookError
    from dlbook.tasks.gan import GANTask
    from dlbook.utils.checkpoints import resolve_checkpoint, restore_task

    if cfg.n < 1:
        raise DlbookError(f"n={cfg.n} must be a positive number of samples")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, _, choices = restore_task(ckpt_path, "sample.py")
    if not isinstance(task, GANTask):
        raise CheckpointError(f"ckpt_path={ckpt_path} is a model={choices.get('model')} checkpoint, "
                              f"not a GAN's; sample.py draws from GAN generators.")
    torch.manual_seed(cfg.seed)
    noise, labels = task.sample_inputs(cfg.n)
    path = Path(cfg.output)
    save_grid(task.generate(noise, labels), path, task.grid_columns(len(noise)))
    log.info(f"Wrote {len(noise)} samples of model={choices.get('model')} from {ckpt_path} to {path}")
    return path


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="sample")
def main(cfg: DictConfig) -> None:
    guarded(sample, cfg)


if __name__ == "__main__":
    main()
