"""Config plumbing shared by train and eval: where the configs live, resolvers, extras, group instantiation.

Nothing here imports torch, so composing a config (and `--help`) stays fast.
"""

import logging
import netrc
import os
import warnings
from importlib import resources
from pathlib import Path

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


def coalesce(*values):
    """The first value that is not null: `${coalesce:${run_dir},<default>}`."""
    return next((value for value in values if value is not None), None)


def register_resolvers() -> None:
    # `cwd` rather than ${hydra:runtime.cwd}: sweep directories are resolved before Hydra sets the latter.
    for name, resolver in (("wandb_offline", wandb_offline), ("coalesce", coalesce), ("cwd", os.getcwd)):
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
    from hydra.core.hydra_config import HydraConfig

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    for key, value in cfg.items():
        branch = tree.add(str(key), style="bold", guide_style="dim")
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    with open(output_dir / "config_tree.log", "w") as file:
        rich.print(tree, file=file)


def instantiate(config, *args, **kwargs):
    """hydra.utils.instantiate, except that a DlbookError raised by the target (a bad data.batch_size, say) comes
    out as itself, to be shown as one paragraph, not inside Hydra's "Error in call to target" wrapping."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    from dlbook.errors import DlbookError

    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while isinstance(cause, InstantiationException):  # a nested config's target failed
            cause = cause.__cause__
        if isinstance(cause, DlbookError):
            raise cause from None
        raise


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
