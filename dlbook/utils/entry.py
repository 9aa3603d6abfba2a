"""What train, eval and the scripts do around their work: user errors as one paragraph, loggers closed,
metrics.json, in a sweep a failed job recorded instead of ending the sweep, output paths checked before any work,
and files written whole."""

import csv
import io
import json
import logging
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from dlbook.errors import DlbookError, RunDirectoryInUse, user_error_message

log = logging.getLogger("dlbook")
COMPLETED, FAILED, PRUNED = "completed", "failed", "pruned"  # a job's status in its metrics.json


def guarded(work, cfg):
    """Run work(cfg) and return its result.

    A user error (a DlbookError, a setting Lightning refuses, a required value left out: user_error_message) in
    a single run ends the process with its message and exit status 1, no stack trace.
    In a sweep (-m) any error fails only its job: it is logged, written to the job's metrics.json, and
    None is returned so the sweeper records the trial as failed and goes on. An Optuna trial stopped by its
    pruner is written as pruned, with the metrics it had.
    """
    import lightning
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    # Lightning adds its own console handler; Hydra's already print to the console and the run's log file.
    logging.getLogger(lightning.__name__).handlers.clear()
    hydra_cfg = HydraConfig.get()
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    environment = dict(os.environ)  # DDP adds MASTER_PORT and friends; the next job of a sweep starts clean
    try:
        return work(cfg)
    except SIGTERMException:  # SIGTERM, SIGUSR1 or Ctrl-C: last.ckpt was written at the batch boundary
        log.warning(interrupted_message(hydra_cfg))
        sys.exit(1)
    except Exception as error:
        if sweeping and pruned(error):
            log.info(f"Pruned: {error}")
            write_summary(hydra_cfg.runtime.output_dir, {**getattr(error, "metrics", {}), "status": PRUNED,
                                                         "pruned": str(error)})
            return None
        message = user_error_message(error)
        if not sweeping and message is None:
            raise
        if message is not None:
            log.error(message)
        else:
            log.exception(f"Job failed: {type(error).__name__}: {error}")
        if not sweeping:
            sys.exit(1)
        if isinstance(error, RunDirectoryInUse):  # the directory's metrics.json is the earlier run's
            return None
        write_summary(hydra_cfg.runtime.output_dir, {"status": FAILED, "error": f"{type(error).__name__}: {error}"})
        return None
    finally:
        close_wandb()
        # Every rank leaves the process group before exiting: a DDP process that exits with gloo's threads still
        # running can abort and leave its peers waiting. In a sweep the next job needs a fresh group anyway.
        end_process_group()
        if sweeping:
            os.environ.clear()
            os.environ.update(environment)
            write_sweep_summary(Path(hydra_cfg.sweep.dir))


def refuse_several_processes(world_size: int, run_choices: dict[str, str], **parts) -> None:
    """Before DDP starts its processes: a task or datamodule (`parts`, by their config group) that runs in one
    process only, saying why in its one_process_only, is refused with that reason."""
    for group, part in parts.items():
        if world_size > 1 and part.one_process_only:
            raise DlbookError(f"{group}={run_choices.get(group, '?')} {part.one_process_only}: run it in one "
                              f"process (trainer.devices=1 and trainer.num_nodes=1), not {world_size}.")


def drop_nvml_check_without_cuda() -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 on import, so that asking whether CUDA is available cannot
    spoil CUDA for processes forked later. With no CUDA device there is nothing to spoil, and every such question
    (Adam and AdamW ask at each step) tries and fails again to load NVML: about 0.13 ms a step on a CPU-only host
    with a CUDA build of torch. Without a device the setting goes; the answer, no CUDA, is the same without it."""
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def seed_run(seed) -> None:
    """Seeds Python, NumPy and torch (and the data workers) with `seed=`; null leaves them unseeded. Lightning
    would take a seed NumPy cannot, with a warning, as 0."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise DlbookError(f"seed={seed} is not an integer from 0 to {2**32 - 1}: give one, or seed=null for an "
                          f"unseeded run.")
    import lightning

    lightning.seed_everything(seed, workers=True)


