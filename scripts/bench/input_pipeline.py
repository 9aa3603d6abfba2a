"""Input pipeline: training samples/s of dlbook's CIFAR-10 datamodule against torchvision's CIFAR10 dataset.

Both produce normalised float batches with random crop (padding 4) and horizontal flip:
- dlbook: uint8 tensors in memory, one indexing op per batch, augmentation on the whole batch;
- torchvision: `CIFAR10` + `Compose([RandomCrop(32, 4), RandomHorizontalFlip(), ToTensor(), Normalize])`
  in a DataLoader with 0 and 2 workers.
The CIFAR-10 files are written with random pixels in the release's format, so no download is needed.

    python scripts/bench/input_pipeline.py [--batches 100] [--batch-size 128] [--device cuda]
"""

import argparse
import time

from common import scratch_dir, write_random_cifar10


def samples_per_second(batches, count: int, batch_size: int) -> float:
    import torch

    iterator = iter(batches)
    next(iterator)  # start-up (workers, first decode) is not throughput
    start = time.perf_counter()
    for _ in range(count):
        images, _ = next(iterator)
    if images.is_cuda:
        torch.cuda.synchronize()
    return count * batch_size / (time.perf_counter() - start)


def dlbook_batches(data_dir, batch_size: int, device: str):
    from dlbook.data.cifar10 import CIFAR10DataModule

    datamodule = CIFAR10DataModule(data_dir=str(data_dir), batch_size=batch_size, flip=True, crop_padding=4,
                                   download=False)
    datamodule.setup("fit")
    while True:
        for images, labels in datamodule.train_dataloader():
            yield datamodule.preprocess(images.to(device, non_blocking=True), augment=True), labels


def torchvision_loader(data_dir, batch_size: int, workers: int, device: str):
    import torch
    from torchvision import datasets, transforms

    from dlbook.data.cifar10 import CIFAR10DataModule

    class LocalCIFAR10(datasets.CIFAR10):
        # The random files have other checksums than the release, which torchvision verifies.
        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            self.classes = list(CIFAR10DataModule.class_names)

    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(),
                                    transforms.Normalize(CIFAR10DataModule.mean, CIFAR10DataModule.std)])
    dataset = LocalCIFAR10(str(data_dir), train=True, transform=transform, download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    while True:
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="where batches end up: cpu or cuda")
    args = parser.parse_args()

    data_dir = write_random_cifar10(scratch_dir() / "data")
    ours = samples_per_second(dlbook_batches(data_dir, args.batch_size, args.device), args.batches, args.batch_size)
    print(f"{'pipeline':<28} {'samples/s':>10} {'dlbook is':>10}")
    print(f"{'dlbook':<28} {ours:>10.0f}")
    for workers in (0, 2):
        theirs = samples_per_second(torchvision_loader(data_dir, args.batch_size, workers, args.device), args.batches,
                                    args.batch_size)
        print(f"{f'torchvision, {workers} workers':<28} {theirs:>10.0f} {ours / theirs:>9.1f}x", flush=True)


if __name__ == "__main__":
    main()
