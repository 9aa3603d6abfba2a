"""Reader for the IDX files of MNIST and Fashion-MNIST (gzip or plain), and the datamodules built on them."""

import gzip
import zlib
from pathlib import Path

import torch

from dlbook.data.base import InMemoryImageDataModule
from dlbook.data.download import download_file
from dlbook.errors import DlbookError

IDX_UBYTE = 0x08


def read_idx(path: Path) -> torch.Tensor:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # cut short, damaged, or not gzipped at all
        raise DlbookError(f"{path} is not a whole gzip file ({type(error).__name__}: {error}): it was cut short or "
                          f"damaged. Delete it and run again to download it (an uncompressed IDX file belongs under "
                          f"the name without .gz).") from None
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] != IDX_UBYTE:
        raise DlbookError(f"{path} is not an IDX file of unsigned bytes (bad header); delete it and download again.")
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = data[4 + 4 * ndim:]
    expected = 1
    for size in shape:
        expected *= size
    if len(body) != expected:
        raise DlbookError(f"{path} is truncated or corrupt: header says {shape} ({expected} bytes), "
                          f"found {len(body)} bytes; delete it and download again.")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)


class IdxDataModule(InMemoryImageDataModule):
    """A dataset stored as torchvision does:
    <data_dir>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]."""

    folder: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]  # gz file name -> checksum
    input_shape = (1, 28, 28)
    num_classes = 10

    @property
    def layout(self) -> str:
        return f"{self.folder}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz] (gzipped or not)"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.folder / "raw"

    def _files(self, split: str) -> list[str]:
        prefix = "train" if split == "train" else "t10k"
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def _find(self, name: str) -> Path | None:
        for candidate in (self.raw_dir / name, self.raw_dir / f"{name}.gz"):
            if candidate.exists():
                return candidate
        return None

    def missing_files(self, split):
        return [self.raw_dir / f"{name}.gz" for name in self._files(split) if self._find(name) is None]

    def download(self):
        for path in self.missing_files("train") + self.missing_files("test"):
            errors = []
            for mirror in self.mirrors:
                try:
                    download_file(mirror + path.name, path, self.md5[path.name])
                    break
                except Exception as error:
                    errors.append(f"{mirror}: {error}")
            else:
                raise OSError("; ".join(errors))

    def setup(self, stage=None):
        # The test files too, before training: a damaged one stops the run now, not after the last epoch.
        super().setup(None if stage == "fit" else stage)

    def load_split(self, split):
        image_file, label_file = (self._find(name) for name in self._files(split))
        images, labels = read_idx(image_file), read_idx(label_file).long()
        if images.shape[1:] != self.input_shape[1:] or len(images) != len(labels):
            raise DlbookError(f"{image_file} holds {tuple(images.shape)} images for {len(labels)} labels; "
                              f"expected N x {self.input_shape[1]} x {self.input_shape[2]} and one label each.")
        outside = (labels >= self.num_classes).nonzero()
        if len(outside):  # else it trains, and the test pass fails with "Target 10 is out of bounds"
            index = outside[0].item()
            raise DlbookError(f"{label_file}: label {index} is {labels[index].item()}, outside the valid 0 to "
                              f"{self.num_classes - 1} of data={self.name}'s {self.num_classes} classes "
                              f"({len(outside)} labels are). The file is damaged: delete it and run again to "
                              f"download it.")
        return images.unsqueeze(1), labels


class MNISTDataModule(IdxDataModule):
    name = "mnist"
    folder = "MNIST"
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
    md5 = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    class_names = tuple(str(d) for d in range(10))
    mean = (0.1307,)
    std = (0.3081,)


class FashionMNISTDataModule(IdxDataModule):
    name = "fashion_mnist"
    folder = "FashionMNIST"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mean = (0.2860,)
    std = (0.3530,)
