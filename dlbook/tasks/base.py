"""The task contract: what every family's LightningModule shares. A task names the spec types it trains on
(`accepts`) and its summary metrics; the base builds the optimizer and scheduler from config partials (none for a
task without one), logs each stage's epoch means, watches the loss for NaNs, keeps the run config, random streams
and the interrupted epoch's sums in checkpoints, and answers `sample` for scripts and `figures` for the figures
callback."""

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric

from dlbook.data.spec import DataSpec, TokenSpec
from dlbook.errors import DlbookError, IncompatibleDataError, NonFiniteLossError, check_count

CONFIG_KEY = "dlbook_config"  # checkpoint entry holding the resolved run config, read back by eval.py
RNG_KEY = "dlbook_rng_states"
SCHEDULE_LENGTHS = {"step_size", "T_max", "total_steps", "total_epochs"}  # the schedulers' periods, in steps or epochs
EPOCH_SUMS_KEY = "dlbook_train_epoch_sums"  # the interrupted epoch's training sums, so its means are whole


def built(factory: Callable, key: str, advice: str, *args, **kwargs):
    """factory(*args, **kwargs), for an optimizer or scheduler of the config: a value torch refuses (a negative
    rate, an unknown mode) is a DlbookError naming the config key, its settings and `advice`."""
    try:
        return factory(*args, **kwargs)
    except (ValueError, TypeError) as error:
        target = getattr(getattr(factory, "func", factory), "__qualname__", str(factory))
        settings = ", ".join(f"{name}={value}" for name, value in getattr(factory, "keywords", {}).items())
        raise DlbookError(f"{key} cannot be built: {error}. It is {target}({settings}); set a valid value, "
                          f"{advice}.") from None