def pruned(error: Exception) -> bool:
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(error, optuna.TrialPruned)


def interrupted_message(hydra_cfg) -> str:
    """What a stopped run tells its user: where its newest state is and the command that continues it."""
    output_dir = Path(hydra_cfg.runtime.output_dir)
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        return f"Stopped by a signal before any checkpoint was written ({output_dir})."
    overrides = [override for override in hydra_cfg.overrides.task
                 if not override.split("=")[0].lstrip("+~") in ("ckpt_path", "run_dir")]
    command = " ".join([Path(sys.argv[0]).name, *overrides, "ckpt_path=last", f"run_dir={output_dir}"])
    return f"Stopped by a signal; {last} holds the newest state. Continue with: python {command}"


def end_process_group() -> None:
    """Leave the DDP process group of this job, whose other ranks have exited."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def close_wandb() -> None:
    """Finish the W&B run so the next job of a sweep starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def scalar_metrics(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()
            if getattr(value, "numel", lambda: 1)() == 1}


def check_output_path(key: str, path, folder: bool = False, suffixes=()) -> Path:
    """The output file (or `folder`) a script was given, refused before any work if it cannot be written there:
    a folder where a file is meant or the reverse, a path under a file, a suffix its writer does not know."""
    path = Path(path).expanduser()
    if path.exists() and path.is_dir() != folder:
        raise DlbookError(f"{key}={path} is a {'file' if folder else 'folder'}; give a "
                          f"{'folder' if folder else 'file'} path.")
    blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise DlbookError(f"{key}={path} lies under {blocking}, which is a file, not a folder.")
    if suffixes and path.suffix.lower() not in suffixes:
        raise DlbookError(f"{key}={path} must end in one of {', '.join(sorted(suffixes))}.")
    return path


def distinct_stems(names) -> list[str]:
    """Each input file's name without its suffix, to name an output after it; where two inputs share that stem
    (a.png, a.jpg) the suffix stays in (a_png, a_jpg), so neither output is written over the other."""
    stems = [Path(name).stem for name in names]
    return [stem if stems.count(stem) == 1 else f"{stem}_{Path(name).suffix.lstrip('.')}"
            for stem, name in zip(stems, names)]


@contextmanager
def replaced_whole(path: Path):
    """A file beside `path` to write, renamed onto `path` when the block ends and removed if it fails, so a kill
    or a full disk mid-write leaves the old file, never half of one, and a reader (a resumed sweep,
    reproduce.py --resume, a concurrent run) never sees a partial file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_whole(path: Path, text: str) -> None:
    with replaced_whole(path) as partial:
        partial.write_text(text)


def write_summary(output_dir: str, summary: dict) -> Path:
    path = Path(output_dir) / "metrics.json"
    clean = {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
             for key, value in summary.items()}
    write_whole(path, json.dumps(clean, indent=2, sort_keys=True) + "\n")
    return path


def write_sweep_summary(sweep_dir: Path) -> Path:
    """summary.csv in the sweep directory: one row per finished job, its overrides and final metrics.

    Rebuilt from the jobs' own files after every job, so it is complete whatever order jobs end in; replaced
    whole, for sweeper processes sharing the directory.
    """
    import yaml

    rows = []
    job_dirs = [path for path in sweep_dir.iterdir() if path.is_dir() and path.name.isdigit()]
    for job_dir in sorted(job_dirs, key=lambda path: int(path.name)):
        metrics_file, overrides_file = job_dir / "metrics.json", job_dir / ".hydra" / "overrides.yaml"
        if not metrics_file.exists():
            continue  # still running
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        metrics = json.loads(metrics_file.read_text())
        row = {"job": job_dir.name, "status": metrics.pop("status", COMPLETED), "overrides": " ".join(overrides)}
        row.update({key: value for key, value in metrics.items() if not isinstance(value, (dict, list))})
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / "summary.csv"
    write_whole(path, table.getvalue())
    return path
