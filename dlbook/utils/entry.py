"""What train and eval do around their work: user errors as one paragraph, loggers closed, metrics.json."""

import json
import logging
import math
import sys
from pathlib import Path

from dlbook.errors import DlbookError

log = logging.getLogger("dlbook")


def guarded(work, cfg):
    """Run work(cfg); a DlbookError ends the process with its message and exit status 1, no stack trace."""
    import lightning

    # Lightning adds its own console handler; Hydra's already print to the console and the run's log file.
    logging.getLogger(lightning.__name__).handlers.clear()
    try:
        return work(cfg)
    except DlbookError as error:
        log.error(str(error))
        sys.exit(1)
    finally:
        close_wandb()


def close_wandb() -> None:
    """Finish the W&B run so the next job of a sweep starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def scalar_metrics(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()
            if getattr(value, "numel", lambda: 1)() == 1}


def write_summary(output_dir: str, summary: dict) -> Path:
    path = Path(output_dir) / "metrics.json"
    clean = {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
             for key, value in summary.items()}
    path.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")
    return path
