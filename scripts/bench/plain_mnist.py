"""The plain PyTorch script that startup.py compares dlbook's fixed costs with: MNIST IDX files read with gzip and
numpy, the 784-512-256-128-10 MLP trained for one epoch with Adam (batches gathered with index_select), test
accuracy, metrics written to a JSON file. It prints the wall and CPU clocks when training starts and ends.

    python scripts/bench/plain_mnist.py <folder holding MNIST/raw> <output folder>
"""

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def read_idx(path: Path) -> torch.Tensor:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy())


def main():
    raw, output = Path(sys.argv[1]) / "MNIST" / "raw", Path(sys.argv[2])
    torch.manual_seed(42)
    split = {prefix: (read_idx(raw / f"{prefix}-images-idx3-ubyte.gz"),
                      read_idx(raw / f"{prefix}-labels-idx1-ubyte.gz").long()) for prefix in ("train", "t10k")}

    def normalize(images):
        return (images.float().div(255) - 0.1307) / 0.3081

    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images, labels = split["train"]
    start = time.time(), time.process_time()
    for index in torch.randperm(len(images)).split(128):
        loss = nn.functional.cross_entropy(net(normalize(images.index_select(0, index))), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    end = time.time(), time.process_time()
    print(f"TRAINING {start[0]:.6f} {start[1]:.6f} {end[0]:.6f} {end[1]:.6f}", flush=True)

    net.eval()
    images, labels = split["t10k"]
    with torch.no_grad():
        correct = sum((net(normalize(x)).argmax(1) == y).sum().item()
                      for x, y in zip(images.split(1000), labels.split(1000)))
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps({"test/acc": correct / len(labels)}))
    print(f"Test accuracy: {correct / len(labels):.4f}")


if __name__ == "__main__":
    main()
