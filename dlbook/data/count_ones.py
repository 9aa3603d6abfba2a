"""Advanced Deep Learning with Python's toy task for recurrent nets (ch. 7): read a binary sequence and output the
number of ones in it. The sequences are generated and seeded; nothing is downloaded."""

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.batches import TensorsDataset
from dlbook.data.spec import TimeSeriesSpec
from dlbook.errors import DlbookError, check_count


def random_sequences(count: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(count, length) bits, as the book draws them: each sequence's probability of a one drawn uniformly from
    1/length, 2/length, ..., 1, so every count from none to all ones is common."""
    one_probability = 1.0 - torch.randint(length, (count, 1), generator=generator) / length
    return (torch.rand(count, length, generator=generator) < one_probability).float()


def with_counts(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences (N, length, 1), one input per step, and their numbers of ones (N, 1)."""
    return bits.unsqueeze(-1), bits.sum(dim=1, keepdim=True)


class CountOnesDataModule(DataModule):
    """`num_sequences` training and `test_sequences` test sequences of `length` bits (10,000 and 1,000 of 20 in
    the book), generated with `generation_seed`; validation is split off the training sequences. `sequences`
    gives the sequences instead, a list of lists of 0/1 (the book's (0, 0, 0, 0, 1, 0, 1, 0, 1, 0) for its linear
    RNN), which then all train, with nothing held out to validate or test (run with test=false). Targets are the
    counts themselves, unscaled."""

    name = "count_ones"
    layout = "(none: the sequences are generated)"
    spec_type = TimeSeriesSpec

    def __init__(self, num_sequences: int = 10000, test_sequences: int = 1000, length: int = 20,
                 generation_seed: int = 0, sequences: list[list[int]] | None = None, **kwargs):
        super().__init__(**kwargs)
        if sequences is not None:
            self.given = given_sequences(sequences)
            length = self.given.shape[1]
        else:
            self.given = None
            for option, value in (("num_sequences", num_sequences), ("test_sequences", test_sequences),
                                  ("length", length)):
                check_count(f"data.{option}", value)
        self.num_sequences, self.test_sequences, self.length = num_sequences, test_sequences, length
        self.generation_seed = generation_seed
        self._generated: dict[str, torch.Tensor] | None = None

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TimeSeriesSpec:
        sequences = data_cfg.get("sequences")
        return count_spec(given_sequences(sequences).shape[1] if sequences is not None else data_cfg.length)

    @property
    def spec(self) -> TimeSeriesSpec:
        return count_spec(self.length)

    def missing_files(self, split):
        return []

    def download(self):
        pass

    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.given is not None:
            return with_counts(self.given)
        if self._generated is None:  # both splits from one stream: the test sequences follow the training ones
            generator = torch.Generator().manual_seed(self.generation_seed)
            self._generated = {"train": random_sequences(self.num_sequences, self.length, generator),
                               "test": random_sequences(self.test_sequences, self.length, generator)}
        return with_counts(self._generated[split])

    def setup(self, stage: str | None = None) -> None:
        if self.given is None:
            super().setup(stage)
        elif self.data_train is None:  # the given sequences are all there is, to learn from
            self.data_train = TensorsDataset(*self.load_split("train"))
            self.data_val = self.data_test = self.data_train.subset(torch.arange(0))

    def test_dataloader(self):
        if len(self.data_test) == 0:
            raise DlbookError("data.sequences gives sequences to train on and holds none out for testing; set "
                              "test=false, or data.sequences=null to generate data.test_sequences.")
        return super().test_dataloader()


def count_spec(length: int) -> TimeSeriesSpec:
    """Sequences of `length` bits, one input a step, and one target of the whole sequence, in its own units."""
    return TimeSeriesSpec(window=length, horizon=1, series_names=("bit",), target_names=("number of ones",),
                          target_mean=(0.0,), target_std=(1.0,), forecast=False)


def given_sequences(sequences) -> torch.Tensor:
    """data.sequences as a (N, length) tensor of bits, refused unless every sequence is 0s and 1s of one length."""
    rows = [list(sequence) for sequence in sequences]
    lengths = sorted({len(row) for row in rows})
    if not rows or lengths[0] == 0 or len(lengths) > 1:
        raise DlbookError(f"data.sequences must list sequences of 0s and 1s, all of one length; it has "
                          f"{len(rows)} sequences of lengths {', '.join(map(str, lengths)) or 'none'}.")
    bad = sorted({value for row in rows for value in row if value not in (0, 1)}, key=str)
    if bad:
        raise DlbookError(f"data.sequences holds {', '.join(map(repr, bad))}; a sequence to count ones in holds "
                          f"only 0s and 1s.")
    return torch.tensor(rows, dtype=torch.float32)
