"""Batching of in-memory uint8 tensors: a batch is one indexing op, not batch_size calls to __getitem__."""

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler


class TensorImageDataset(Dataset):
    """Decoded images (N, C, H, W) uint8 and labels (N,) int64, served a whole batch at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], self.labels[index]

    def to(self, device: torch.device) -> "TensorImageDataset":
        """Keep the tensors on device (once, at first use): batches are then gathered there."""
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        return self

    def __getitems__(self, indices: list[int]):
        # DataLoader calls this with a whole batch of indices when it exists.
        # non_blocking: a blocking copy to a GPU would wait for all the work queued before it, every batch
        index = torch.tensor(indices).to(self.images.device, non_blocking=True)
        # index_select is several times faster than advanced indexing for a gather along the first dim.
        return self.images.index_select(0, index), self.labels.index_select(0, index)


class EpochSeededSampler(RandomSampler):
    """Shuffles with seed + epoch so an interrupted run resumes with the same batch order.

    Subclassing RandomSampler lets Lightning swap in a DistributedSampler (also seed + epoch) under DDP.
    """

    def __init__(self, data_source, seed: int):
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


def batch_loader(dataset: TensorImageDataset, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False,
                 pin_memory: bool = False) -> DataLoader:
    sampler = EpochSeededSampler(dataset, seed) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                      collate_fn=_already_batched, pin_memory=pin_memory)


def _already_batched(batch):
    return batch
