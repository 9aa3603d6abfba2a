"""Lightning's tuners before training (`tune=lr` or `tune=batch_size`): the learning-rate range test (Smith 2017;
the rate raised step by step over a few batches, the loss recorded) and the batch-size search (the batch doubled
while a few steps still fit in memory). The suggestion replaces optimizer.lr or data.batch_size for the run that
follows, and is written to <run_dir>/tune.json (and metrics.json), with the range test's plot in figures/."""

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

from dlbook.errors import DlbookError

log = logging.getLogger("dlbook.train")
TUNERS = ("lr", "batch_size")


def tune(cfg: DictConfig, trainer, model, datamodule, output_dir: str) -> dict[str, float]:
    """Run the tuner `cfg.tune` names (none: nothing) and apply its suggestion; returns {"tune/<name>": value}."""
    setting, options = cfg.get("tune"), cfg.get("tune_options") or {}
    if not setting:
        return {}
    if setting not in TUNERS:
        raise DlbookError(f"tune={setting} is not one of {', '.join(TUNERS)} (or null: no tuning).")
    if cfg.get("ckpt_path") and cfg.get("ckpt_restore", "full") == "full":
        raise DlbookError(f"tune={setting} with ckpt_path={cfg.ckpt_path}: a resumed run goes on with the optimizer "
                          f"and batches it had; tune a fresh run (or fine-tune with ckpt_restore=weights).")
    from lightning.pytorch.tuner import Tuner

    tuner = Tuner(trainer)
    if setting == "lr":
        if not model.automatic_optimization or model.optimizer_factory is None:
            raise DlbookError(f"tune=lr: model={cfg.model._target_.rsplit('.', 1)[-1]} steps its own optimizers (or "
                              f"has none), and the range test needs the one optimizer Lightning steps. Set tune=null.")
        model.watch_loss = lambda loss: None  # the range test raises the rate until the loss blows up
        try:
            finder = tuner.lr_find(model, datamodule=datamodule, min_lr=options.get("min_lr", 1e-6),
                                   max_lr=options.get("max_lr", 1.0), num_training=options.get("num_training", 100),
                                   update_attr=False)
        finally:
            del model.watch_loss
        suggestion = finder.suggestion() if finder is not None else None
        if finder is not None:
            save_plot(finder.plot(suggest=True), Path(output_dir) / "figures" / "lr_find.png")
        if suggestion is None:
            raise DlbookError(f"tune=lr found no rate where the loss fell fastest over "
                              f"{recorded_steps(finder)} steps (the loss did not fall, or became NaN); see "
                              f"figures/lr_find.png, or widen tune_options.min_lr / max_lr.")
        log.info(f"tune=lr: the loss fell fastest at lr={suggestion:.3g}; training with it "
                 f"(optimizer.lr was {model.optimizer_factory.keywords.get('lr')})")
        model.optimizer_factory.keywords["lr"] = suggestion
        result = {"tune/lr": suggestion}
    else:
        size = tuner.scale_batch_size(model, datamodule=datamodule, mode=options.get("mode", "power"),
                                      max_trials=options.get("max_trials", 25))
        log.info(f"tune=batch_size: {size} fits; training with data.batch_size={size}")
        result = {"tune/batch_size": size}
    Path(output_dir, "tune.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def recorded_steps(finder) -> int:
    """How many steps the range test recorded (none where it gave no finder)."""
    return len(finder.results["lr"]) if finder is not None else 0


def save_plot(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
