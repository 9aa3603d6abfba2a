"""Show what a trained image classifier looks at:

  python scripts/explain.py ckpt_path=outputs/train/runs/<timestamp> image=digits/ method=gradcam
  python scripts/explain.py ckpt_path=<run> image=cat.png method=guided_gradcam layer=features.3 target=cat
  python scripts/explain.py ckpt_path=<run> method=filters
  python scripts/explain.py ckpt_path=<run> method=activation_max target=7 steps=300

Rebuilds the model and the preprocessing of its training data from the checkpoint and writes PNGs under
`<output_dir>/<method>/`: for gradcam and saliency each image under its heat map, for guided_backprop and
guided_gradcam the signed input gradients (grey is zero), for feature_maps a grid of the layer's channels per image,
for filters the first convolution's filters, for activation_max an input optimised to raise the target's score.
With logger=wandb they are also logged. The methods are dlbook.interpret's.
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import check_output_path, distinct_stems, guarded

log = logging.getLogger("dlbook.explain")
register_resolvers()


def explain(cfg: DictConfig) -> list[Path]:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook import interpret
    from dlbook.assembly import restore_task
    from dlbook.data.spec import ImageSpec
    from dlbook.errors import DlbookError, check_count, check_number
    from dlbook.tasks.classification import ClassificationTask
    from dlbook.utils.checkpoints import resolve_checkpoint
    from dlbook.utils.config import instantiate_group

    if cfg.method not in interpret.METHODS:
        raise DlbookError(f"method={cfg.method} is not one of {', '.join(interpret.METHODS)}.")
    for key, least in (("max_images", 1), ("steps", 1), ("blur_every", 0), ("seed", 0)):
        check_count(key, cfg[key], least)
    check_number("lr", cfg.lr, 0)
    check_number("l2", cfg.l2, 0)
    check_output_path("output_dir", cfg.output_dir, folder=True)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, datamodule, choices = restore_task(ckpt_path, "explain.py")
    if not isinstance(task, ClassificationTask) or not isinstance(task.data_spec, ImageSpec):
        raise DlbookError(f"ckpt_path={ckpt_path} holds model={choices.get('model')} on data={choices.get('data')}; "
                          f"explain.py explains image classifiers.")
    net = task.net
    layer = cfg.layer or (interpret.default_layer(net) if cfg.method in ("gradcam", "guided_gradcam",
                                                                          "feature_maps") else None)
    if layer is not None:
        interpret.named_layer(net, layer)  # a bad name is refused before any image is read
    target = class_index(cfg.target, task.class_names)
    folder = Path(cfg.output_dir) / cfg.method
    if cfg.method in interpret.IMAGE_METHODS:
        if not cfg.image:
            raise DlbookError(f"method={cfg.method} explains images: give image=<file or folder>.")
        from dlbook.data.image_folder import read_image_inputs

        path = Path(cfg.image).expanduser()
        if not path.exists():
            raise DlbookError(f"image={path} does not exist: give a file, or a folder of them.")
        names, images = read_image_inputs(path, task.data_spec, datamodule)
        names, images = distinct_stems(names[:cfg.max_images]), images[:cfg.max_images].to(task.device)
        targets = None if target is None else torch.full((len(images),), target, device=task.device)
        pictures = dict(zip(names, interpret.explanation_images(net, images, cfg.method, targets, layer)))
    elif cfg.method == "filters":
        pictures = {"filters": interpret.channel_grid(interpret.first_layer_filters(net))}
    else:
        goal = target or 0
        image, first, last = interpret.activation_maximization(
            net, goal, task.data_spec.input_shape, steps=cfg.steps, lr=cfg.lr, l2=cfg.l2,
            blur_every=cfg.blur_every, seed=cfg.seed)
        log.info(f"activation_max: the score of class {task.class_names[goal]} rose from {first:.3f} to {last:.3f}")
        pictures = {f"class_{task.class_names[goal]}": interpret.rgb(interpret.to_unit(image[None]))[0]}
    written = interpret.write_images(pictures, folder, instantiate_group(cfg.get("logger")), key=cfg.method)
    log.info(f"Wrote {len(written)} {cfg.method} images of model={choices.get('model')} from {ckpt_path} to {folder}")
    return written


def class_index(target, class_names: list[str]) -> int | None:
    """target= as a class index: a class name, or an index into the classes."""
    from dlbook.errors import DlbookError

    if target is None:
        return None
    if str(target) in class_names:
        return class_names.index(str(target))
    if isinstance(target, int) and 0 <= target < len(class_names):
        return target
    raise DlbookError(f"target={target} is not one of the model's classes: {', '.join(class_names)} (or their "
                      f"index, 0 to {len(class_names) - 1}).")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="explain")
def main(cfg: DictConfig) -> None:
    guarded(explain, cfg)


if __name__ == "__main__":
    main()
