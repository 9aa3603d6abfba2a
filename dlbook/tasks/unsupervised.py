"""The base of tasks trained without a gradient optimizer (k-means, PCA, a self-organising map): they update
state held in buffers from the rows themselves, through the same train.py, checkpoints and ledger. Tables are
taken as they are, images flattened to vectors of their normalised pixels."""

import math
from collections.abc import Callable

import torch

from dlbook.data.spec import DataSpec, ImageSpec, TabularSpec
from dlbook.errors import DlbookError
from dlbook.tasks.base import Task

MAX_DRAWN_POINTS = 10_000  # a scatter figure draws at most this many rows (a seeded choice), e.g. of MNIST's 55,000


class SelfUpdatingTask(Task):
    """Each training batch calls `learn(rows)` (the update rule, and the train/ metrics of the state the batch
    met); the epoch's last batch then calls `end_of_epoch()` (an update from the whole epoch), before validation
    and checkpoints see the state. `init_seed` seeds every random draw of the state (initial weights, k-means++)
    with a generator of its own, so a run's state does not depend on what else draws from torch's stream.
    Labels, where the data has classes, only colour figures and score clusters."""

    accepts = (TabularSpec, ImageSpec)
    one_process_only = "updates its state by its own rule, which DDP would let drift apart between processes"

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None,
                 init_seed: int = 0):
        super().__init__(data_spec, optimizer, scheduler)
        if optimizer is not None:
            raise DlbookError(f"{type(self).__name__} updates its state by its own rule, not by an optimizer; this "
                              f"run sets one. Use optimizer=none.")
        self.automatic_optimization = False
        self.num_features = math.prod(data_spec.input_shape)
        if isinstance(data_spec, ImageSpec):
            self.class_names = data_spec.class_names or tuple(map(str, range(data_spec.num_classes)))
        else:
            self.class_names = data_spec.target_names if data_spec.num_classes else ()
        self.init_seed = init_seed

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.init_seed)

    def rows(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the batch as (B, features) rows, its class labels or None)."""
        features, targets = batch
        return features.flatten(1).float(), targets if self.num_classes else None

    def split_rows(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every row of the split ("train", "val", "test") on the task's device, as its batches give them."""
        datamodule = self.trainer.datamodule
        features, targets = getattr(datamodule, f"data_{split}").tensors
        features = features.to(self.device)
        if isinstance(self.data_spec, ImageSpec):
            features = datamodule.normalize(features)
        return self.rows((features, targets.to(self.device)))

    def learn(self, rows: torch.Tensor) -> None:
        raise NotImplementedError

    def end_of_epoch(self) -> None:
        """After the epoch's last training batch; nothing by default."""

    @torch.no_grad()
    def training_step(self, batch, batch_idx):
        self.learn(self.rows(batch)[0])
        # Lightning counts an update (global_step, by which checkpoints are kept) when an optimizer steps; with
        # optimizer=none its placeholder optimizer steps and changes nothing.
        self.optimizers().step()
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.end_of_epoch()

    def report(self, metrics: dict[str, float]) -> None:
        """Values measured once, when training ends (an elbow, a number of components): to the loggers, and to
        callback_metrics, which train.py writes to metrics.json (Lightning refuses self.log there)."""
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=self.trainer.global_step)
        self.trainer.callback_metrics.update({name: torch.tensor(value) for name, value in metrics.items()})

    def drawn_rows(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The split's rows for a scatter figure: all of them, or MAX_DRAWN_POINTS drawn with init_seed."""
        rows, labels = self.split_rows(split)
        if len(rows) > MAX_DRAWN_POINTS:
            chosen = torch.randperm(len(rows), generator=self.generator())[:MAX_DRAWN_POINTS].to(rows.device)
            rows, labels = rows[chosen], None if labels is None else labels[chosen]
        return rows, labels
