"""Finding and checking checkpoints before Lightning touches them, so a bad path is one clear error."""

import functools
import logging
import os
import re
import zipfile
from pathlib import Path

from dlbook.errors import CheckpointError, RunDirectoryInUse

log = logging.getLogger("dlbook")


def newest_checkpoint(output_dir: str) -> Path | None:
    """ckpt_path=auto: the run directory's most recently written checkpoint that is whole, or None when it has
    none (a fresh start). One cut short by a kill is passed over for the one before it."""
    folder = Path(output_dir) / "checkpoints"
    written = sorted(folder.glob("*.ckpt"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
    for path in written:
        if zipfile.is_zipfile(path):
            return path.resolve()
        log.warning(f"ckpt_path=auto passes over {path}: it is not a whole checkpoint (cut short?).")
    return None


def refuse_to_overwrite(output_dir: str, restore: str) -> None:
    """A run that does not resume (a fresh start, or ckpt_restore=weights) into a directory that holds another
    run's checkpoints would overwrite them: best.ckpt at its first validation, last.ckpt at its first epoch's end."""
    folder = Path(output_dir) / "checkpoints"
    found = sorted(path.name for path in folder.glob("*.ckpt"))
    if not found:
        return
    start = "ckpt_restore=weights starts a new run" if restore == "weights" else "This run starts afresh"
    raise RunDirectoryInUse(
        f"The run directory {output_dir} holds an earlier run's checkpoints ({', '.join(found)}). {start} and "
        f"would overwrite them. To continue that run, pass ckpt_path=last (or ckpt_path=auto); to start another, "
        f"leave run_dir out (a new directory) or give a new one; to start this one again from scratch, delete "
        f"{folder} first.")


WANDB_PREFIX = "wandb:"


def wandb_checkpoint(name: str, output_dir: str) -> Path:
    """ckpt_path=wandb:<entity>/<project>/<artifact>:<alias or version>: the artifact's checkpoint, downloaded into
    <output_dir>/artifacts/ (W&B's API needs to be online)."""
    from dlbook.utils.config import wandb_offline

    if wandb_offline():
        raise CheckpointError(
            f"ckpt_path={WANDB_PREFIX}{name} reads a W&B artifact, which needs W&B online: set WANDB_API_KEY or run "
            f"`wandb login` (WANDB_MODE is {os.environ.get('WANDB_MODE') or 'unset'}). Without a "
            f"network, fetch it elsewhere with `wandb artifact get {name}` and pass ckpt_path=<its .ckpt file>.")
    import wandb

    try:
        artifact = wandb.Api().artifact(name, type="model")
        folder = Path(artifact.download(root=str(Path(output_dir) / "artifacts" / name.replace("/", "_"))))
    except Exception as error:  # not found, no permission, no network
        raise CheckpointError(f"ckpt_path={WANDB_PREFIX}{name}: W&B could not give the artifact ({type(error).__name__}: "
                              f"{error}). Name it as <entity>/<project>/model-<run id>:<best|latest|v3>.") from None
    found = sorted(folder.glob("*.ckpt"))
    if len(found) != 1:
        raise CheckpointError(f"ckpt_path={WANDB_PREFIX}{name} holds {len(found)} .ckpt files, not one: "
                              f"{', '.join(path.name for path in found) or 'none'}.")
    log.info(f"ckpt_path={WANDB_PREFIX}{name}: downloaded {found[0]}")
    return check_checkpoint(found[0])


def resolve_checkpoint(ckpt_path: str, output_dir: str) -> Path:
    """`last`/`best` name the checkpoints of the run directory, `auto` its newest; `wandb:<artifact>` a W&B model
    artifact's; a directory means its best.ckpt; else a file."""
    if str(ckpt_path).startswith(WANDB_PREFIX):
        return wandb_checkpoint(str(ckpt_path)[len(WANDB_PREFIX):], output_dir)
    if ckpt_path == "auto":
        path = newest_checkpoint(output_dir)
        if path is None:
            raise CheckpointError(f"ckpt_path=auto found no checkpoint in {Path(output_dir) / 'checkpoints'}: pass "
                                  f"run_dir=<a run directory> or ckpt_path=<file.ckpt>.")
        return path
    if ckpt_path in ("last", "best"):
        path = Path(output_dir) / "checkpoints" / f"{ckpt_path}.ckpt"
        if not path.exists():
            raise CheckpointError(
                f"ckpt_path={ckpt_path} looks for {path}, which does not exist. To resume a run, also pass "
                f"run_dir=<its directory> (one holding checkpoints/{ckpt_path}.ckpt), or give ckpt_path=<file.ckpt>.")
        return check_checkpoint(path)
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        candidates = [path / "checkpoints" / "best.ckpt", path / "best.ckpt"]
        found = next((candidate for candidate in candidates if candidate.exists()), None)
        if found is None:
            others = sorted(file.name for file in (path / "checkpoints").glob("*.ckpt"))
            held = (f"; its checkpoints/ holds {', '.join(others)}: give ckpt_path={path / 'checkpoints' / others[-1]}"
                    if others else "; give a .ckpt file or a run directory")
            raise CheckpointError(f"ckpt_path={ckpt_path} is a directory without checkpoints/best.ckpt{held}.")
        path = found
    return check_checkpoint(path)


RESUMING = "Give the path of a .ckpt file, or ckpt_path=last with run_dir=<run directory>."


def check_checkpoint(path: Path, key: str = "ckpt_path", advice: str = RESUMING) -> Path:
    """path, resolved, if it is a checkpoint file; else a CheckpointError naming the setting `key` that gave it."""
    if not path.exists():
        nearby = sorted(p.name for p in path.parent.glob("*.ckpt")) if path.parent.is_dir() else []
        hint = f" Checkpoints in {path.parent}: {', '.join(nearby)}." if nearby else ""
        raise CheckpointError(f"{key}={path} does not exist.{hint} {advice}")
    # torch.save writes a zip archive; a truncated or foreign file has no valid central directory.
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{key}={path} is not a readable checkpoint (truncated or not written by "
                              f"torch.save). Use another checkpoint of the run, e.g. last.ckpt or best.ckpt.")
    return path.resolve()


def load_checkpoint(path: Path) -> dict:
    """The checkpoint at path, unpickled with weights_only=True: tensors and plain containers only, so that a
    checkpoint from elsewhere cannot run code. Everything dlbook writes is of those types."""
    import pickle

    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"ckpt_path={path} holds Python objects other than tensors and plain containers, which unpickling "
            f"could run as code; dlbook loads only checkpoints of tensors and plain values (what train.py writes) "
            f"and refuses this one.") from None
    except Exception as error:
        raise CheckpointError(f"ckpt_path={path} could not be read ({type(error).__name__}: {error}).") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"ckpt_path={path} is not a Lightning checkpoint (it has no state_dict).")
    return checkpoint


