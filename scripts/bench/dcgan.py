"""DCGAN training throughput: iterations/s of `train.py model=dcgan` against a plain PyTorch loop.

dlbook trains one epoch of random 32x32 CIFAR-10-format images (batch 128, sample-grid callback and the default
callbacks on, the sample-quality measurement off, csv logger or W&B offline). The plain loop then trains the same generator and discriminator (taken
from the built task) with optimizers built from the same config, the same non-saturating loss, the same batch
preprocessing and the discriminator frozen during the generator step, summing its losses on the device with
one host read at the end. One iteration is one discriminator and one generator step. The first batch of each run
is a warm-up and is not timed; runs alternate and the median over repeats is reported.

With --sample-quality, dlbook runs `--epochs` epochs twice, with the sample-quality callback at its defaults and
without it, each timed to the end of training (every epoch's end included: checkpoints, and the measurements of
the run with it on), against the plain loop for as many epochs. Its one-time work (training its feature
classifier once for the data, the real images' features once per run) happens in setup, before the timing.

    python scripts/bench/dcgan.py --batches 20                   # CPU
    python scripts/bench/dcgan.py --accelerator gpu --batches 300 --repeats 5
    python scripts/bench/dcgan.py --sample-quality --batches 8 --epochs 10   # about 1,000 images an epoch
"""

import argparse
import os
import statistics
import time

from common import scratch_dir, synchronize, write_random_cifar10
from iteration_timer import timed_train


BATCH_SIZE = 128


def dlbook_run(data_dir, out_dir, accelerator: str, logger: str, extra: list[str], epochs: int = 1,
               sample_quality: bool = False):
    """(datamodule, task, iterations/s): of the first epoch, or with several epochs, of the whole training."""
    overrides = ["model=dcgan", "data=cifar10", "data.download=false", f"paths.data_dir={data_dir}",
                 f"paths.root_dir={out_dir}", f"paths.cache_dir={out_dir / 'cache'}", f"data.batch_size={BATCH_SIZE}",
                 f"trainer.max_epochs={epochs}", f"trainer.accelerator={accelerator}", f"logger={logger}",
                 "extras.print_config=false", *([] if sample_quality else ["callbacks.sample_quality=null"]), *extra]
    objects, timer = timed_train(overrides, out_dir / f"dlbook-{time.monotonic_ns()}")
    return objects["datamodule"], objects["model"], timer.fit_rate if epochs > 1 else timer.rate


def plain_run(datamodule, task, accelerator: str, seed: int, epochs: int = 1) -> float:
    """Iterations/s of the GAN loop a careful PyTorch user writes, on the task's nets and optimizer settings."""
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    generator, discriminator = task.generator.to(device).train(), task.discriminator.to(device).train()
    d_optimizer = task.discriminator_optimizer_factory(params=discriminator.parameters())
    g_optimizer = task.generator_optimizer_factory(params=generator.parameters())
    images = datamodule.data_train.images
    full_batches = len(images) // BATCH_SIZE * BATCH_SIZE
    shuffle = torch.Generator().manual_seed(seed)
    batches = (index for _ in range(epochs) for index in torch.randperm(len(images), generator=shuffle)
               [:full_batches].split(BATCH_SIZE))
    d_sum, g_sum = torch.zeros((), device=device), torch.zeros((), device=device)
    for step, index in enumerate(batches):
        if step == 1:  # the first batch warms up
            synchronize(device)
            start = time.perf_counter()
        real = datamodule.preprocess(images.index_select(0, index).to(device, non_blocking=True), augment=True)
        fake = generator(torch.randn(len(real), task.latent_dim, device=device))
        real_scores, fake_scores = discriminator(real), discriminator(fake.detach())
        d_loss = bce(real_scores, torch.ones_like(real_scores)) + bce(fake_scores, torch.zeros_like(fake_scores))
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()

        discriminator.requires_grad_(False)  # the generator step needs no gradients for D's weights
        scores = discriminator(fake)
        g_loss = bce(scores, torch.ones_like(scores))
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        discriminator.requires_grad_(True)
        d_sum += d_loss.detach()
        g_sum += g_loss.detach()
    _ = d_sum.item(), g_sum.item()  # the run's one host read
    synchronize(device)
    return step / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=50, help="training batches per run (the first is warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--logger", default="csv", choices=["csv", "wandb"], help="logger= of the dlbook runs")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sample-quality", action="store_true",
                        help="also time dlbook with the sample-quality callback on, to the end of training")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for the dlbook runs")
    args = parser.parse_args()
    if args.batches < 2:
        parser.error("--batches must be at least 2: the first one is not timed")
    if args.sample_quality and args.epochs < 2:
        parser.error("--sample-quality needs --epochs 2 or more: its measurements are timed across epochs")

    os.environ.setdefault("WANDB_MODE", "offline")
    work = scratch_dir()
    # Exactly `batches` full batches: five training files of equal size, as CIFAR-10 has.
    n_train = -(-args.batches * BATCH_SIZE // 5) * 5
    data_dir = write_random_cifar10(work / "data", n_train=n_train, n_test=BATCH_SIZE)
    overrides = [f"++trainer.limit_train_batches={args.batches}", *args.overrides]
    plain, dlbook, with_quality = [], [], []
    for _ in range(args.repeats):
        datamodule, task, rate = dlbook_run(data_dir, work, args.accelerator, args.logger, overrides, args.epochs)
        dlbook.append(rate)
        if args.sample_quality:
            with_quality.append(dlbook_run(data_dir, work, args.accelerator, args.logger, overrides, args.epochs,
                                           sample_quality=True)[2])
        plain.append(plain_run(datamodule, task, args.accelerator, seed=42, epochs=args.epochs))
    ours, theirs = statistics.median(dlbook), statistics.median(plain)
    timed = args.batches * args.epochs - 1
    print(f"DCGAN 32x32, batch {BATCH_SIZE}, {args.epochs} epoch(s) of {args.batches} batches ({timed} timed), "
          f"{args.accelerator}, median of {args.repeats}")
    print(f"{'plain it/s':>11} {'dlbook it/s':>12} {'ratio':>7}")
    print(f"{theirs:>11.3f} {ours:>12.3f} {ours / theirs:>7.3f}   (dlbook / plain; target >= 0.97)")
    if args.sample_quality:
        quality = statistics.median(with_quality)
        print(f"{theirs:>11.3f} {quality:>12.3f} {quality / theirs:>7.3f}   (dlbook with sample quality / plain)")
    print("each run, plain / dlbook it/s:", ", ".join(f"{p:.3f} / {d:.3f}" for p, d in zip(plain, dlbook)),
          *(["; with sample quality:", ", ".join(f"{q:.3f}" for q in with_quality)] if args.sample_quality else []),
          flush=True)


if __name__ == "__main__":
    main()
