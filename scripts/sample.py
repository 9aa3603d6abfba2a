"""Sample a trained GAN: `python scripts/sample.py ckpt_path=outputs/train/runs/<timestamp> n=64`.

Rebuilds the generator from the config saved in the checkpoint and writes an n-image PNG grid (`output=`).
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import guarded

log = logging.getLogger("dlbook.sample")
register_resolvers()


def sample(cfg: DictConfig) -> Path:
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from dlbook.callbacks.sample_grid import save_grid
    from dlbook.errors import CheckpointError, DlbookError
    from dlbook.tasks.base import CONFIG_KEY
    from dlbook.tasks.gan import GANTask
    from dlbook.train import build_model
    from dlbook.utils.checkpoints import load_checkpoint, resolve_checkpoint

    if cfg.n < 1:
        raise DlbookError(f"n={cfg.n} must be a positive number of samples")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    checkpoint = load_checkpoint(ckpt_path)
    saved = checkpoint.get(CONFIG_KEY)
    if saved is None:
        raise CheckpointError(f"ckpt_path={ckpt_path} holds no dlbook run config; sample.py reads checkpoints "
                              f"written by train.py.")
    run_cfg = OmegaConf.create(saved["config"])
    datamodule = instantiate(run_cfg.data)  # only for the image shape and classes; nothing is loaded
    task = build_model(run_cfg, datamodule.spec, saved["choices"])
    if not isinstance(task, GANTask):
        raise CheckpointError(f"ckpt_path={ckpt_path} is a model={saved['choices'].get('model')} checkpoint, "
                              f"not a GAN's; sample.py draws from GAN generators.")
    task.load_state_dict(checkpoint["state_dict"])
    torch.manual_seed(cfg.seed)
    noise, labels = task.sample_inputs(cfg.n)
    path = Path(cfg.output)
    save_grid(task.generate(noise, labels), path, task.grid_columns(len(noise)))
    log.info(f"Wrote {len(noise)} samples of model={saved['choices'].get('model')} from {ckpt_path} to {path}")
    return path


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="sample")
def main(cfg: DictConfig) -> None:
    guarded(sample, cfg)


if __name__ == "__main__":
    main()
