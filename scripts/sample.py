"""Sample a trained GAN, VAE or RBM, translate images with a trained CycleGAN, or reconstruct them with an
autoencoder:

  python scripts/sample.py ckpt_path=outputs/train/runs/<timestamp> n=64
  python scripts/sample.py ckpt_path=<CycleGAN run> input=<folder of A images> [direction=BA] [output_dir=<folder>]
  python scripts/sample.py ckpt_path=<autoencoder run> input=<folder of images>

Rebuilds the nets from the config saved in the checkpoint and writes a PNG grid (`output=`): n samples of a GAN
(VAE: decoded from the prior; RBM: Gibbs chains from random states), for a CycleGAN rows of up to 8 input images,
their translations, and those translated back, for an autoencoder the input images over their reconstructions
(a denoiser's noisy inputs between them).
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import check_output_path, distinct_stems, guarded

log = logging.getLogger("dlbook.sample")
register_resolvers()


def sample(cfg: DictConfig) -> Path:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook.assembly import restore_task
    from dlbook.callbacks.sample_grid import save_grid
    from dlbook.errors import DlbookError, check_count
    from dlbook.utils.checkpoints import resolve_checkpoint

    from dlbook.data.image_folder import IMAGE_SUFFIXES

    check_count("n", cfg.n)
    check_count("seed", cfg.seed, 0)
    check_output_path("output", cfg.output, suffixes=IMAGE_SUFFIXES)
    if cfg.output_dir:
        check_output_path("output_dir", cfg.output_dir, folder=True)
    if cfg.direction not in ("AB", "BA"):
        raise DlbookError(f"direction={cfg.direction} must be AB (translate A images with G_AB) or BA (B images "
                          f"with G_BA)")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, datamodule, choices = restore_task(ckpt_path, "sample.py")
    files = input_files(cfg.input, cfg.n) if cfg.input else []
    inputs = read_inputs(files, task, datamodule) if files else None
    torch.manual_seed(cfg.seed)
    try:
        grid, columns, outputs = task.sample(cfg.n, inputs, direction=cfg.direction)
    except DlbookError as error:
        raise DlbookError(f"ckpt_path={ckpt_path} holds model={choices.get('model')}: {error}") from None
    save_grid(grid, Path(cfg.output), columns)
    if cfg.output_dir:
        names = distinct_stems(files) or [f"{index:05d}" for index in range(len(outputs))]
        for name, image in zip(names, outputs):
            save_grid(image[None], Path(cfg.output_dir) / f"{name}.png", 1)  # one image: no padding
    source = f"{len(files)} images of {cfg.input} ({cfg.direction})" if files else f"{len(outputs)} samples"
    log.info(f"Wrote {source} of model={choices.get('model')} from {ckpt_path} to {cfg.output}"
             + (f", one image each in {cfg.output_dir}" if cfg.output_dir else ""))
    return Path(cfg.output)


def input_files(folder: str, n: int) -> list[Path]:
    from dlbook.data.image_folder import IMAGE_SUFFIXES, image_files
    from dlbook.errors import DlbookError

    files = image_files(Path(folder).expanduser())[:n]
    if not files:
        raise DlbookError(f"input={folder} is not a folder holding images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return files


def read_inputs(files: list[Path], task, datamodule):
    """The images read, resized and scaled as the task's training data was."""
    from dlbook.data.image_folder import decode_images

    channels, size, _ = task.data_spec.input_shape
    return datamodule.normalize(decode_images(files, size, channels))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="sample")
def main(cfg: DictConfig) -> None:
    guarded(sample, cfg)


if __name__ == "__main__":
    main()
