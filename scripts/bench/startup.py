"""Startup: wall time of `train.py --help` and of `train.py debug=fast` up to its first training step, against
the bare `import torch, lightning`. Each command runs in a fresh interpreter; the median of the repeats is shown.

    python scripts/bench/startup.py [--repeats 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def wall_time(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "WANDB_MODE": "offline"}
    start = time.time()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    end = time.time()
    for line in result.stdout.splitlines():
        if line.startswith("FIRST_STEP_AT "):
            return float(line.split()[1]) - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return end - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    commands = {
        "import torch, lightning": ["-c", "import torch, lightning"],
        "train.py --help": ["train.py", "--help"],
        "train.py debug=fast, to step 1": ["train.py", "debug=fast", "extras.print_config=false",
                                           "+callbacks.first_step._target_=first_step.ExitAtFirstStep"],
    }
    times = {name: statistics.median(wall_time(command) for _ in range(args.repeats))
             for name, command in commands.items()}
    bare = times["import torch, lightning"]
    print(f"{'command':<34} {'seconds':>8} {'vs bare import':>15}")
    for name, seconds in times.items():
        print(f"{name:<34} {seconds:>8.2f} {seconds / bare:>14.2f}x")


if __name__ == "__main__":
    main()
