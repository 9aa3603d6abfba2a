"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set): the offline default dataset."""

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from dlbook.data.base import InMemoryImageDataModule

TEST_SIZE = 360  # ~20% of 1,797, held out with a fixed seed so every run tests on the same images


class DigitsDataModule(InMemoryImageDataModule):
    name = "digits"
    input_shape = (1, 8, 8)
    num_classes = 10
    class_names = tuple(str(d) for d in range(10))
    mean = (0.3053,)
    std = (0.3759,)

    def missing_files(self, split):
        return []  # ships inside scikit-learn

    def load_split(self, split):
        images, labels = bundled_digits()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        chosen = order[:TEST_SIZE] if split == "test" else order[TEST_SIZE:]
        return images[chosen], labels[chosen]


@functools.cache
def bundled_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as uint8 (N, 1, 8, 8) images and their labels. Read from scikit-learn's own file without
    importing scikit-learn, which would cost a quarter of a second of every run's start."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as f:
            rows = np.loadtxt(f, delimiter=",")
        pixels, targets = rows[:, :-1].reshape(-1, 8, 8), rows[:, -1]
    else:  # a scikit-learn that keeps the file elsewhere
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels, targets = digits.images, digits.target
    # Pixel values are counts 0..16; scale to the 0..255 range every other dataset uses.
    images = torch.from_numpy(pixels * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    return images, torch.from_numpy(targets).long()