class Task(L.LightningModule):
    accepts: tuple[type[DataSpec], ...] = ()  # the spec types this task can train on
    # (metric, label) pairs train.py and eval.py print at the end, the first that the run logged
    summary_metrics: tuple[tuple[str, str], ...] = ()
    # Why the task trains in one process only, for the tasks DDP cannot run: it synchronises gradients and
    # nothing else, so state a task updates by a rule of its own would drift apart between the processes.
    one_process_only: str | None = None

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None):
        super().__init__()
        if not isinstance(data_spec, self.accepts):
            raise IncompatibleDataError(f"{type(self).__name__} trains on {self.accepted_kinds()} data, the data "
                                        f"gives {data_spec.kind}")
        self.data_spec = data_spec
        self.optimizer_factory = optimizer
        self.scheduler_config = scheduler or {}
        self.run_config: dict | None = None
        self._recent_losses: list[tuple[int, torch.Tensor]] = []  # (step, loss) since the last NaN check
        self._epoch_sums: dict[str, list] = {}  # name -> [sum on the device, count], see log_epoch_sum
        self.epoch_means: dict[str, torch.Tensor] = {}  # the last logged epoch mean of each name

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets _current_fx_name around each of the ~40 hook calls of a step; it is a plain string,
        # and nn.Module.__setattr__'s parameter/buffer/module checks cost ten times a plain assignment.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @classmethod
    def accepted_kinds(cls) -> str:
        return " or ".join(spec_type.kind for spec_type in cls.accepts)

    @property
    def steps_use_part_of_the_model(self) -> bool:
        """Whether a training step's backward passes each reach only some of the parameters (a GAN's two nets, a
        pretraining phase): DDP must then look for the ones a pass left out."""
        return not self.automatic_optimization

    @property
    def has_test_metric(self) -> bool:
        return type(self).test_step is not L.LightningModule.test_step

    def summary(self, metrics: dict[str, float]) -> str | None:
        """The line train.py and eval.py end with, e.g. "Test accuracy: 0.9778"."""
        return next((f"{label}: {metrics[name]:.4f}" for name, label in self.summary_metrics if name in metrics), None)

    @property
    def batches(self) -> int:
        """Training batches whose step has run, over the whole run (resumes included): Lightning's own count,
        which it keeps in checkpoints. Inside training_step, the batches before this one."""
        return self.trainer.fit_loop.epoch_loop.batch_progress.total.processed

    def sample(self, n: int, inputs: torch.Tensor | None = None, **options) -> tuple[torch.Tensor, int, torch.Tensor]:
        """What scripts/sample.py asks of a task: (grid images, grid columns, the individual outputs), for n
        samples of a generative model, or for `inputs` (a batch prepared as the training data was) transformed
        by it. Tasks that make nothing refuse."""
        raise DlbookError(f"{type(self).__name__} makes no samples; scripts/sample.py draws from generative models.")

    def export_example(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        """What scripts/export.py writes: the net that maps a batch to the model's outputs on its own, and an
        example batch of two samples as training fed it. By default the task's `net`, on inputs of the data's
        shape; tasks without one refuse."""
        net, spec, seeded = getattr(self, "net", None), self.data_spec, torch.Generator().manual_seed(0)
        if isinstance(net, nn.Module) and isinstance(spec, TokenSpec):
            return net, (torch.randint(spec.vocab_size, (2, spec.max_length), generator=seeded),)
        if isinstance(net, nn.Module) and hasattr(spec, "input_shape"):
            return net, (torch.randn(2, *spec.input_shape, generator=seeded),)
        raise DlbookError(f"{type(self).__name__} is not one net from inputs to outputs; scripts/export.py writes "
                          f"classifiers, regressors, language models and GAN generators.")

    def figures(self, stage: str) -> dict:
        """Figures worth looking at when `stage` ("fit" or "test") ends, by file name: matplotlib Figures that the
        figures callback saves under <run_dir>/figures/ and logs. None by default."""
        return {}

    def compile_nets(self, mode: str) -> None:
        """torch.compile each of compiled_modules() in place with module.compile(), which keeps the state-dict keys
        that checkpoints, eval.py and resuming rely on. torch.compile(task), which Lightning also takes, would
        compile training_step with its metric updates and step counter: that recompiles until dynamo gives up and
        runs it eagerly."""
        for module in self.compiled_modules():
            module.compile(mode=mode)

    def compiled_modules(self) -> list[nn.Module]:
        """What compile=true compiles: module.compile() compiles calls of the module itself, so a task that calls
        its nets' parts (or methods other than forward) names those parts. By default each net (child module
        with parameters)."""
        return [net for net in self.children() if next(net.parameters(), None) is not None]

    def watch_loss(self, loss: torch.Tensor) -> None:
        """Keep the step's loss for the NaN check of on_train_batch_end: no kernel and no host sync a step."""
        self._recent_losses.append((self.trainer.global_step, loss.detach()))

    def first_nonfinite_step(self) -> int | None:
        """The first step since the last check whose loss was NaN or infinite, if any; starts the next check."""
        if not self._recent_losses:
            return None
        steps, losses = zip(*self._recent_losses)
        self._recent_losses = []
        bad = (~torch.isfinite(torch.stack(losses).float())).nonzero()
        return steps[int(bad[0])] if len(bad) else None

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # One host sync every log_every_n_steps and at the end of each epoch, before validation and checkpoints.
        end_of_epoch = batch_idx + 1 == self.trainer.num_training_batches
        if not (end_of_epoch or self.trainer.global_step % self.trainer.log_every_n_steps == 0):
            return
        step = self.first_nonfinite_step()
        if step is not None:
            last = next((callback.last_model_path for callback in self.trainer.checkpoint_callbacks
                         if callback.last_model_path), "")
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint had been saved yet"
            raise NonFiniteLossError(
                f"The training loss became NaN or infinite at step {step} (epoch {self.current_epoch}); training "
                f"stopped and {kept}. Lower optimizer.lr, set trainer.gradient_clip_val, or use "
                f"trainer.precision=32-true.")

    def configure_optimizers(self):
        if self.optimizer_factory is None:  # optimizer=none: the task updates itself (k-means, PCA, ...)
            return None
        optimizer = self.build_optimizer(self.optimizer_factory, self.parameters(), "optimizer")
        scheduler = self.scheduler_for(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler} if scheduler else optimizer

    @staticmethod
    def build_optimizer(factory: Callable, params, key: str):
        """factory(params=params); a value torch refuses (a negative rate, betas out of range) is a DlbookError
        naming the config key and its settings."""
        return built(factory, key, f"e.g. {key}.lr=0.001", params=params)

    def scheduler_for(self, optimizer) -> dict | None:
        """Lightning's scheduler entry for optimizer ({"scheduler", "interval"[, "monitor"]}), or None."""
        factory = self.scheduler_config.get("scheduler")
        if factory is None:
            return None
        # Schedules that span the run take their length from the trainer unless the config fixes it.
        keywords = getattr(factory, "keywords", {})
        steps, epochs = "estimated_stepping_batches", "max_epochs"  # the trainer's, read only when needed
        run_lengths = {"total_steps": steps, "total_epochs": epochs,
                       "T_max": steps if self.scheduler_config.get("interval") == "step" else epochs}
        from_run = {name for name in run_lengths if name in keywords and keywords[name] is None}
        for name in from_run:
            factory.keywords[name] = getattr(self.trainer, run_lengths[name])
        for name in SCHEDULE_LENGTHS & keywords.keys():  # torch divides by them at the first step, mid-run
            source = ("trainer.max_epochs" if run_lengths.get(name) == epochs
                      else "the run's steps (trainer.max_steps, or trainer.max_epochs' batches)")
            check_count(f"scheduler.scheduler.{name}", keywords[name],
                        note=f"; null took it from {source}" if name in from_run else "")
        scheduler = {"scheduler": built(factory, "scheduler.scheduler", "or another scheduler=", optimizer),
                     "interval": self.scheduler_config.get("interval", "epoch")}
        if self.scheduler_config.get("monitor"):
            scheduler["monitor"] = self.scheduler_config["monitor"]
        return scheduler

    # -- manual optimization: tasks with several optimizers step them, and their schedulers, themselves ------
    def manual_step(self, optimizer, loss: torch.Tensor) -> None:
        self.watch_loss(loss)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def log_epoch_mean(self, name: str, value: torch.Tensor, batch_size: int) -> None:
        """Add a batch's mean `value` to the epoch's batch-size-weighted mean of `name` (see log_epoch_sum)."""
        self._add_to_epoch(name, value, batch_size, weight=batch_size)

    def log_epoch_sum(self, name: str, total: torch.Tensor, count: int) -> None:
        """Add `total` over `count` samples to the epoch's mean of `name`, logged by log_epoch_means when the stage's
        epoch ends. Summed in place on the device, the count on the host: one kernel a step, no host sync, and
        none of self.log's or torchmetrics' per-call bookkeeping."""
        self._add_to_epoch(name, total, count, weight=1)

    def _add_to_epoch(self, name: str, value: torch.Tensor, count: int, weight: int) -> None:
        entry = self._epoch_sums.get(name)
        if entry is None:
            self._epoch_sums[name] = [value.detach().double() * weight, count]
        else:
            entry[0].add_(value.detach(), alpha=weight)  # summed in double
            entry[1] += count

    def log_epoch_means(self, prefix: str, history_only: bool = False) -> dict[str, torch.Tensor]:
        """Log the epoch means of the names starting with `prefix` ("train/", "val/", ...), summed over all
        processes, and start them afresh; returns them. `history_only`: to the loggers alone, not to the run's
        final metrics, for values that only some epochs have (a resumed run would lack them)."""
        means = {}
        for name in [name for name in self._epoch_sums if name.startswith(prefix)]:
            total, count = self._epoch_sums.pop(name)
            total, count = self.trainer.strategy.reduce(torch.stack([total, total.new_tensor(count)]), reduce_op="sum")
            means[name] = (total / count).float()
            if not history_only:
                self.log(name, means[name], prog_bar=True)
        if history_only and means:
            for logger in self.loggers:
                logger.log_metrics({name: mean.item() for name, mean in means.items()}, step=self.global_step)
        self.epoch_means.update(means)
        return means

    @staticmethod
    def best_of_run(tracker_type: type[Metric]) -> Metric:
        """A MaxMetric or MinMetric kept in checkpoints, so the best is over the whole run, resumes included."""
        tracker = tracker_type()
        tracker.persistent(True)
        return tracker

    def log_best(self, name: str, value: torch.Tensor, tracker: Metric) -> None:
        """Log `<name>_best`, the best validation value so far; the sanity check does not count as an epoch."""
        if not self.trainer.sanity_checking:
            tracker(value)
            self.log(f"{name}_best", tracker.compute(), prog_bar=True)

    def on_train_start(self) -> None:
        for entry in self._epoch_sums.values():
            entry[0] = entry[0].to(self.device)

    def on_train_epoch_end(self) -> None:
        self.log_epoch_means("train/")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch_means("val/")

    def on_test_epoch_end(self) -> None:
        self.log_epoch_means("test/")

    def step_schedulers(self, interval: str) -> None:
        """Step every scheduler whose configured interval ("step" or "epoch") this is."""
        if self.scheduler_config.get("interval", "epoch") != interval:
            return
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        # Dropout and augmentation draw from these: a resumed run continues the same random streams.
        checkpoint[RNG_KEY] = {"torch": torch.get_rng_state(),
                               "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None}
        checkpoint[EPOCH_SUMS_KEY] = {name: (total.cpu(), count) for name, (total, count) in self._epoch_sums.items()
                                      if name.startswith("train/")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Moved to the device in on_train_start: the task is still on the CPU when Lightning restores it.
        self._epoch_sums = {name: [total, count] for name, (total, count) in checkpoint.get(EPOCH_SUMS_KEY, {}).items()}
        rng = checkpoint.get(RNG_KEY)
        if rng is None:
            return
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])


class LossTask(Task):
    """A task trained on one loss whose training, validation and test steps compute the same thing: subclasses
    give `loss_step(batch, stage)`, which logs the stage's values and returns the batch's loss."""

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        loss = self.loss_step(batch, "train")
        self.watch_loss(loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.loss_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self.loss_step(batch, "test")


class ManualOptimizationTask(Task):
    """A task that steps its own optimizers (GANs), and their schedulers at their configured interval. Its steps
    and samples are paced by `batches` (Lightning's global_step counts optimizer steps)."""

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None):
        super().__init__(data_spec, optimizer, scheduler)
        self.automatic_optimization = False

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        self.step_schedulers("step")

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.step_schedulers("epoch")
