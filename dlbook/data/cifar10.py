"""CIFAR-10 from the python-pickle release: <data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch}."""

import pickle

import numpy as np
import torch

from dlbook.data.base import InMemoryImageDataModule
from dlbook.data.download import download_archive
from dlbook.errors import DlbookError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


class BatchUnpickler(pickle.Unpickler):
    """Reads what a CIFAR-10 batch holds (a dict of numpy arrays, lists and bytes) and refuses every other global a
    pickle may name: any of them can be a function that unpickling calls, and a file in a shared data folder
    must not run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               *((f"numpy.{core}.{module}", name) for core in ("core", "_core")
                 for module, name in (("multiarray", "_reconstruct"), ("numeric", "_frombuffer"))),
               ("_codecs", "encode")}  # bytes in a protocol-2 pickle written by Python 3

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no CIFAR-10 batch does; not unpickled")
        return super().find_class(module, name)


class CIFAR10DataModule(InMemoryImageDataModule):
    name = "cifar10"
    layout = (f"cifar-10-batches-py/{{{','.join(TRAIN_BATCHES)},test_batch}} (the python version, "
              f"{URL.rsplit('/', 1)[1]}, extracted)")
    input_shape = (3, 32, 32)
    num_classes = 10
    class_names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    @property
    def batch_dir(self):
        return self.data_dir / "cifar-10-batches-py"

    def _files(self, split):
        return TRAIN_BATCHES if split == "train" else ("test_batch",)

    def missing_files(self, split):
        return [self.batch_dir / name for name in self._files(split) if not (self.batch_dir / name).exists()]

    def download(self):
        download_archive(URL, self.data_dir, MD5)

    def load_split(self, split):
        images, labels = [], []
        for name in self._files(split):
            path = self.batch_dir / name
            try:
                with open(path, "rb") as f:
                    batch = BatchUnpickler(f, encoding="latin1").load()
                data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            except Exception as error:
                raise DlbookError(f"{path} is not a CIFAR-10 batch ({type(error).__name__}: {error}); "
                                  f"delete it and download again.") from error
            images.append(torch.from_numpy(data))
            labels.append(torch.as_tensor(batch["labels"], dtype=torch.long))
        return torch.cat(images), torch.cat(labels)
