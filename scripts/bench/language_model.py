"""Language-model throughput: tokens/s of `train.py` (char_rnn, word_lm) against a hand-written PyTorch loop.

Both train the same net on the same token windows in the same order, carrying the detached state from window to
window (truncated BPTT), with Adam, gradients clipped at norm 5 as the family config does, and the epoch's loss
summed on the device; dlbook runs with its default callbacks and W&B (offline). Random text in the real file
formats (a text file; PTB's three word files), since only the sizes matter. The first window of each run is a
warm-up and is not timed; runs alternate, and the median over repeats is reported.

    python scripts/bench/language_model.py                       # both models, CPU
    python scripts/bench/language_model.py --models word_lm --repeats 5 --accelerator gpu
"""

import argparse
import os
import statistics
import time
from contextlib import nullcontext

import numpy as np
from common import scratch_dir, synchronize
from iteration_timer import timed_train

MODELS = {"char_rnn": "text_chars", "word_lm": "ptb"}
DATA_OVERRIDES = {"text_chars": ["data.val_fraction=0", "data.test_fraction=0"], "ptb": []}  # every token trains


def write_random_text(data_dir, characters: int, words: int, seed: int = 0) -> None:
    """tinyshakespeare/input.txt of random letters, and PTB's files of random words from a 10,000-word vocabulary."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz ,.\n"))
    (data_dir / "tinyshakespeare").mkdir(parents=True, exist_ok=True)
    (data_dir / "tinyshakespeare" / "input.txt").write_text("".join(rng.choice(letters, characters)))
    (data_dir / "PTB").mkdir(parents=True, exist_ok=True)
    vocabulary = np.array(["<unk>", *(f"w{i}" for i in range(1, 10000))])
    for split, share in (("train", 1.0), ("valid", 0.1), ("test", 0.1)):
        lines = rng.choice(vocabulary, (int(words * share) // 20, 20))
        (data_dir / "PTB" / f"ptb.{split}.txt").write_text("".join(f" {' '.join(line)} \n" for line in lines))


def dlbook_epoch(model: str, data_dir, out_dir, accelerator: str, logger: str, extra: list[str]):
    overrides = [f"model={model}", f"data={MODELS[model]}", f"paths.data_dir={data_dir}", f"paths.root_dir={out_dir}",
                 f"paths.cache_dir={out_dir / 'cache'}", "trainer.max_epochs=1", "test=false",
                 "++trainer.limit_val_batches=0", "callbacks.text_samples=null", f"trainer.accelerator={accelerator}",
                 f"logger={logger}", "extras.print_config=false", *DATA_OVERRIDES[MODELS[model]], *extra]
    objects, timer = timed_train(overrides, out_dir / f"dlbook-{model}-{time.monotonic_ns()}")
    windows = objects["datamodule"].data_train
    return windows, objects["model"], timer.rate * windows.rows.shape[0] * windows.length


def plain_epoch(windows, task, accelerator: str, carry_state: bool = True, bf16: bool = False) -> float:
    """Tokens/s of the loop a careful PyTorch user writes: each window a slice of the streams, the state carried
    and detached (or, without `carry_state`, each window read afresh), the loss summed on the device; `bf16` in
    bfloat16 autocast. The net is the dlbook run's."""
    import torch

    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    net = task.net.to(device)
    rows = windows.rows.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    loss_sum, state = torch.zeros((), device=device), None
    net.train()
    for index in range(len(windows)):
        if index == 1:  # the first window warms up
            synchronize(device)
            start = time.perf_counter()
        window = rows[:, index * windows.length:(index + 1) * windows.length + 1]
        inputs, targets = window[:, :-1], window[:, 1:]
        with autocast:
            logits, state = net(inputs, state if carry_state else None)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        state = tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        loss_sum += loss.detach()
    _ = loss_sum.item()  # the epoch's one host read
    synchronize(device)
    return (len(windows) - 1) * rows.shape[0] * windows.length / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--characters", type=int, default=200_000, help="length of the character text")
    parser.add_argument("--words", type=int, default=100_000, help="words in the PTB-format training file")
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--logger", default="wandb", help="logger= choice of the dlbook runs")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for the dlbook runs")
    args = parser.parse_args()

    os.environ.setdefault("WANDB_MODE", "offline")
    work = scratch_dir()
    write_random_text(work / "data", args.characters, args.words)
    print(f"{'model':<10} {'plain tokens/s':>15} {'dlbook tokens/s':>16} {'ratio':>7}")
    for model in args.models:
        dlbook, plain = [], []
        for _ in range(args.repeats):
            windows, task, rate = dlbook_epoch(model, work / "data", work, args.accelerator, args.logger,
                                               args.overrides)
            dlbook.append(rate)
            plain.append(plain_epoch(windows, task, args.accelerator))
        ours, theirs = statistics.median(dlbook), statistics.median(plain)
        print(f"{model:<10} {theirs:>15.1f} {ours:>16.1f} {ours / theirs:>7.3f}  (dlbook / plain)", flush=True)


if __name__ == "__main__":
    main()
