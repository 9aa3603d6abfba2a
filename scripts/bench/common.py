"""Helpers shared by the benchmarks: dlbook importable from a checkout, and random data in the real file formats."""

import gzip
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing


def write_random_mnist(data_dir: Path, n_train: int = 60000, n_test: int = 10000, seed: int = 0) -> Path:
    """Random pixels and labels in MNIST's IDX layout: only the sizes matter for timing."""
    rng = np.random.default_rng(seed)
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
            high = 256 if kind.startswith("images") else 10
            array = rng.integers(0, high, size=shape, dtype=np.uint8)
            header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", s) for s in shape)
            with gzip.open(raw / f"{prefix}-{kind}-ubyte.gz", "wb", compresslevel=1) as f:
                f.write(header + array.tobytes())
    return data_dir


def synchronize(device) -> None:
    """Wait for the GPU, so that a clock read after it has measured the work queued before."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="dlbook-bench-"))


def write_random_cifar10(data_dir: Path, n_train: int = 50000, n_test: int = 10000, seed: int = 0) -> Path:
    """Random images in CIFAR-10's python-pickle layout (five training batches and a test batch)."""
    import pickle

    rng = np.random.default_rng(seed)
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)]
    sizes = [n_train // 5] * 5 + [n_test]
    for name, n in zip(names + ["test_batch"], sizes):
        batch = {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, size=n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return data_dir
