"""Sample a trained GAN, or translate images with a trained CycleGAN:

  python scripts/sample.py ckpt_path=outputs/train/runs/<timestamp> n=64
  python scripts/sample.py ckpt_path=<CycleGAN run> input=<folder of A images> [direction=BA] [output_dir=<folder>]

Rebuilds the nets from the config saved in the checkpoint and writes a PNG grid (`output=`): n samples of a GAN,
or for a CycleGAN rows of up to 8 input images, their translations, and those translated back.
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import guarded

log = logging.getLogger("dlbook.sample")
register_resolvers()
TRANSLATION_COLUMNS = 8


def sample(cfg: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    from dlbook.errors import CheckpointError, DlbookError
    from dlbook.tasks.cyclegan import CycleGANTask
    from dlbook.tasks.gan import GANTask
    from dlbook.utils.checkpoints import resolve_checkpoint, restore_task

    if cfg.n < 1:
        raise DlbookError(f"n={cfg.n} must be a positive number of images")
    if cfg.direction not in ("AB", "BA"):
        raise DlbookError(f"direction={cfg.direction} must be AB (translate A images with G_AB) or BA (B images "
                          f"with G_BA)")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, datamodule, choices = restore_task(ckpt_path, "sample.py")
    model = choices.get("model")
    if isinstance(task, CycleGANTask):
        if not cfg.input:
            raise DlbookError(f"ckpt_path={ckpt_path} is a CycleGAN (model={model}), which translates images: give "
                              f"input=<folder of {cfg.direction[0]} images> (direction={cfg.direction}).")
        count = translate(task, datamodule, cfg)
        log.info(f"Translated {count} images of {cfg.input} ({cfg.direction}) with {ckpt_path}: grid {cfg.output}"
                 + (f", images in {cfg.output_dir}" if cfg.output_dir else ""))
    elif isinstance(task, GANTask):
        if cfg.input:
            raise DlbookError(f"input={cfg.input} is for translating with a CycleGAN; ckpt_path={ckpt_path} is a "
                              f"model={model} GAN, which draws from noise: leave input= out.")
        count = draw(task, cfg)
        log.info(f"Wrote {count} samples of model={model} from {ckpt_path} to {cfg.output}")
    else:
        raise CheckpointError(f"ckpt_path={ckpt_path} is a model={model} checkpoint, not a GAN's or a CycleGAN's; "
                              f"sample.py draws from GAN generators and translates with CycleGAN's.")
    return Path(cfg.output)


def draw(task, cfg: DictConfig) -> int:
    import torch

    from dlbook.callbacks.sample_grid import save_grid

    torch.manual_seed(cfg.seed)
    noise, labels = task.sample_inputs(cfg.n)
    save_grid(task.generate(noise, labels), Path(cfg.output), task.grid_columns(len(noise)))
    return len(noise)


def translate(task, datamodule, cfg: DictConfig) -> int:
    """The first n images of cfg.input, read and scaled as the training data was, translated a block of
    TRANSLATION_COLUMNS at a time: the grid's rows are each block's inputs, translations and reconstructions."""
    import torch

    from dlbook.callbacks.sample_grid import save_grid
    from dlbook.data.image_folder import IMAGE_SUFFIXES, decode_images, image_files
    from dlbook.errors import DlbookError

    files = image_files(Path(cfg.input).expanduser())[:cfg.n]
    if not files:
        raise DlbookError(f"input={cfg.input} is not a folder holding images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    channels, size, _ = task.data_spec.input_shape
    images = datamodule.normalize(decode_images(files, size, channels))
    columns = min(len(files), TRANSLATION_COLUMNS)
    rows, translations = [], []
    for block in images.split(columns):
        translated, reconstructed = task.translate_and_back(block, cfg.direction)
        translations.append(translated)
        # A short last block is filled out with black, so that each of its rows starts in the first column.
        blank = block.new_full((columns - len(block), *block.shape[1:]), -1.0)
        rows += [torch.cat([row, blank]) for row in (block, translated, reconstructed)]
    save_grid(torch.cat(rows), Path(cfg.output), columns)
    if cfg.output_dir:
        for file, image in zip(files, torch.cat(translations)):
            save_grid(image[None], Path(cfg.output_dir) / f"{file.stem}.png", 1)  # one image: no padding
    return len(files)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="sample")
def main(cfg: DictConfig) -> None:
    guarded(sample, cfg)


if __name__ == "__main__":
    main()
