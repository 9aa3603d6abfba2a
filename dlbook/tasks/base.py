"""What every task shares: optimizer and scheduler from config partials, and the run config in checkpoints."""

from collections.abc import Callable

import lightning as L

from dlbook.data.spec import DataSpec
from dlbook.errors import IncompatibleDataError

CONFIG_KEY = "dlbook_config"  # checkpoint entry holding the resolved run config, read back by eval.py


class Task(L.LightningModule):
    accepts: tuple[str, ...] = ()  # DataSpec kinds this task can train on

    def __init__(self, data_spec: DataSpec, optimizer: Callable, scheduler: dict | None = None):
        super().__init__()
        if data_spec.kind not in self.accepts:
            raise IncompatibleDataError(
                f"{type(self).__name__} trains on {' or '.join(self.accepts)} data, the data gives {data_spec.kind}")
        self.data_spec = data_spec
        self.optimizer_factory = optimizer
        self.scheduler_config = scheduler or {}
        self.run_config: dict | None = None

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        scheduler = self.scheduler_for(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler} if scheduler else optimizer

    def scheduler_for(self, optimizer) -> dict | None:
        """Lightning's scheduler entry for optimizer ({"scheduler", "interval"[, "monitor"]}), or None."""
        factory = self.scheduler_config.get("scheduler")
        if factory is None:
            return None
        # Schedules that span the run take their length from the trainer unless the config fixes it.
        keywords = getattr(factory, "keywords", {})
        if "total_steps" in keywords and keywords["total_steps"] is None:
            factory.keywords["total_steps"] = self.trainer.estimated_stepping_batches
        if "T_max" in keywords and keywords["T_max"] is None:
            interval_is_step = self.scheduler_config.get("interval") == "step"
            factory.keywords["T_max"] = (self.trainer.estimated_stepping_batches if interval_is_step
                                         else self.trainer.max_epochs)
        scheduler = {"scheduler": factory(optimizer), "interval": self.scheduler_config.get("interval", "epoch")}
        if self.scheduler_config.get("monitor"):
            scheduler["monitor"] = self.scheduler_config["monitor"]
        return scheduler

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
