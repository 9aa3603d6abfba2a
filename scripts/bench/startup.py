"""Fixed costs: what a run spends outside training, against baselines measured in the same run.

1. Wall time of `train.py --help`, of `train.py debug=fast` up to its first training step and of the whole
   `debug=fast` run (fit, test pass, metrics.json, exit), against the bare `import torch, lightning`.
2. One epoch of the 784-512-256-128 MLP on random MNIST-format data (no validation split, test pass on),
   `train.py` with logger=csv and with logger=wandb (offline) against plain_mnist.py, a plain PyTorch script
   doing the same: the wall time and the CPU time (the process and its children, e.g. W&B's service) spent outside
   training, which is everything before the first training batch starts and after the last one ends.

Each command runs in a fresh interpreter with `--threads` torch threads; the commands alternate and the median of
the repeats is shown.

    python scripts/bench/startup.py [--repeats 5] [--threads 1] [--images 60000]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import scratch_dir, write_random_mnist

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(args: list[str], threads: int) -> dict[str, float]:
    """Wall and CPU seconds of a command (CPU: it and the children it waited for); with the TRAINING line that
    plain_mnist.py and first_step.TrainingSpan print, also the wall seconds spent training and the wall and CPU
    seconds spent outside training; with FIRST_STEP_AT, only the wall seconds to the first step."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "WANDB_MODE": "offline",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cpu, start = children_cpu(), time.time()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    times = {"wall": time.time() - start, "cpu": children_cpu() - cpu}
    for line in result.stdout.splitlines():
        if line.startswith("FIRST_STEP_AT "):
            return {"wall": float(line.split()[1]) - start}
        if line.startswith("TRAINING "):
            wall_start, cpu_start, wall_end, cpu_end = map(float, line.split()[1:])
            times.update(train_wall=wall_end - wall_start, outside_wall=times["wall"] - (wall_end - wall_start),
                         outside_cpu=times["cpu"] - (cpu_end - cpu_start))
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return times


def medians(commands: dict[str, list[str]], repeats: int, threads: int) -> dict[str, dict[str, float]]:
    runs = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            runs[name].append(measure(command, threads))
    return {name: {key: statistics.median(run[key] for run in results) for key in results[0]}
            for name, results in runs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every command")
    parser.add_argument("--images", type=int, default=60000, help="training images of the MNIST runs")
    args = parser.parse_args()

    work = scratch_dir()
    data_dir = write_random_mnist(work / "data", n_train=args.images)
    paths = [f"paths.root_dir={work}", f"paths.data_dir={data_dir}"]
    fast = ["train.py", "debug=fast", *paths]
    startup = medians({
        "import torch, lightning": ["-c", "import torch, lightning"],
        "train.py --help": ["train.py", "--help"],
        "train.py debug=fast, to step 1": [*fast, "extras.print_config=false",
                                           "+callbacks.first_step._target_=first_step.ExitAtFirstStep"],
        "train.py debug=fast, whole run": fast,
    }, args.repeats, args.threads)
    bare = startup["import torch, lightning"]["wall"]
    print(f"Startup, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'command':<34} {'seconds':>8} {'vs bare import':>15}")
    for name, times in startup.items():
        print(f"{name:<34} {times['wall']:>8.2f} {times['wall'] / bare:>14.2f}x")

    dlbook = ["train.py", "data=mnist", "data.download=false", "data.val_fraction=0", "trainer.max_epochs=1", *paths,
              "+callbacks.training_span._target_=first_step.TrainingSpan"]
    runs = medians({
        "plain script": [str(HERE / "plain_mnist.py"), str(data_dir), str(work / "plain")],
        "train.py logger=csv": [*dlbook, "logger=csv"],
        "train.py logger=wandb (offline)": [*dlbook, "logger=wandb"],
    }, args.repeats, args.threads)
    plain = runs["plain script"]
    print(f"\nOne epoch of the MNIST MLP, {args.images} random images, {args.threads} thread(s), median of "
          f"{args.repeats}; outside = the whole command less its training batches")
    print(f"{'command':<32} {'wall':>6} {'training':>9} {'outside':>8} {'CPU outside':>12} {'vs plain':>9}")
    for name, times in runs.items():
        print(f"{name:<32} {times['wall']:>6.2f} {times['train_wall']:>9.2f} {times['outside_wall']:>8.2f} "
              f"{times['outside_cpu']:>12.2f} {times['outside_cpu'] / plain['outside_cpu']:>8.2f}x")
    csv, wandb = runs["train.py logger=csv"], runs["train.py logger=wandb (offline)"]
    print(f"W&B offline adds {wandb['outside_wall'] - csv['outside_wall']:.2f} s of wall time and "
          f"{wandb['outside_cpu'] - csv['outside_cpu']:.2f} s of CPU outside training")


if __name__ == "__main__":
    main()
