"""Transformer throughput: training tokens/s of `train.py model=gpt` against a hand-written PyTorch loop.

Both train the same GPT on the same windows of characters in the same order, each window on its own (the GPT
carries no state in training), with Adam and gradients clipped at norm 5 as the family config does, the epoch's
loss summed on the device; dlbook runs with its default callbacks and W&B (offline). Random text in the real file
format (language_model.py's), since only the sizes matter. `--bf16` trains both in bfloat16 autocast
(trainer.precision=bf16-mixed), `--compile` compiles the net for both (compile=true). The first window of each
run is a warm-up and is not timed; runs alternate, and the median over repeats is reported.

    python scripts/bench/transformer.py                                  # CPU, a small GPT
    python scripts/bench/transformer.py --accelerator gpu --bf16 --compile model.net.d_model=384 \\
        model.net.num_layers=6 model.net.heads=6 data.seq_length=256 data.batch_size=64
"""

import argparse
import os
import statistics
import time

from common import scratch_dir
from iteration_timer import timed_train
from language_model import plain_epoch, write_random_text

# A small GPT, as conf/experiment/gpt_shakespeare.yaml trains on a CPU; the command line overrides any of it.
SMALL = ["model.net.num_layers=4", "model.net.heads=4", "model.net.d_model=128", "model.net.dropout=0",
         "data.seq_length=64", "data.batch_size=32"]


def dlbook_epoch(data_dir, out_dir, args):
    overrides = ["model=gpt", "data=text_chars", f"paths.data_dir={data_dir}", f"paths.root_dir={out_dir}",
                 "trainer.max_epochs=1", "test=false", "++trainer.limit_val_batches=0", "callbacks.text_samples=null",
                 "data.val_fraction=0", "data.test_fraction=0", f"trainer.accelerator={args.accelerator}",
                 f"logger={args.logger}", "extras.print_config=false", *SMALL,
                 *(["trainer.precision=bf16-mixed"] if args.bf16 else []), *(["compile=true"] if args.compile else []),
                 *args.overrides]
    objects, timer = timed_train(overrides, out_dir / f"dlbook-gpt-{time.monotonic_ns()}")
    windows = objects["datamodule"].data_train
    return windows, objects["model"], timer.rate * windows.rows.shape[0] * windows.length


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--characters", type=int, default=200_000, help="length of the character text")
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast in both loops")
    parser.add_argument("--compile", action="store_true", help="torch.compile the net in both loops")
    parser.add_argument("--logger", default="wandb", help="logger= choice of the dlbook runs")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for the dlbook runs")
    args = parser.parse_args()

    os.environ.setdefault("WANDB_MODE", "offline")
    work = scratch_dir()
    write_random_text(work / "data", args.characters, words=0)
    print(f"{'model':<10} {'plain tokens/s':>15} {'dlbook tokens/s':>16} {'ratio':>7}")
    dlbook, plain = [], []
    for _ in range(args.repeats):
        windows, task, rate = dlbook_epoch(work / "data", work, args)
        dlbook.append(rate)
        plain.append(plain_epoch(windows, task, args.accelerator, carry_state=False, bf16=args.bf16))
    ours, theirs = statistics.median(dlbook), statistics.median(plain)
    print(f"{'gpt':<10} {theirs:>15.1f} {ours:>16.1f} {ours / theirs:>7.3f}  (dlbook / plain)", flush=True)


if __name__ == "__main__":
    main()
