"""Batching of in-memory uint8 tensors: a batch is one indexing op, not batch_size calls to __getitem__."""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler


class TensorsDataset(Dataset):
    """Tensors of one row per sample (features, targets, ...), served a whole batch at a time."""

    def __init__(self, *tensors: torch.Tensor):
        if len({len(tensor) for tensor in tensors}) > 1:
            raise ValueError(f"tensors of different lengths: {[len(tensor) for tensor in tensors]}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int):
        return tuple(tensor[index] for tensor in self.tensors)

    def subset(self, index: torch.Tensor) -> "TensorsDataset":
        return type(self)(*(tensor[index] for tensor in self.tensors))

    def to(self, device: torch.device) -> "TensorsDataset":
        """Keep the tensors on device (once, at first use): batches are then gathered there."""
        self.tensors = tuple(tensor.to(device) for tensor in self.tensors)
        return self

    def __getitems__(self, indices: list[int]):
        # DataLoader calls this with a whole batch of indices when it exists.
        # Through numpy: torch.tensor checks each Python int, 4-6 times slower for a batch of 128.
        # non_blocking: a blocking copy to a GPU would wait for all the work queued before it, every batch
        index = torch.from_numpy(np.array(indices, dtype=np.int64)).to(self.tensors[0].device, non_blocking=True)
        # index_select is several times faster than advanced indexing for a gather along the first dim.
        return tuple(tensor.index_select(0, index) for tensor in self.tensors)


class TensorImageDataset(TensorsDataset):
    """Decoded images (N, C, H, W) uint8 and labels (N,) int64."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        super().__init__(images, labels.long())

    @property
    def images(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        return self.tensors[1]


class EpochSeededSampler(RandomSampler):
    """Shuffles with seed + epoch (or, with shuffle=False, keeps the order) and counts the indices it has given out
    in the epoch, so a run resumed from a checkpoint written mid-epoch goes on with exactly the batches the
    interrupted run had not reached.

    Subclassing RandomSampler lets Lightning swap in a DistributedSampler (also seed + epoch) under DDP.
    """

    def __init__(self, data_source, seed: int, shuffle: bool = True):
        super().__init__(data_source)
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.taken = 0  # indices of this epoch given out so far
        self._resume_at: dict | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "taken": self.taken}

    def load_state_dict(self, state: dict) -> None:
        self._resume_at = state

    def order(self) -> list[int]:
        """This epoch's order of the samples."""
        if not self.shuffle:
            return list(range(len(self.data_source)))
        return torch.randperm(len(self.data_source), generator=self.epoch_generator()).tolist()

    def epoch_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)

    def __iter__(self):
        # The body runs at the first batch, after Lightning has set the epoch.
        order = self.order()
        resume, self._resume_at = self._resume_at, None
        self.taken = resume["taken"] if resume and resume["epoch"] == self.epoch else 0
        for index in order[self.taken:]:
            self.taken += 1
            yield index


class LengthBucketedSampler(EpochSeededSampler):
    """Batches of sequences of similar length, so that little of a batch is padding: each epoch shuffles the
    samples, sorts each pool of `pool` batches' worth by length, cuts the pools into batches and shuffles the
    batches. Seeded and resumable as its base."""

    def __init__(self, data_source, seed: int, lengths: torch.Tensor, batch_size: int, pool: int = 50):
        super().__init__(data_source, seed, shuffle=True)
        self.lengths = lengths
        self.batch_size = batch_size
        self.pool = pool * batch_size

    def order(self) -> list[int]:
        generator = self.epoch_generator()
        shuffled = torch.randperm(len(self.data_source), generator=generator)
        pools = [pool[self.lengths[pool].argsort(stable=True)] for pool in shuffled.split(self.pool)]
        batches = torch.cat(pools).split(self.batch_size)
        return torch.cat([batches[i] for i in torch.randperm(len(batches), generator=generator)]).tolist()


class BatchLoader(DataLoader):
    """A DataLoader whose sampler's position Lightning keeps in checkpoints (its loops save and restore the state
    of every training loader that has state_dict and load_state_dict). Lightning fetches batches lazily from
    loaders with a length, so the sampler's count is the number of batches handed to training."""

    def state_dict(self) -> dict:
        return self.sampler.state_dict() if hasattr(self.sampler, "state_dict") else {}

    def load_state_dict(self, state: dict) -> None:
        if state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state)


def batch_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False,
                 pin_memory: bool = False, resumable: bool = False, lengths: torch.Tensor | None = None) -> DataLoader:
    """Batches of one indexing op; shuffled ones (and, with `resumable`, ordered ones) resume mid-epoch. Shuffled
    with `lengths` (one per sample), each batch holds samples of similar length."""
    if shuffle and lengths is not None:
        sampler = LengthBucketedSampler(dataset, seed, lengths, batch_size)
    else:
        sampler = (EpochSeededSampler(dataset, seed, shuffle) if shuffle or resumable else SequentialSampler(dataset))
    # A generator of its own: iter(DataLoader) draws a base seed for workers from it, which would otherwise come
    # from the global stream that dropout draws from, and a resumed run's stream would drift.
    return BatchLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                       collate_fn=_already_batched, pin_memory=pin_memory, generator=torch.Generator())


def _already_batched(batch):
    return batch
