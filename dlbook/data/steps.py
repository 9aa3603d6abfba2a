"""The data of tasks that need none (samplers, minimisers): each training batch is one step of the task's own."""

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.spec import StepsSpec
from dlbook.errors import check_count


class StepsDataModule(DataModule):
    """`steps_per_epoch` batches an epoch, each one step index (which the task ignores): a sampler draws a chunk
    of samples, a minimiser takes an optimizer step. The base's loaders count the batches given out, so a run
    resumed mid-epoch takes exactly the steps the interrupted one had not."""

    name = "steps"
    layout = "(none: nothing is read)"
    spec_type = StepsSpec

    def __init__(self, steps_per_epoch: int = 100, **kwargs):
        check_count("data.steps_per_epoch", steps_per_epoch)
        super().__init__(batch_size=1, val_fraction=0.0, **kwargs)
        self.steps_per_epoch = steps_per_epoch

    @property
    def spec(self) -> StepsSpec:
        return StepsSpec(self.steps_per_epoch)

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> StepsSpec:
        return StepsSpec(data_cfg.get("steps_per_epoch", 100))

    def missing_files(self, split: str) -> list:
        return []

    def download(self) -> None:
        pass

    def load_split(self, split: str) -> tuple[torch.Tensor]:
        return (torch.arange(self.steps_per_epoch),)
