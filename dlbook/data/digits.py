"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set): the offline default dataset."""

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
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are counts 0..16; scale to the 0..255 range every other dataset uses.
        images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
        labels = torch.from_numpy(digits.target).long()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        chosen = order[:TEST_SIZE] if split == "test" else order[TEST_SIZE:]
        return images[chosen], labels[chosen]
