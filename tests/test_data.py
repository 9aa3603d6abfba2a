import gzip
import logging
import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from dlbook.data.augment import random_crop, random_flip
from dlbook.data.batches import EpochSeededSampler, TensorImageDataset, batch_loader
from dlbook.data.cifar10 import CIFAR10DataModule
from dlbook.data.digits import DigitsDataModule
from dlbook.data.idx import FashionMNISTDataModule, MNISTDataModule, read_idx
from dlbook.data.image_folder import ImageFolderDataModule
from dlbook.errors import DatasetNotFoundError, DlbookError
from tests.datasets import SHARED_DATA, write_cifar10, write_idx, write_image_folder, write_mnist

SHARED_MNIST = SHARED_DATA / "MNIST" / "raw"


def first_batch(datamodule, stage="fit"):
    datamodule.prepare_data()
    datamodule.setup(stage)
    loader = datamodule.train_dataloader() if stage == "fit" else datamodule.test_dataloader()
    return next(iter(loader))


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("module, folder", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_idx_datasets_load_from_torchvision_layout(tmp_path, module, folder, compress):
    write_mnist(tmp_path, folder=folder, compress=compress)
    datamodule = module(data_dir=str(tmp_path), batch_size=32, val_fraction=0.1, download=False)
    images, labels = first_batch(datamodule)
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and 0 <= labels.min() and labels.max() <= 9
    assert len(datamodule.data_train) + len(datamodule.data_val) == 1797 - 360
    assert len(datamodule.data_val) == round(1437 * 0.1)
    datamodule.setup("test")
    assert len(datamodule.data_test) == 360


def test_train_val_split_is_seeded(tmp_path):
    write_mnist(tmp_path)

    def val_labels(seed):
        datamodule = MNISTDataModule(data_dir=str(tmp_path), split_seed=seed, download=False)
        datamodule.setup("fit")
        return datamodule.data_val.labels

    assert torch.equal(val_labels(1), val_labels(1))
    assert not torch.equal(val_labels(1), val_labels(2))


def test_corrupt_idx_file_is_a_clear_error(tmp_path):
    write_mnist(tmp_path, compress=False)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DlbookError, match="truncated or corrupt"):
        read_idx(path)


@pytest.mark.parametrize("damage", [
    lambda data: data[:len(data) // 2],  # a download cut short
    lambda data: gzip.decompress(data),  # an uncompressed file under the .gz name
    lambda data: random.Random(0).randbytes(len(data)),
    lambda data: data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:],  # a flipped byte of the CRC in the gzip trailer
], ids=["truncated", "uncompressed", "random", "crc"])
def test_a_damaged_gzip_idx_file_is_named_in_one_paragraph(tmp_path, damage):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DlbookError, match=f"{path} is not a whole gzip file .*Delete it and run again to download it"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).setup("fit")


def test_a_label_outside_the_classes_is_refused_before_training(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"  # read before training too, not only to test
    labels = read_idx(path.with_suffix(".gz")).numpy().copy()
    labels[[7, 9]] = 255
    write_idx(path, labels, compress=True)
    with pytest.raises(DlbookError, match=rf"{path}.gz: label 7 is 255, outside the valid 0 to 9 of data=mnist's 10 "
                                          rf"classes \(2 labels are\)\. The file is damaged: delete it"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).setup("fit")


def test_missing_dataset_offline_names_the_folder_and_files(tmp_path, monkeypatch):
    datamodule = MNISTDataModule(data_dir=str(tmp_path / "empty"), download=True)

    def no_network():
        raise OSError("no network")

    monkeypatch.setattr(datamodule, "download", no_network)
    with pytest.raises(DatasetNotFoundError) as error:
        datamodule.prepare_data()
    message = str(error.value)
    assert str(tmp_path / "empty") in message and "train-images-idx3-ubyte.gz" in message
    assert "no network" in message and "DLBOOK_DATA_DIR" in message


def test_missing_cifar10_lists_every_file_and_the_layout(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"present")
    datamodule = CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as error:
        datamodule.prepare_data()
    message = str(error.value)
    missing = message.split("Missing (5, under that folder): ")[1].split(". ")[0].split(", ")
    assert missing == [f"cifar-10-batches-py/{name}" for name in
                       ("data_batch_1", "data_batch_2", "data_batch_4", "data_batch_5", "test_batch")]
    assert (f"Expected layout: {tmp_path}/cifar-10-batches-py/{{data_batch_1,data_batch_2,data_batch_3,"
            f"data_batch_4,data_batch_5,test_batch}} (the python version, cifar-10-python.tar.gz") in message


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_pickles(tmp_path, protocol):
    write_cifar10(tmp_path, protocol=protocol)
    datamodule = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=16, download=False)
    images, labels = first_batch(datamodule, stage="test")
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.uint8
    assert len(datamodule.data_test) == 360
    # the release stores rows channel-major; decoding must give back the same pixels in every channel
    assert torch.equal(images[:, 0], images[:, 1])


class OpensAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_a_cifar10_batch_that_would_run_code_is_refused_unrun(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "opened"
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": OpensAFile(marker), "labels": [0]}, f)
    datamodule = CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DlbookError, match=r"test_batch is not a CIFAR-10 batch .*names io\.open"):
        datamodule.setup("test")
    assert not marker.exists()


