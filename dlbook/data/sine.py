"""The DL Workshop's real data for its first GAN (ch. 7, Ex. 7.01): stretches of the sine curve, generated in
memory and seeded. Nothing is downloaded."""

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.spec import VectorSpec
from dlbook.errors import check_count


class SineCurveDataModule(DataModule):
    """Batches of `batch_size` points (x, sin x), x equally spaced by `step` around a centre drawn from
    N(loc_mean, loc_std) for each batch: half the points left of the centre, half from it rightwards, as the book's
    np.arange(loc - 0.1 * 64, loc, 0.1) and np.arange(loc, loc + 0.1 * 64, 0.1) give for batches of 128.

    An epoch is `num_batches` such batches; their centres are drawn once with the generator seeded by
    `generation_seed` (the test set's with the next seed) and shuffled each epoch as any dataset is, so a resumed
    run sees the batches it would have seen."""

    name = "sine"
    layout = "(none: the points are generated)"
    spec_type = VectorSpec

    def __init__(self, num_batches: int = 2000, loc_mean: float = 3.0, loc_std: float = 1.0, step: float = 0.1,
                 generation_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        check_count("data.num_batches", num_batches, note=" (batches per epoch)")
        self.num_batches = num_batches
        self.loc_mean, self.loc_std, self.step = loc_mean, loc_std, step
        self.generation_seed = generation_seed

    @property
    def spec(self) -> VectorSpec:
        return self.fixed_spec(None)

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig | None) -> VectorSpec:
        return VectorSpec(2, ("x", "sin x"))

    def missing_files(self, split):
        return []

    def download(self):
        pass

    def load_split(self, split: str) -> tuple[torch.Tensor]:
        """The batches' centres, one row per batch: the dataset's items are whole batches."""
        generator = torch.Generator().manual_seed(self.generation_seed + (split == "test"))
        return (self.loc_mean + self.loc_std * torch.randn(self.num_batches, generator=generator),)

    # One item (a centre) per loader batch; on_after_batch_transfer lays the curve's points around it.
    def train_dataloader(self):
        return self.loader(self.data_train, 1, shuffle=True)

    def test_dataloader(self):
        return self.loader(self.data_test, 1, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        (centres,) = batch
        return (self.points(centres),)

    def points(self, centres: torch.Tensor) -> torch.Tensor:
        """(len(centres) * batch_size, 2): each centre's stretch of the curve in turn."""
        offsets = self.step * (torch.arange(self.batch_size, device=centres.device) - self.batch_size // 2)
        x = (centres[:, None] + offsets).flatten()
        return torch.stack([x, torch.sin(x)], dim=1)
