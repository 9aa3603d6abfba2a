"""A gradient check of any run's loss on its first training batch (dlbook.utils.gradcheck): autograd against
central differences in float64, logged as gradcheck/relative_error, optionally failing the run above a
threshold."""

import logging
from contextlib import contextmanager

import lightning as L
import torch
from lightning_utilities.core.apply_func import apply_to_collection

from dlbook.errors import DlbookError, check_count, check_number
from dlbook.utils.gradcheck import check_gradients

log = logging.getLogger(__name__)


class GradientCheckCallback(L.Callback):
    """Before the first training step of each fit, checks the gradient of the loss the task's training_step
    returns for that batch with respect to its parameters: `max_elements` of them drawn with `seed` (null: all),
    central differences of step `eps`. Logs `gradcheck/relative_error` and `gradcheck/elements` (for a model of
    one parameter element also `gradcheck/analytic` and `gradcheck/numeric`); with a `threshold`, a larger
    relative error stops the run with the worst elements named. The check changes nothing the run sees: the task
    is given back with its own tensors, its epoch sums and the random streams as they were, and each evaluation
    of the loss draws the same dropout masks."""

    def __init__(self, eps: float = 1e-6, max_elements: int | None = 1000, threshold: float | None = None,
                 seed: int = 0):
        check_number("callbacks.gradient_check.eps", eps, above=0)
        if max_elements is not None:  # 0 would check nothing, a negative count slice off only the last elements
            check_count("callbacks.gradient_check.max_elements", max_elements, note=", or null to check all")
        if threshold is not None:  # a relative error is never negative
            check_number("callbacks.gradient_check.threshold", threshold, least=0, note=", or null not to stop")
        check_count("callbacks.gradient_check.seed", seed, least=0)
        self.eps, self.max_elements, self.threshold, self.seed = eps, max_elements, threshold, seed
        self.checked = False
        self.metrics: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.checked:
            return
        self.checked = True
        if not pl_module.automatic_optimization:
            raise DlbookError(f"callbacks.gradient_check checks the loss that training_step returns; "
                              f"{type(pl_module).__name__} steps its own optimizers (or updates itself without "
                              f"one), so it has no such loss. Remove it with callbacks.gradient_check=null.")
        batch = apply_to_collection(batch, torch.Tensor, lambda t: t.double() if t.is_floating_point() else t)
        with self.side_effects_undone(pl_module):
            result = check_gradients(pl_module, lambda: self.loss(pl_module, batch, batch_idx), self.eps,
                                     self.max_elements, self.seed)
        self.metrics = {"gradcheck/relative_error": torch.tensor(result.relative_error, dtype=torch.float64),
                        "gradcheck/elements": torch.tensor(float(len(result.names)))}
        if result.total_elements == 1:
            self.metrics.update({"gradcheck/analytic": result.analytic[0], "gradcheck/numeric": result.numeric[0]})
        for logger in trainer.loggers:
            logger.log_metrics({name: float(value) for name, value in self.metrics.items()}, step=trainer.global_step)
        summary = (f"Gradient check: relative error {result.relative_error:.3g} over {len(result.names)} of "
                   f"{result.total_elements} parameter elements (eps {self.eps:g})")
        if self.threshold is not None and result.relative_error > self.threshold:
            raise DlbookError(f"{summary}, above callbacks.gradient_check.threshold={self.threshold:g}: the "
                              f"gradient of {type(pl_module).__name__}'s loss disagrees with central differences. "
                              f"Largest differences: {result.worst()}. A custom backward, a detach or an in-place "
                              f"change in the forward pass is the usual cause (a kink, e.g. ReLU at 0, within eps "
                              f"of an element can also be: try a smaller eps).")
        log.info(summary)

    def loss(self, task, batch, batch_idx: int) -> torch.Tensor:
        # The same draws for every evaluation (dropout), from a stream of the check's own.
        devices = [task.device.index or 0] if task.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            output = task.training_step(batch, batch_idx)
        return output["loss"] if isinstance(output, dict) else output

    @staticmethod
    @contextmanager
    def side_effects_undone(task):
        """What training_step notes besides its loss, put back: the epoch's sums and the NaN watch."""
        sums = {name: [total.clone(), count] for name, (total, count) in task._epoch_sums.items()}
        recent = list(task._recent_losses)
        try:
            yield
        finally:
            task._epoch_sums, task._recent_losses = sums, recent

    def on_train_end(self, trainer, pl_module) -> None:
        # Lightning refuses self.log here; callback_metrics is what train.py writes to metrics.json.
        trainer.callback_metrics.update(self.metrics)
