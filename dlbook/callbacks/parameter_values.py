"""The values of a small model's parameters as metrics, so a fitted weight and bias land in metrics.json and the
results ledger beside the book's printed ones."""

import lightning as L

from dlbook.errors import DlbookError


class ParameterValues(L.Callback):
    """When training ends, logs each element of every parameter of the task as `param/<name>` (one element) or
    `param/<name>.<i>` (its flattened index). Refuses models of more than `max_values` parameter elements: the
    metric list would be unreadable."""

    def __init__(self, max_values: int = 64):
        self.max_values = max_values

    def setup(self, trainer, pl_module, stage: str) -> None:
        count = sum(parameter.numel() for parameter in pl_module.parameters())
        if count > self.max_values:
            raise DlbookError(f"callbacks.parameter_values logs every parameter of small models; this one has {count} "
                              f"(more than callbacks.parameter_values.max_values={self.max_values}). Remove it with "
                              f"callbacks.parameter_values=null.")

    def on_train_end(self, trainer, pl_module) -> None:
        values = {}
        for name, parameter in pl_module.named_parameters():
            elements = parameter.detach().flatten().cpu()
            for index, value in enumerate(elements):
                values[f"param/{name}" if len(elements) == 1 else f"param/{name}.{index}"] = value.clone()
        # Lightning refuses self.log in on_train_end; callback_metrics is what train.py writes to metrics.json.
        trainer.callback_metrics.update(values)
        for logger in trainer.loggers:
            logger.log_metrics({name: float(value) for name, value in values.items()}, step=trainer.global_step)
