"""Framework overhead: time per training step of `train.py` against a hand-written PyTorch loop.

Both train the same net on the same uint8 tensors in the same batch order with the same optimizer, batch
normalisation and per-epoch loss/accuracy (an autoencoder's squared error) bookkeeping; dlbook runs with its default
callbacks and W&B (offline). A third run puts the plain loop's step in a minimal LightningModule, with no logger,
checkpoints, progress bar or callbacks: it measures what Lightning's own loop costs a step, so that the rest is
dlbook's. The first batch of each run is a warm-up and is not timed; runs alternate, and the median over repeats is
reported.

    python scripts/bench/overhead.py                 # MLP and MNIST CNN, CPU
    python scripts/bench/overhead.py --models ae conv_ae   # autoencoders (BCE on pixel logits)
    python scripts/bench/overhead.py --models mlp --repeats 5 --accelerator gpu
"""

import argparse
import os
import statistics
import time

from common import scratch_dir, synchronize, write_random_mnist
from iteration_timer import IterationTimer, timed_train


def dlbook_epoch(model: str, data_dir, out_dir, accelerator: str, batch_size: int, logger: str,
                 extra: list[str]):
    overrides = [f"model={model}", "data=mnist", f"paths.data_dir={data_dir}", f"paths.root_dir={out_dir}",
                 f"data.batch_size={batch_size}", "data.val_fraction=0", "trainer.max_epochs=1", "test=false",
                 f"trainer.accelerator={accelerator}", f"logger={logger}", "extras.print_config=false", *extra]
    objects, timer = timed_train(overrides, out_dir / f"dlbook-{model}-{time.monotonic_ns()}")
    return objects["datamodule"], objects["model"], timer


def classifier_step(net, images, labels):
    """The loss and the correct predictions of a batch of a classifier."""
    import torch.nn.functional as F

    logits = net(images)
    return F.cross_entropy(logits, labels), (logits.argmax(1) == labels).sum()


def autoencoder_step(net, images, labels):
    """The loss (binary cross-entropy on the pixel logits) and the squared error of a batch of an autoencoder."""
    import torch
    import torch.nn.functional as F

    logits = net(images)
    return F.binary_cross_entropy_with_logits(logits, images), F.mse_loss(torch.sigmoid(logits.detach()), images)


def plain_epoch(datamodule, task, accelerator: str, batch_size: int, seed: int) -> float:
    """Seconds per step of the loop a careful PyTorch user writes: batches gathered with index_select (as dlbook
    does), the loss and accuracy (an autoencoder's squared error) summed on the device."""
    import torch

    from dlbook.tasks.reconstruction import ReconstructionTask

    step_of = autoencoder_step if isinstance(task, ReconstructionTask) else classifier_step
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    net = task.net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images, labels = datamodule.data_train.images, datamodule.data_train.labels
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    loss_sum, measure_sum = torch.zeros((), device=device), torch.zeros((), device=device)
    net.train()
    for step, index in enumerate(order.split(batch_size)):
        if step == 1:  # the first batch warms up
            synchronize(device)
            start = time.perf_counter()
        x = datamodule.normalize(images.index_select(0, index).to(device, non_blocking=True))
        y = labels.index_select(0, index).to(device, non_blocking=True)
        loss, measure = step_of(net, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        measure_sum += measure
    _ = loss_sum.item(), measure_sum.item()  # the epoch's one host read
    synchronize(device)
    return (time.perf_counter() - start) / step


class IndexBatches:
    """The batches' indices as one iterable: Lightning would take a list as several data loaders."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def bare_lightning_epoch(datamodule, task, accelerator: str, batch_size: int, seed: int) -> float:
    """Seconds per step of the plain loop's step and batches run by a bare Lightning Trainer."""
    import lightning as L
    import torch

    from dlbook.tasks.reconstruction import ReconstructionTask

    step_of = autoencoder_step if isinstance(task, ReconstructionTask) else classifier_step
    images, labels = datamodule.data_train.images, datamodule.data_train.labels
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = task.net
            self.loss_sum, self.measure_sum = torch.zeros(()), torch.zeros(())

        def on_train_start(self):
            self.loss_sum, self.measure_sum = self.loss_sum.to(self.device), self.measure_sum.to(self.device)

        def transfer_batch_to_device(self, index, device, dataloader_idx):
            return index  # gathered on the host, then moved, as in the plain loop

        def training_step(self, index, batch_idx):
            x = datamodule.normalize(images.index_select(0, index).to(self.device, non_blocking=True))
            y = labels.index_select(0, index).to(self.device, non_blocking=True)
            loss, measure = step_of(self.net, x, y)
            self.loss_sum += loss.detach()
            self.measure_sum += measure
            return loss

        def on_train_epoch_end(self):
            _ = self.loss_sum.item(), self.measure_sum.item()  # the epoch's one host read

        def configure_optimizers(self):
            return torch.optim.Adam(self.net.parameters(), lr=1e-3)

    timer = IterationTimer()
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(Bare(), train_dataloaders=IndexBatches(order.split(batch_size)))
    return 1 / timer.rate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "mnist_cnn"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--logger", default="wandb", help="logger= choice of the dlbook runs")
    parser.add_argument("--images", type=int, default=60000, help="random training images")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for the dlbook runs")
    args = parser.parse_args()

    os.environ.setdefault("WANDB_MODE", "offline")
    work = scratch_dir()
    data_dir = write_random_mnist(work / "data", n_train=args.images)
    print(f"{'model':<12} {'plain ms/step':>14} {'Lightning ms/step':>18} {'dlbook ms/step':>15} {'ratio':>7} "
          f"{'Lightning/plain':>16} {'dlbook/Lightning':>17}")
    for model in args.models:
        dlbook, plain, bare = [], [], []
        for _ in range(args.repeats):
            datamodule, task, timer = dlbook_epoch(model, data_dir, work, args.accelerator, args.batch_size,
                                                   args.logger, args.overrides)
            dlbook.append(1 / timer.rate)
            plain.append(plain_epoch(datamodule, task, args.accelerator, args.batch_size, seed=42))
            task.load_state_dict(timer.initial_state)  # the bare run trains the same net from the same start
            bare.append(bare_lightning_epoch(datamodule, task, args.accelerator, args.batch_size, seed=42))
        ours, theirs, lightning = statistics.median(dlbook), statistics.median(plain), statistics.median(bare)
        print(f"{model:<12} {theirs * 1e3:>14.3f} {lightning * 1e3:>18.3f} {ours * 1e3:>15.3f} {ours / theirs:>7.3f} "
              f"{lightning / theirs:>16.3f} {ours / lightning:>17.3f}", flush=True)


if __name__ == "__main__":
    main()
