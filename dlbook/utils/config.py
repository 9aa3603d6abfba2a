"""Config plumbing shared by train and eval: where the configs live, resolvers, extras, group instantiation.

Nothing here imports torch, so composing a config (and `--help`) stays fast.
"""

import itertools
import logging
import netrc
import os
import warnings
from importlib import resources
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def config_dir() -> str:
    """The conf/ tree: shipped inside the package as dlbook.conf, or next to the package in a source checkout."""
    try:
        return str(resources.files("dlbook.conf"))
    except ModuleNotFoundError:
        return str(Path(__file__).resolve().parents[2] / "conf")


def wandb_offline() -> bool:
    """Offline unless W&B has credentials, so a run never stops to ask for a login."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("online", "offline", "disabled", "dryrun"):
        return mode != "online"
    if os.environ.get("WANDB_API_KEY"):
        return False
    try:
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
        return netrc.netrc().authenticators(host) is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


_created_dirs: dict[tuple[str, str], Path] = {}  # (parent, name) -> the directory made for it in this process


def create_unique_dir(parent: str | Path, name: str) -> Path:
    """<parent>/<name>, or <name>_1, <name>_2, ... if that exists, created atomically (mkdir fails on an existing
    directory), so runs started in the same second never share one. Asked again in this process, the same one."""
    key = (str(parent), name)
    if key not in _created_dirs:
        Path(parent).mkdir(parents=True, exist_ok=True)
        for attempt in itertools.count():
            path = Path(parent) / (name if attempt == 0 else f"{name}_{attempt}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        _created_dirs[key] = path
    return _created_dirs[key]


def run_directory(run_dir: str | None, runs_dir: str, stamp: str) -> str:
    """hydra.run.dir: run_dir when given (resuming), else a new <runs_dir>/<stamp> of this run's own."""
    return run_dir if run_dir is not None else str(create_unique_dir(runs_dir, stamp))


def sweep_directory(sweep_dir: str | None, default: str) -> str:
    """hydra.sweep.dir: sweep_dir when given (a sweep run again into its directory), else the default."""
    return default if sweep_dir is None else sweep_dir


class CheckRunDirectory(Callback):
    """Refuses a run directory (a sweep's, in a sweep) that is a file or lies under one before Hydra makes it,
    which would otherwise end in mkdir's stack trace. Checked here, not in the resolvers: an error raised while
    Hydra resolves its own settings comes out as a traceback of the resolution. It exits rather than raises, as
    Hydra turns a callback's exceptions into warnings and goes on."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        check_directory_setting(config, "run_dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        check_directory_setting(config, "sweep_dir")


def check_directory_setting(config: DictConfig, key: str) -> None:
    """The directory `key` names, or the folder under which a new one would be made (paths.log_dir)."""
    from dlbook.errors import DlbookError
    from dlbook.utils.entry import check_output_path

    if OmegaConf.select(config, key) is None:
        key = "paths.log_dir"
    path = OmegaConf.select(config, key)
    if path is None:
        return
    try:
        check_output_path(key, path, folder=True)
    except DlbookError as error:
        raise SystemExit(f"Error: {error}") from None


def records_subdir(run_dir: str | None, stamp: str) -> str:
    """hydra.output_subdir, where Hydra writes config.yaml, overrides.yaml and hydra.yaml: .hydra for a new run;
    for a run into a directory that has them already (a resume), .hydra/resume-<stamp>, so the original run's
    record stays as it was and each resume's is kept beside it."""
    if run_dir is None or not (Path(run_dir) / ".hydra" / "config.yaml").exists():
        return ".hydra"
    return str(create_unique_dir(Path(run_dir) / ".hydra", f"resume-{stamp}").relative_to(run_dir))


def records_dir() -> Path:
    """The directory of this invocation's records (config_tree.log beside Hydra's): the run directory for a new
    run, its .hydra/resume-<stamp> for a resume."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    output_dir, subdir = Path(hydra_cfg.runtime.output_dir), hydra_cfg.output_subdir
    return output_dir / subdir if subdir not in (None, ".hydra") else output_dir


def register_resolvers() -> None:
    # `cwd` rather than ${hydra:runtime.cwd}: sweep directories are resolved before Hydra sets the latter.
    for name, resolver in (("wandb_offline", wandb_offline), ("run_directory", run_directory),
                           ("sweep_directory", sweep_directory), ("records_subdir", records_subdir),
                           ("cwd", os.getcwd)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def apply_extras(cfg: DictConfig) -> None:
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        print_config_tree(cfg)


def print_config_tree(cfg: DictConfig) -> None:
    """The composed config as a rich tree, one branch per group, also saved as config_tree.log in the run dir."""
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    for key, value in OmegaConf.to_container(cfg, resolve=True).items():  # a required value left unset shows ???
        branch = tree.add(str(key), style="bold", guide_style="dim")
        text = OmegaConf.to_yaml(value) if isinstance(value, dict) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    with open(records_dir() / "config_tree.log", "w") as file:
        rich.print(tree, file=file)


def instantiate(config, *args, **kwargs):
    """hydra.utils.instantiate, except that a user error raised by the target (a bad data.batch_size, a GPU
    trainer on a host without one) comes out as a DlbookError, to be shown as one paragraph, not inside Hydra's
    "Error in call to target" wrapping."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    from dlbook.errors import DlbookError, user_error_message

    if isinstance(config, DictConfig):
        check_argument_types(config)
    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while isinstance(cause, InstantiationException):  # a nested config's target failed
            cause = cause.__cause__
        if isinstance(cause, DlbookError):
            raise cause from None
        message = user_error_message(cause)
        if message:
            raise DlbookError(f"{message} (building {config.get('_target_')})") from None
        raise