@pytest.mark.parametrize("with_test", [True, False])
def test_image_folder(tmp_path, with_test):
    write_image_folder(tmp_path / "images", with_test=with_test)
    datamodule = ImageFolderDataModule(root=str(tmp_path / "images"), image_size=12, channels=3, batch_size=8)
    images, labels = first_batch(datamodule)
    assert datamodule.spec.num_classes == 3 and datamodule.spec.class_names == ("digit_0", "digit_1", "digit_7")
    assert images.shape == (8, 3, 12, 12)
    datamodule.setup("test")
    assert len(datamodule.data_test) == (3 * 15 if with_test else round(3 * 60 * 0.2))
    assert datamodule.mean is not None and len(datamodule.mean) == 3
    restored = ImageFolderDataModule(root=str(tmp_path / "images"))
    restored.load_state_dict(datamodule.state_dict())
    assert restored.mean == datamodule.mean


def test_image_folder_without_classes_is_a_clear_error(tmp_path):
    datamodule = ImageFolderDataModule(root=str(tmp_path / "nothing"))
    with pytest.raises(DlbookError, match="train/<class>/<image>"):
        datamodule.prepare_data()


def test_digits_default_needs_no_files(tmp_path):
    datamodule = DigitsDataModule(data_dir=str(tmp_path), batch_size=64)
    images, _ = first_batch(datamodule)
    assert images.shape == (64, 1, 8, 8)
    normalized = datamodule.normalize(datamodule.data_train.images)
    assert abs(normalized.mean().item()) < 0.05 and abs(normalized.std().item() - 1) < 0.05


def test_batches_are_one_index_and_epoch_seeded():
    dataset = TensorImageDataset(torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1), torch.arange(20))
    loader = batch_loader(dataset, batch_size=8, shuffle=True, seed=3)
    first = torch.cat([labels for _, labels in loader])
    assert sorted(first.tolist()) == list(range(20))
    loader.sampler.set_epoch(1)
    second = torch.cat([labels for _, labels in loader])
    loader.sampler.set_epoch(0)
    again = torch.cat([labels for _, labels in loader])
    assert torch.equal(first, again) and not torch.equal(first, second)
    assert isinstance(loader.sampler, EpochSeededSampler)


def test_batch_augmentations_keep_shape_and_move_pixels():
    torch.manual_seed(0)
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    flipped = random_flip(images.repeat(32, 1, 1, 1))
    flipped_count = sum(torch.equal(x, y.flip(-1)) for x, y in zip(flipped, images.repeat(32, 1, 1, 1)))
    assert 0 < flipped_count < 64
    cropped = random_crop(images.repeat(16, 1, 1, 1), padding=2)
    assert cropped.shape == (32, 3, 6, 6)
    # every crop is a shifted window: its centre pixel is some original pixel of the same channel
    assert any(not torch.equal(c, images[i % 2]) for i, c in enumerate(cropped))
    centre = cropped[:, :, 2:4, 2:4]
    assert torch.isin(centre, images).all()


@pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="no local copy of MNIST")
def test_real_mnist_test_set():
    images = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert torch.bincount(labels.long()).min() > 800  # every digit is there
    assert abs(images.float().div(255).mean().item() - MNISTDataModule.mean[0]) < 0.01


def test_a_cache_write_cut_short_leaves_no_file_and_the_next_run_writes_it(tmp_path, monkeypatch):
    from dlbook.data import cache

    def disk_full(obj, path):
        Path(path).write_bytes(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    built = {"ids": torch.arange(5)}
    with monkeypatch.context() as patch:
        patch.setattr(cache.torch, "save", disk_full)
        assert cache.cached(tmp_path, "ids", "k", lambda: built) is built
    assert list(tmp_path.iterdir()) == []
    cache.cached(tmp_path, "ids", "k", lambda: built)
    assert torch.equal(cache.cached(tmp_path, "ids", "k", lambda: pytest.fail("rebuilt"))["ids"], built["ids"])


def test_a_same_size_edit_that_keeps_the_modification_time_makes_a_new_cache_key(tmp_path):
    from dlbook.data.cache import cache_key

    path = tmp_path / "ptb.train.txt"
    path.write_text("the cat sat\n")
    before, stat = cache_key([path]), path.stat()
    path.write_text("the dog sat\n")  # as cp -p, rsync -a or tar x leave an edited copy: same size and mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert cache_key([path]) != before
    assert cache_key([path]) == cache_key([path])  # and unchanged files keep their key


def test_a_cache_file_with_bytes_overwritten_is_rebuilt_with_a_warning(tmp_path, caplog):
    from dlbook.data import cache

    ids = torch.arange(1000)
    cache.cached(tmp_path, "ids", "k", lambda: {"ids": ids})
    path = tmp_path / "ids-k.pt"
    data = bytearray(path.read_bytes())
    start = data.index(ids.numpy().tobytes())
    data[start + 8 * 500:start + 8 * 501] = (-1).to_bytes(8, "little", signed=True)  # id 500 read as -1
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="dlbook"):
        rebuilt = cache.cached(tmp_path, "ids", "k", lambda: {"ids": ids})
    assert torch.equal(rebuilt["ids"], ids)
    assert f"Rebuilding the unreadable cache file {path} (ValueError: its record" in caplog.text
    assert "fails its CRC check" in caplog.text
    assert torch.equal(cache.cached(tmp_path, "ids", "k", lambda: pytest.fail("rebuilt again"))["ids"], ids)