def check_weights_fit(model, checkpoint: dict, path: Path) -> None:
    """A CheckpointError naming what differs, before Lightning's long state-dict traceback would."""
    from dlbook.tasks.base import CONFIG_KEY

    saved, own = checkpoint["state_dict"], model.state_dict()
    differences = {
        "missing": [name for name in own if name not in saved],
        "unexpected": [name for name in saved if name not in own],
        "of another shape": [f"{name} {tuple(saved[name].shape)} vs {tuple(own[name].shape)}" for name in own
                             if name in saved and hasattr(own[name], "shape")  # not a module's extra state
                             and saved[name].shape != own[name].shape],
    }
    listed = "; ".join(f"{len(names)} {kind} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                       for kind, names in differences.items() if names)
    if not listed:
        return
    held = (checkpoint.get(CONFIG_KEY) or {}).get("choices", {})
    source = f" It was written by a run of model={held['model']} data={held.get('data')}." if "model" in held else ""
    raise CheckpointError(f"The weights in ckpt_path={path} do not fit this model: {listed}.{source} Pass the "
                          f"overrides of the run that wrote it (its .hydra/overrides.yaml).")


# What a resume may change without changing the experiment: how long it runs, on what hardware, where it writes
# (a resume into a new run directory) and where the data and its caches are.
RESUME_MAY_CHANGE = re.compile(r"^trainer\.(max_epochs|max_steps|max_time|devices|accelerator|num_nodes|strategy"
                               r"|default_root_dir)$|(^|\.)(data_dir|cache_dir|num_workers|download)$")
COMPARED_SECTIONS = ("seed", "data", "model", "optimizer", "scheduler", "trainer")


def changed_settings(checkpoint: dict, config) -> list[str]:
    """The experiment's settings in `config` (this run's) that differ from those of the run that wrote the
    checkpoint, as "key: then -> now"; none for a checkpoint without a dlbook run config."""
    from omegaconf import OmegaConf

    from dlbook.tasks.base import CONFIG_KEY

    saved = (checkpoint.get(CONFIG_KEY) or {}).get("config")
    if saved is None:
        return []
    then, now = ({key: value for section in COMPARED_SECTIONS
                  for key, value in config_leaves(run.get(section), section)}
                 for run in (saved, OmegaConf.to_container(config, resolve=True)))
    return [f"{key}: {then.get(key, 'unset')} -> {now.get(key, 'unset')}" for key in sorted(then.keys() | now.keys())
            if (key in then, then.get(key)) != (key in now, now.get(key)) and not RESUME_MAY_CHANGE.search(key)]


def limit_reached(checkpoint: dict, trainer_config) -> str | None:
    """The trainer limit (max_epochs, max_steps) a checkpoint has already reached, as "N epochs, max_epochs=M",
    so that a resume of it trains nothing; None if training goes on."""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get(
        "processed", 0)
    for key, done, unit in (("max_epochs", epochs, "epochs"), ("max_steps", checkpoint.get("global_step", 0), "steps")):
        limit = trainer_config.get(key)
        if limit is not None and limit != -1 and done >= limit:
            return f"{done} {unit}, trainer.{key}={limit}"
    return None


def saved_run_config(checkpoint: dict, path: Path, reader: str):
    """The resolved config and the group choices that train.py stored in a checkpoint."""
    from omegaconf import OmegaConf

    from dlbook.tasks.base import CONFIG_KEY

    saved = checkpoint.get(CONFIG_KEY)
    if saved is None:
        raise CheckpointError(f"ckpt_path={path} holds no dlbook run config; {reader} reads checkpoints "
                              f"written by train.py.")
    # train.py writes {"config": {..., "data": {...}, "model": {...}}, "choices": {...}}; anything else was not
    if not (isinstance(saved, dict) and isinstance(saved.get("config"), dict) and isinstance(saved.get("choices"), dict)
            and all(isinstance(saved["config"].get(section), dict) for section in ("data", "model"))):
        raise CheckpointError(f"ckpt_path={path} holds a damaged dlbook run config (not the config, data, model "
                              f"and choices train.py writes); {reader} cannot rebuild its model from it.")
    check_saved_config(saved["config"], path)
    return OmegaConf.create(saved["config"]), saved["choices"]


# The parts of a saved run config that readers of a checkpoint build.
BUILT_SECTIONS = ("data", "model", "optimizer", "scheduler")
TRUSTED_TARGETS_VARIABLE = "DLBOOK_TRUSTED_TARGETS"


@functools.cache
def shipped_targets() -> frozenset[str]:
    """Every _target_ that dlbook's own configs name."""
    from dlbook.utils.config import config_dir

    pattern = re.compile(r"^\s*_target_:\s*([\w.]+)", re.MULTILINE)
    return frozenset(target for file in Path(config_dir()).rglob("*.yaml")
                     for target in pattern.findall(file.read_text()))


def config_leaves(node, key: str = ""):
    """(dotted key, value) of each leaf of a plain config container."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from config_leaves(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from config_leaves(value, f"{key}[{index}]")
    else:
        yield key, node


def check_saved_config(config: dict, path: Path) -> None:
    """A checkpoint's run config names the callables that rebuild its model: from a stranger's checkpoint, any
    function at all (os.system, say), which weights_only loading cannot stop. Only those that dlbook's configs name,
    or that DLBOOK_TRUSTED_TARGETS lists (comma-separated), are let through. An interpolation would call a
    resolver when read (dlbook's make directories); train.py saves the config resolved, so it holds none."""
    interpolated = [f"{key}: {value}" for key, value in config_leaves(config)
                    if isinstance(value, str) and "${" in value]
    if interpolated:
        raise CheckpointError(f"ckpt_path={path} holds a run config with interpolations ({'; '.join(interpolated)}), "
                              f"which train.py never saves (it saves the config resolved), and reading them would "
                              f"call resolvers: not read. Was the checkpoint altered after training?")
    trusted = shipped_targets() | set(filter(None, os.environ.get(TRUSTED_TARGETS_VARIABLE, "").split(",")))
    unknown = sorted({value for section in BUILT_SECTIONS for key, value in config_leaves(config.get(section))
                      if key.rpartition(".")[2] == "_target_" and isinstance(value, str)} - trusted)
    if unknown:
        raise CheckpointError(f"ckpt_path={path} would build its data or model with {', '.join(unknown)}, which "
                              f"no dlbook config names. A checkpoint's config can name any function to call, so "
                              f"only dlbook's own are called; if you trust this checkpoint (your own net, say), "
                              f"run again with {TRUSTED_TARGETS_VARIABLE}={','.join(unknown)}.")
