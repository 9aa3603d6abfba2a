"""Speed options: training steps/s of `train.py model=<model>` (resnet9 by default) with each speed option on, as a
ratio to the plain fp32 run measured in the same process.

Every run trains one epoch of `--batches` batches of random CIFAR-10-sized uint8 images (no validation, no test,
no logger); the first `--warmup` batches are not timed (torch.compile compiles there; their time is shown apart).
Runs alternate between the options, and the median over repeats is reported. Options that need a GPU are skipped
on the CPU with a message.

    python scripts/bench/speed_options.py                                   # CPU: width 16, batch 128
    python scripts/bench/speed_options.py --accelerator gpu --width 64 --batch-size 512 --batches 100 --repeats 3
    python scripts/bench/speed_options.py --model mnist_cnn --options channels_last compile   # any image model
"""

import argparse
import statistics
import time

from common import scratch_dir, write_random_cifar10
from iteration_timer import timed_train


OPTIONS = {
    "fp32": [],
    "channels_last": ["channels_last=true"],
    "compile": ["compile=true"],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "data_on_device": ["data_on_device=true"],
    "all": ["channels_last=true", "compile=true", "trainer.precision=bf16-mixed", "data_on_device=true"],
}
NEEDS_GPU = {"data_on_device": "on the CPU the data is on the device already"}


def steps_per_second(option: str, data_dir, out_dir, args) -> tuple[float, float]:
    """(steps/s after the warm-up, seconds of the warm-up batches) of one run with `option` on."""
    width = [f"model.net.width={args.width}"] if args.model == "resnet9" else []
    overrides = [f"model={args.model}", *width, "data=cifar10", "data.download=false",
                 f"paths.data_dir={data_dir}", f"paths.root_dir={out_dir}", f"data.batch_size={args.batch_size}",
                 "data.val_fraction=0", "test=false", "trainer.max_epochs=1",
                 f"++trainer.limit_train_batches={args.batches}", f"trainer.accelerator={args.accelerator}",
                 "logger=none", "extras.print_config=false", "optimizer=sgd", *OPTIONS[option], *args.overrides]
    _, timer = timed_train(overrides, out_dir / f"{option}-{time.monotonic_ns()}", args.warmup)
    return timer.rate, timer.warmup_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--options", nargs="+", default=list(OPTIONS)[1:], choices=list(OPTIONS)[1:],
                        help="options to compare with the fp32 baseline")
    parser.add_argument("--batches", type=int, default=15, help="training batches per run, warm-up included")
    parser.add_argument("--warmup", type=int, default=3, help="batches not timed at the start of each run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="resnet9", help="model= choice, trained on CIFAR-10-sized images")
    parser.add_argument("--width", type=int, default=16, help="ResNet-9 width (64 in the speed run)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every run")
    args = parser.parse_args()
    if args.batches <= args.warmup:
        parser.error("--batches must be more than --warmup: the warm-up batches are not timed")

    options = ["fp32"]
    for option in args.options:
        if args.accelerator == "cpu" and option in NEEDS_GPU:
            print(f"skipped {option}: it needs a GPU ({NEEDS_GPU[option]})")
        else:
            options.append(option)
    work = scratch_dir()
    # Exactly `batches` full batches: five training files of equal size, as CIFAR-10 has.
    n_train = -(-args.batches * args.batch_size // 5) * 5
    data_dir = write_random_cifar10(work / "data", n_train=n_train, n_test=args.batch_size)
    runs = {option: [] for option in options}
    for _ in range(args.repeats):
        for option in options:
            runs[option].append(steps_per_second(option, data_dir, work, args))

    name = f"resnet9 width {args.width}" if args.model == "resnet9" else args.model
    print(f"{name}, batch {args.batch_size}, {args.batches} batches "
          f"({args.batches - args.warmup} timed), {args.accelerator}, median of {args.repeats}")
    print(f"{'option':<16} {'steps/s':>9} {'vs fp32':>8} {'warm-up s':>10}")
    baseline = statistics.median(rate for rate, _ in runs["fp32"])
    for option, results in runs.items():
        rate = statistics.median(rate for rate, _ in results)
        warmup = statistics.median(seconds for _, seconds in results)
        print(f"{option:<16} {rate:>9.3f} {rate / baseline:>7.3f}x {warmup:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