def check_argument_types(config: DictConfig) -> None:
    """Refuse a value of the wrong kind for an argument that a config's target annotates as a bool, a sequence or
    a Callable: `data.flip=off` is the text "off", which Python takes as true; `model.net.hidden_sizes=512` is a
    number where a list belongs and `model.net=resnet` a name where a config belongs, TypeErrors deep in the run.
    Null passes where the annotation allows None. Every config with a _target_ in the tree is checked, from its
    target's signature."""
    from omegaconf import ListConfig

    from dlbook.errors import DlbookError

    nodes = [config]
    while nodes:
        node = nodes.pop()
        keys = node.keys() if isinstance(node, DictConfig) else range(len(node))  # a ListConfig
        nodes += [child for child in map(node._get_node, keys) if OmegaConf.is_config(child)]  # unresolved
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        for name, parameter in target_parameters(node._target_).items():
            kind, optional = argument_kind(parameter.annotation)
            if kind is None or name not in node or OmegaConf.is_missing(node, name):
                continue
            key, value, null = node._get_full_key(name), node[name], " (or null)" if optional else ""
            if optional and value is None:
                continue
            if kind == "bool" and not isinstance(value, bool):
                raise DlbookError(f"{key}={value} must be true or false{null}.")
            if kind == "sequence" and not isinstance(value, (ListConfig, list, tuple)):
                raise DlbookError(f"{key}={value} must be a list, e.g. [{value}]{null}.")
            if kind == "callable" and not isinstance(value, DictConfig):
                raise DlbookError(f"{key}={value} is a value where a config (a _target_ and its settings) "
                                  f"belongs{choice_advice(key, value)}.")


# Groups whose choices also fill a slot inside another config: a GAN's per-net optimizers.
SLOT_GROUPS = ("optimizer",)


def choice_advice(key: str, value) -> str:
    """How to put the choice `value` of a slot group at `key` (optimizer@model.generator_optimizer=rmsprop), where
    one has a choice of that name."""
    groups = [group for group in SLOT_GROUPS if (Path(config_dir()) / group / f"{value}.yaml").is_file()]
    return f": choose one with {' or '.join(f'{group}@{key}={value}' for group in groups)}" if groups else ""


def target_parameters(target: str) -> dict:
    """The parameters a config's target takes by name: a function's, or a class's __init__ and, through
    **kwargs, its bases' in turn. None found for a target that cannot be imported or read: building it fails with
    its own message."""
    import inspect

    from hydra.utils import get_object

    try:
        found = get_object(target)
    except Exception:
        return {}
    functions = [vars(owner)["__init__"] for owner in found.__mro__ if "__init__" in vars(owner)] \
        if inspect.isclass(found) else [found]
    parameters = {}
    for function in functions:
        try:
            own = inspect.signature(function, eval_str=True).parameters
        except Exception:
            break
        for name, parameter in own.items():
            parameters.setdefault(name, parameter)
        if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in own.values()):
            break
    return parameters


def argument_kind(annotation) -> tuple[str | None, bool]:
    """("bool", "sequence", "callable" or None, whether None is allowed) for an argument's annotation: bool, a
    list, tuple or Sequence of anything, a Callable (built from a config: a partial), any of them or None; None for
    any other annotation."""
    import collections.abc
    import types
    import typing

    arguments = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in arguments
    if optional:
        rest = [argument for argument in arguments if argument is not type(None)]
        if len(rest) != 1:
            return None, False
        annotation = rest[0]
    if annotation is bool:
        return "bool", optional
    if (typing.get_origin(annotation) or annotation) in (list, tuple, collections.abc.Sequence):
        return "sequence", optional
    if (typing.get_origin(annotation) or annotation) in (collections.abc.Callable, typing.Callable):
        return "callable", optional
    return None, False


def instantiate_group(group: DictConfig | None) -> list:
    """Callbacks or loggers: a mapping of name -> config with _target_ (entries set to null are skipped)."""
    return [instantiate(entry) for entry in (group or {}).values()
            if isinstance(entry, DictConfig) and "_target_" in entry]


def choices() -> dict[str, str]:
    """The group choices of this run, e.g. {"model": "mlp", "data": "digits"}."""
    from hydra.core.hydra_config import HydraConfig

    return {group: str(choice) for group, choice in HydraConfig.get().runtime.choices.items()
            if not group.startswith("hydra")}


def compose_run(overrides, output_dir, config_name: str = "train"):
    """The config `python <config_name>.py <overrides>` would get, with Hydra's runtime set up as for a run
    writing into output_dir: for calling dlbook.train.train or dlbook.eval.evaluate in-process (tests,
    benchmarks, notebooks)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
