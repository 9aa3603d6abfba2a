"""Putting a run together from its config: the datamodule, the task sized by the data's spec, the check that the
two fit, and a task restored from a checkpoint. train.py, eval.py, the scripts and the callbacks all use these."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dlbook.errors import (DlbookError, IncompatibleDataError, check_count, check_gradient_clip_val,
                           raised_by_torch_nn)
from dlbook.utils.config import config_dir, instantiate


def build_datamodule(cfg: DictConfig, run_choices: dict[str, str] | None = None):
    """The datamodule of cfg.data, once its kind is known to fit cfg.model (a family's data settings, such as the
    GANs' image normalisation, would not even build a datamodule of another kind)."""
    from lightning.pytorch.utilities import rank_zero_only

    if run_choices is not None and cfg.get("model"):
        check_data_kind(cfg, run_choices)
    datamodule = instantiate(cfg.data)
    if rank_zero_only.rank == 0:
        datamodule.prepare_data()  # a missing dataset fails here, before any model is built
    return datamodule


def build_task(cfg: DictConfig, data_spec, run_choices: dict[str, str]):
    """The task of cfg.model sized by data_spec. A model that cannot take this data is a DlbookError naming the
    data choices that fit: the spec's type is checked first, then the nets' own shape checks."""
    from hydra.utils import get_class

    optimizer = instantiate(cfg.optimizer) if cfg.get("optimizer") else None
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    task_class = get_class(cfg.model._target_)
    try:
        if not isinstance(data_spec, task_class.accepts):
            raise IncompatibleDataError(f"it trains on {task_class.accepted_kinds()} data")
        return built_task(cfg.model, run_choices.get("model", "?"), data_spec=data_spec, optimizer=optimizer,
                          scheduler=scheduler)
    except IncompatibleDataError as error:
        raise mismatch(cfg, run_choices, data_spec.describe(), error) from None


def built_task(model_cfg: DictConfig, name: str, config_overrides: dict | None = None, **arguments):
    """The task model_cfg describes, called with `arguments`. A layer setting torch refuses, or a layer left with no
    weights, is a DlbookError naming the net's settings; any other error is a bug, shown with its stack trace."""
    from torch.nn.parameter import UninitializedParameter

    try:
        task = instantiate(model_cfg, _partial_=True, **(config_overrides or {}))(**arguments)
    except (ValueError, TypeError, RuntimeError) as error:
        if not raised_by_torch_nn(error):
            raise
        raise DlbookError(f"model={name} cannot be built: torch refused a layer's setting: {error}. "
                          f"{net_settings(model_cfg)}") from None
    # torch builds a layer of width 0 without a word; it fails in the first forward pass, or trains nothing
    empty = next(((layer, tuple(parameter.shape)) for layer, parameter in task.named_parameters()
                  if not isinstance(parameter, UninitializedParameter) and parameter.numel() == 0), None)
    if empty is not None:
        raise DlbookError(f"model={name} cannot be built: its layer {empty[0]} would have no weights (shape "
                          f"{empty[1]}), as a width, channel count or multiplier is 0 or rounds to 0. "
                          f"{net_settings(model_cfg)}")
    return task


def net_settings(model_cfg: DictConfig) -> str:
    """The model's net settings (its own where it has no net), as a sentence for an error about them."""
    net = model_cfg.get("net")
    key, settings = ("model.net", net) if isinstance(net, DictConfig) else ("model", model_cfg)
    listed = ", ".join(f"{name}={value}" for name, value in settings.items() if not name.startswith("_")
                       and not isinstance(value, DictConfig))
    return f"Its {key} settings: {listed}."


# The Trainer's counts and their least valid value. Lightning takes these without checking them and later divides
# by them (`log_every_n_steps=0`: a ZeroDivisionError mid-epoch) or asserts on their type (`max_epochs=abc`).
TRAINER_COUNTS = {"max_epochs": -1, "min_epochs": 0, "max_steps": -1, "min_steps": 0, "log_every_n_steps": 1,
                  "check_val_every_n_epoch": 1, "accumulate_grad_batches": 1}


def check_trainer_settings(trainer_cfg: DictConfig) -> None:
    """Refuse a trainer count that is not an integer at or above its least value, and a gradient clipping value
    below 0, before anything is built."""
    for key, least in TRAINER_COUNTS.items():
        if trainer_cfg.get(key) is not None:
            check_count(f"trainer.{key}", trainer_cfg[key], least)
    check_gradient_clip_val("trainer.gradient_clip_val", trainer_cfg.get("gradient_clip_val"))


def check_data_kind(cfg: DictConfig, run_choices: dict[str, str]) -> None:
    """The cheap check, before anything is built: the data's spec type against the spec types the task accepts."""
    from hydra.utils import get_class

    task_class, datamodule_class = get_class(cfg.model._target_), get_class(cfg.data._target_)
    if not issubclass(datamodule_class.spec_type, task_class.accepts):
        raise mismatch(cfg, run_choices, datamodule_class.spec_type.kind,
                       f"it trains on {task_class.accepted_kinds()} data")


def mismatch(cfg: DictConfig, run_choices: dict[str, str], data_description: str, error) -> DlbookError:
    """The one-paragraph refusal of a model for the data, naming the data choices that fit it."""
    model, data = run_choices.get("model", "?"), run_choices.get("data", "?")
    fitting, by_files = data_choices_for(cfg.model, model)
    listed = ", ".join(fitting) or "none of fixed shape"
    if by_files:
        listed += f"; of its kind, shaped by their files: {', '.join(by_files)}"
    return DlbookError(f"model={model} does not fit data={data} ({data_description}): {error}. "
                       f"Data choices that fit model={model}: {listed}.")


def data_choices_for(model_cfg: DictConfig, name: str = "?") -> tuple[list[str], list[str]]:
    """The data/ choices this model (`name`) can be built for, and those of a kind it takes whose shape only their
    files tell (an image folder). By spec type first, which reads no file and builds nothing; then the nets are
    built on each fixed spec of that type, where a setting no data can make right is refused."""
    from hydra.utils import get_class

    accepts = get_class(model_cfg._target_).accepts
    fitting, by_files = [], []
    # A net that reads pretrained weights (model=pretrained) is built without them: only its shapes are tried.
    shapes_only = {"net": {"load_weights": False}} if OmegaConf.select(model_cfg, "net.load_weights") else {}
    for path in sorted((Path(config_dir()) / "data").glob("*.yaml")):
        data_cfg = OmegaConf.load(path)
        datamodule_class = get_class(data_cfg._target_)
        if not issubclass(datamodule_class.spec_type, accepts):
            continue
        spec = datamodule_class.fixed_spec(data_cfg)
        if spec is None:
            by_files.append(path.stem)
            continue
        try:
            built_task(model_cfg, name, shapes_only, data_spec=spec, optimizer=None)
            fitting.append(path.stem)
        except IncompatibleDataError:
            pass
    return fitting, by_files


def without_pretrained_weights(run_cfg: DictConfig) -> DictConfig:
    """A run's config as its checkpoint is rebuilt: the pretrained vectors or torchvision weights it started from
    are not read again (nor downloaded); the checkpoint holds what training made of them."""
    if OmegaConf.select(run_cfg, "model.embedding.pretrained"):
        run_cfg.model.embedding.pretrained = None
    if OmegaConf.select(run_cfg, "model.net.load_weights"):
        run_cfg.model.net.load_weights = False
    return run_cfg


def restore_task(path: Path, reader: str):
    """(task with its trained weights, its datamodule, group choices), rebuilt from the config saved in the
    checkpoint. The datamodule gives shapes, classes and normalisation; it reads no data."""
    from dlbook.utils.checkpoints import check_weights_fit, load_checkpoint, saved_run_config

    checkpoint = load_checkpoint(path)
    run_cfg, choices = saved_run_config(checkpoint, path, reader)
    without_pretrained_weights(run_cfg)
    datamodule = instantiate(run_cfg.data)
    datamodule_state = checkpoint.get(type(datamodule).__qualname__)
    if datamodule_state:  # e.g. an image folder's mean and std
        datamodule.load_state_dict(datamodule_state)
    task = build_task(run_cfg, datamodule.spec, choices)
    check_weights_fit(task, checkpoint, path)
    task.load_state_dict(checkpoint["state_dict"])
    return task, datamodule, choices
