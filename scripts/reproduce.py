"""Run experiments and write the results ledger: RESULTS.md, the books' numbers beside dlbook's, and results.json.

  python scripts/reproduce.py softmax_mnist lenet5_mnist      # by name
  python scripts/reproduce.py '*_mnist' --dry-run             # a glob; --dry-run lists what would run
  python scripts/reproduce.py --family classification         # every experiment of a family
  python scripts/reproduce.py cnn_mnist trainer.max_epochs=1  # Hydra overrides pass through; the row says so
  python scripts/reproduce.py capsnet_mnist_tf1 --resume      # continue a run that was stopped

Each experiment runs as `train.py experiment=<name> logger=csv run_dir=outputs/reproduce/<name>/<time>`; its
metrics.json gives dlbook's number and its `book_result` block (conf/experiment/<name>.yaml) the book's: one
block, or a list of them for several numbers of one run (one ledger row each). A `seeds:` list in the (first)
block reruns the experiment with each seed and shows the spread beside the value, for book numbers that rest on
an unseeded draw. Rows of experiments not run this time are kept from results.json.

With --resume, an experiment's newest run with the same overrides is not started again: if it completed, its
metrics.json is read; if it stopped before the end (killed, preempted, the machine shut down) and left
checkpoints/last.ckpt, it continues from there (`ckpt_path=auto`). Its run time is the sum of its segments, a
segment cut off counted until the last file it wrote (each run dir's reproduce.json keeps them).

Ctrl-C or SIGTERM stops the batch without losing the running experiment's work: the run saves last.ckpt at its
next batch boundary (Ctrl-C reaches it from the terminal, SIGTERM is passed on), reproduce.py waits for it, leaves
that experiment's ledger row as it was, and prints the command that continues.
"""

import argparse
import fnmatch
import json
import math
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from dlbook.utils.config import config_dir  # noqa: E402  (after the path is set)
from dlbook.utils.entry import COMPLETED, write_whole  # noqa: E402

FAILED, NO_METRIC = "failed", "no metric"
DATASET_MISSING = re.compile(r"Dataset '.+' is not in ")  # the message of dlbook's DatasetNotFoundError
ERROR_LINE = re.compile(r"\[ERROR\] - (.*)")  # a DlbookError as train.log records it
EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupt)\b.*")  # the last line of a traceback
RUN_RECORD = "reproduce.json"  # in each run dir: its overrides, and when each segment started and how long it took
TIME_FORMAT = "%Y-%m-%d_%H-%M-%S"  # run dirs are named by their start, then the seed's suffix
OWN_KEYS = ("experiment", "logger", "run_dir", "ckpt_path")  # the keys the script sets in train.py's command


def experiment_names() -> list[str]:
    return sorted(path.stem for path in (Path(config_dir()) / "experiment").glob("*.yaml"))


def book_results(name: str) -> list[tuple[str, dict]]:
    """The experiment's `book_result` block, or each block of its list (several numbers from one run, e.g. a
    fitted weight and bias), read from its file (a top-level key of a `_global_` package), with its row key in
    results.json: the experiment's name for the first, `<name>:<metric>` for the others."""
    blocks = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "experiment" / f"{name}.yaml")["book_result"])
    blocks = blocks if isinstance(blocks, list) else [blocks]
    return [(name if index == 0 else f"{name}:{block['metric']}", block) for index, block in enumerate(blocks)]


def book_result(name: str) -> dict:
    """The experiment's first (or only) book result."""
    return book_results(name)[0][1]


def row_keys() -> list[str]:
    return [key for name in experiment_names() for key, _ in book_results(name)]


def select(patterns: list[str], family: str | None, parser: argparse.ArgumentParser) -> list[str]:
    names = experiment_names()
    chosen = []
    for pattern in patterns:
        matches = fnmatch.filter(names, pattern)
        if not matches:
            parser.error(f"no experiment matches '{pattern}'. Choices: {', '.join(names)}")
        chosen += [name for name in matches if name not in chosen]
    if not patterns:
        chosen = names
    if family:
        chosen = [name for name in chosen if family_of(compose(name)) == family]
        if not chosen:  # else the batch would run nothing and exit 0 as if it had written the ledger
            members = [name for name in names if family_of(compose(name)) == family]
            parser.error(f"no experiment matching {', '.join(repr(pattern) for pattern in patterns)} is of family "
                         f"'{family}'. Its experiments: {', '.join(members) or 'none'}")
    return chosen


def compose(name: str, overrides: tuple[str, ...] = ()):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        initialize_config_dir(config_dir(), version_base="1.3")  # called, not entered: once for every compose
    return hydra_compose("train", overrides=[f"experiment={name}", *overrides])


def family_of(cfg) -> str | None:
    """The `family` key its model's conf/family/ file sets."""
    return cfg.get("family")


def families() -> list[str]:
    return sorted({OmegaConf.load(path).get("family") for path in (Path(config_dir()) / "family").glob("*.yaml")}
                  - {None})


def machine() -> str:
    """CPU model, core count and the CPU threads torch uses (the runs inherit them), and the GPUs torch sees."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    threads = torch.get_num_threads()
    description = f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' if threads > 1 else ''}"
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        description += f"; {torch.cuda.get_device_name(0)}" + (f" x{count}" if count > 1 else "")
    return description


def torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


def failure_message(run_dir: Path, stderr: str) -> str:
    """What a failed run said: a DlbookError's one paragraph from train.log, else the end of its traceback; the
    data folder of the machine that ran it written as <data_dir>, since the ledger is published."""
    log_file = run_dir / "train.log"
    errors = ERROR_LINE.findall(log_file.read_text()) if log_file.exists() else []
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    exceptions = [line for line in lines if EXCEPTION_LINE.match(line)]
    message = errors[-1].strip() if errors else (exceptions or lines or ["no error output"])[-1]
    data_dir = Path(os.environ.get("DLBOOK_DATA_DIR") or "data").expanduser().resolve()  # default: ./data
    return message.replace(str(data_dir), "<data_dir>")


class StopRequest:
    """Ctrl-C and SIGTERM while a run trains: the run is left to save last.ckpt at its next batch boundary and
    end, and no experiment starts after it. (subprocess.run would kill it a quarter of a second after a Ctrl-C,
    before it saved anything; a SIGTERM to this process alone would leave it training on, orphaned.)"""

    def __init__(self):
        self.signum: int | None = None

    def train(self, command: list[str], stderr) -> int:
        """Run train.py to its end, passing SIGTERM on; its exit status."""
        child = subprocess.Popen(command, stderr=stderr)

        def stop(signum, frame):
            self.signum = self.signum or signum
            if signum != signal.SIGINT:  # a terminal's Ctrl-C reaches the child itself; a second stops it at once
                child.send_signal(signum)

        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            return child.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class Stopped(Exception):
    """A stop request ended a run before it completed."""

    def __init__(self, run_dir: Path):
        super().__init__(run_dir)
        self.run_dir = run_dir


STOP = StopRequest()


def run_experiment(name: str, overrides: list[str], runs_dir: Path, resume: bool = False) -> dict[str, dict]:
    """Train one experiment in a subprocess, and again for each `seeds` entry of its first book result (where the
    book's number rests on an unseeded draw); its rows for results.json, one per book result. A number only ever
    comes from a run's metrics.json."""
    run, metrics = run_once(name, overrides, runs_dir, resume=resume)
    seeds = book_result(name).get("seeds") or []
    seeded = [run_once(name, [*overrides, f"seed={seed}"], runs_dir, suffix=f"_seed{seed}", resume=resume)[1]
              for seed in (seeds if run["status"] == COMPLETED else [])]
    rows = {}
    for key, block in book_results(name):
        row = {**run, "value": None, "metric": block["metric"]}
        value = metrics.get(block["metric"])
        if isinstance(value, (int, float)) and math.isfinite(value):
            row["value"] = value
        elif row["status"] == COMPLETED:
            row.update(status=NO_METRIC, error=f"metrics.json has no finite {block['metric']} (it has: "
                                               f"{', '.join(sorted(key for key in metrics if '/' in key)) or 'none'})")
        values = [run_metrics[block["metric"]] for run_metrics in seeded
                  if isinstance(run_metrics.get(block["metric"]), (int, float))]
        if values:
            mean = sum(values) / len(values)
            std = math.sqrt(sum((value - mean) ** 2 for value in values) / max(len(values) - 1, 1))
            row["spread"] = {"seeds": list(seeds), "runs": len(values), "min": min(values), "max": max(values),
                             "mean": mean, "std": std}
        rows[key] = row
    return rows


def completed(run_dir: Path) -> bool:
    summary = run_dir / "metrics.json"
    return summary.exists() and json.loads(summary.read_text()).get("status") == COMPLETED


def read_record(path: Path) -> dict:
    """A run dir's reproduce.json; ValueError when it is unreadable."""
    record = json.loads(path.read_text())  # a JSONDecodeError is a ValueError
    if not (isinstance(record, dict) and isinstance(record.get("overrides"), list)
            and isinstance(record.get("segments"), list)):
        raise ValueError("not an object with an 'overrides' and a 'segments' list")
    return record


def resumable_run(experiment_dir: Path, suffix: str, overrides: list[str]) -> Path | None:
    """The newest run in experiment_dir (of this seed suffix) started with these overrides, if it completed or
    left a checkpoint to continue from."""
    name = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d" + re.escape(suffix) + "$")
    runs = sorted(path for path in experiment_dir.glob("*")
                  if name.match(path.name) and (path / RUN_RECORD).exists()
                  and read_record(path / RUN_RECORD)["overrides"] == overrides)
    if runs and (completed(runs[-1]) or (runs[-1] / "checkpoints" / "last.ckpt").exists()):
        return runs[-1]
    return None


def run_record(run_dir: Path, overrides: list[str]) -> dict:
    """The run dir's reproduce.json; a segment cut off (no seconds) counts until the newest file of the run."""
    path = run_dir / RUN_RECORD
    record = read_record(path) if path.exists() else {"overrides": overrides, "segments": []}
    for segment in record["segments"]:
        if segment["seconds"] is None:
            newest = max(file.stat().st_mtime for file in run_dir.rglob("*") if file.is_file())
            segment["seconds"] = round(max(0.0, newest - datetime.fromisoformat(segment["started"]).timestamp()), 1)
    return record


def run_once(name: str, overrides: list[str], runs_dir: Path, suffix: str = "",
             resume: bool = False) -> tuple[dict, dict]:
    """One run of the experiment: what the ledger says of it, and its metrics.json ({} when it failed). With
    `resume`, the newest run of these overrides is read if it completed, continued if it stopped."""
    configured = compose(name)  # its max_epochs: the experiment as configured
    run_dir = resumable_run(runs_dir / name, suffix, overrides) if resume else None
    if run_dir is None:
        run_dir = runs_dir / name / (datetime.now(timezone.utc).strftime(TIME_FORMAT) + suffix)
        run_dir.mkdir(parents=True, exist_ok=True)
    record = run_record(run_dir, overrides)
    returncode, stderr_text = 0, ""
    if completed(run_dir):
        print(f"[reproduce] {name}: {os.path.relpath(run_dir)} completed before, read", flush=True)
    else:
        command = [sys.executable, str(ROOT / "train.py"), f"experiment={name}", "logger=csv", f"run_dir={run_dir}",
                   *overrides, *(["ckpt_path=auto"] if record["segments"] else [])]
        print(f"[reproduce] {name}: {' '.join(command[1:])}", flush=True)
        record["segments"].append({"started": datetime.now(timezone.utc).isoformat(), "seconds": None,
                                   "machine": machine()})
        write_whole(run_dir / RUN_RECORD, json.dumps(record, indent=2) + "\n")
        clock = time.perf_counter()
        with open(run_dir / "stderr.log", "a+") as stderr:
            this_segment = stderr.tell()
            returncode = STOP.train(command, stderr)
            stderr.seek(this_segment)
            stderr_text = stderr.read()
        record["segments"][-1]["seconds"] = round(time.perf_counter() - clock, 1)
        write_whole(run_dir / RUN_RECORD, json.dumps(record, indent=2) + "\n")
        if STOP.signum is not None and not completed(run_dir):
            raise Stopped(run_dir)
    started = datetime.fromisoformat(record["segments"][0]["started"])
    # where each segment ran, as it recorded; a record from before segments kept it: this machine
    machines = "; then ".join(dict.fromkeys(segment.get("machine") or machine() for segment in record["segments"]))
    run = {"status": COMPLETED, "error": None, "run_dir": os.path.relpath(run_dir),
           "epochs": None, "max_epochs": configured.trainer.max_epochs,
           "seconds": round(sum(segment["seconds"] for segment in record["segments"]), 1),
           "segments": len(record["segments"]), "machine": machines, "torch": torch_version(),
           "date": started.strftime("%Y-%m-%d %H:%M UTC"), "overrides": overrides}
    metrics_file = run_dir / "metrics.json"
    if returncode != 0 or not metrics_file.exists():
        message = failure_message(run_dir, stderr_text) if returncode != 0 else "the run wrote no metrics.json"
        run.update(status=FAILED, error=message)
        return run, {}
    metrics = json.loads(metrics_file.read_text())
    run["epochs"] = metrics.get("epochs")
    export = book_result(name).get("export")
    if export is not None:
        export_dir = run_dir / "export"
        checkpoint = metrics.get("best_checkpoint") or run_dir / "checkpoints" / "last.ckpt"  # last: no validation
        command = [sys.executable, str(ROOT / "scripts" / "export.py"), f"ckpt_path={checkpoint}",
                   f"run_dir={export_dir}", *export]
        print(f"[reproduce] {name}: {' '.join(command[1:])}", flush=True)
        exported = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        (run_dir / "export.log").write_text(exported.stdout)
        if exported.returncode != 0:
            run.update(status=FAILED, error=f"export: {failure_message(export_dir, exported.stdout)}")
            return run, {}
        metrics.update(numbers("export", json.loads((export_dir / "model.json").read_text())))
    return run, metrics


def merge(rows: dict[str, dict], new_rows: dict[str, dict]) -> dict[str, dict]:
    """results.json's rows with a run's: a row with no value (failed, no metric) does not replace a measured one,
    which keeps its number and records the attempt as `latest_attempt`."""
    merged = dict(rows)
    for key, row in new_rows.items():
        earlier = rows.get(key)
        if row["value"] is None and earlier is not None and earlier["value"] is not None:
            merged[key] = {**earlier, "latest_attempt": {field: row[field] for field in
                                                         ("status", "error", "run_dir", "date", "overrides")}}
        else:
            merged[key] = row
    return merged


def numbers(prefix: str, report: dict) -> dict[str, float]:
    """The numbers of a JSON report, nested keys joined by "/" under prefix."""
    flat = {}
    for key, value in report.items():
        if isinstance(value, dict):
            flat.update(numbers(f"{prefix}/{key}", value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}/{key}"] = value
    return flat


def verdict(book: dict, row: dict | None) -> str:
    """beaten / matched / short, by more than the tolerance in the better direction, or within it; for a value with
    no better direction (higher_is_better null: a fitted weight, an acceptance rate), matched or differs."""
    if row is None:
        return "not run"
    if row["status"] == FAILED:
        return "failed (dataset missing)" if DATASET_MISSING.search(row["error"] or "") else "failed"
    if row["value"] is None:
        return "no value"
    if book.get("value") is None:
        return "no book number"
    tolerance = book.get("tolerance") or 0.0
    if book.get("higher_is_better") is None:
        return f"matched (±{tolerance:g})" if abs(row["value"] - book["value"]) <= tolerance else "differs"
    gain = (row["value"] - book["value"]) * (1 if book["higher_is_better"] else -1)
    if gain > tolerance:
        return "beaten"
    return f"matched (±{tolerance:g})" if gain >= -tolerance else "short"


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


def number(value: float, book_value: float | None) -> str:
    """dlbook's value to 4 decimals, or to as many as the book prints (a gradient check's 6.000000000012662); a
    count, as a count."""
    if isinstance(book_value, int) and float(value).is_integer():
        return f"{int(value)}"
    decimals = len(repr(book_value).split(".")[1]) if isinstance(book_value, float) and "e" not in repr(book_value) else 0
    return f"{value:.{max(4, decimals)}f}"


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def ledger(rows: dict[str, dict]) -> str:
    """RESULTS.md: one row per experiment of conf/experiment, then the book's notes and the runs' errors."""
    lines = ["# Results ledger", "",
             "Generated by `scripts/reproduce.py` from `results.json` and the `book_result` blocks of "
             "`conf/experiment/*.yaml`; do not edit it by hand, rerun the script. dlbook's numbers are read from "
             "each run's `metrics.json`. Verdict: *beaten* or *short* when dlbook is better or worse than the book "
             "by more than the stated tolerance, *matched* within it; *differs* when a number with no better "
             "direction (a fitted weight, an acceptance rate) lies outside it. A † marks a run with overrides: not "
             "the experiment as configured, so not a reproduction.", "",
             "| experiment | book, chapter | dataset | metric | book | dlbook | verdict | epochs | run time | "
             "machine | torch | date | overrides |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name in experiment_names():
        for key, book in book_results(name):
            row = rows.get(key)
            direction = {True: "higher is better", False: "lower is better", None: "to match"}[
                book.get("higher_is_better")]
            book_value = "—" if book.get("value") is None else str(book["value"])
            columns = [f"`{name}`", cell(f"{book['book']}, {book['chapter']}"), book["dataset"],
                       f"`{book['metric']}` ({direction})", book_value]
            if row is None:
                columns += ["—", "not run"] + [""] * 6
            else:
                value = "—" if row["value"] is None else number(row["value"], book.get("value"))
                spread = row.get("spread")
                if spread:
                    value += (f" (over {spread['runs']} other seeds: {number(spread['min'], book.get('value'))} to "
                              f"{number(spread['max'], book.get('value'))}, mean {spread['mean']:.4f} ± "
                              f"{spread['std']:.4f})")
                mark = " †" if row["overrides"] else ""
                epochs = "—" if row["epochs"] is None else (
                    f"{row['epochs']}" if row["epochs"] == row["max_epochs"]
                    else f"{row['epochs']} of {row['max_epochs']}")
                overrides = " ".join(f"`{override}`" for override in row["overrides"]) or "none"
                run_time = duration(row["seconds"]) + (f" in {row['segments']} segments"
                                                       if row.get("segments", 1) > 1 else "")
                attempt = row.get("latest_attempt")
                columns += [value, verdict(book, row) + mark + (f"; latest attempt {attempt['status']}, see notes"
                                                                if attempt else ""), epochs, run_time,
                            cell(row["machine"]), row["torch"], row["date"], cell(overrides)]
            lines.append("| " + " | ".join(columns) + " |")
            notes.append(f"- `{name}`" + (f" (`{book['metric']}`)" if key != name else "") + f": {book['note']}")
            if row and row["error"]:
                notes.append(f"  Run {row['status']}: {row['error']}")
            if row and row.get("latest_attempt"):
                attempt = row["latest_attempt"]
                overrides = " ".join(f"`{override}`" for override in attempt["overrides"]) or "no overrides"
                notes.append(f"  Latest attempt ({attempt['date']}, {cell(overrides)}, {attempt['run_dir']}) "
                             f"{attempt['status']}, the number above kept: {cell(attempt['error'])}")
    return "\n".join([*lines, "", "## Notes", "", *notes, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", metavar="EXPERIMENT|OVERRIDE",
                        help="experiment names or globs; key=value arguments are Hydra overrides for every run")
    parser.add_argument("--family", choices=families(), help="only experiments of this family")
    parser.add_argument("--dry-run", action="store_true", help="list the experiments and commands, run nothing")
    parser.add_argument("--resume", action="store_true",
                        help="read each experiment's newest run with these overrides if it completed, continue it "
                             "from its last checkpoint if it stopped, instead of starting a new one")
    parser.add_argument("--results", type=Path, default=ROOT / "RESULTS.md",
                        help="the ledger to write; results.json is kept beside it (default: RESULTS.md here)")
    parser.add_argument("--runs-dir", type=Path, default=Path("outputs") / "reproduce",
                        help="where the runs go, one folder per experiment (default: outputs/reproduce)")
    args = parser.parse_intermixed_args(argv)  # overrides may follow options
    overrides = [item for item in args.items if "=" in item]
    patterns = [item for item in args.items if "=" not in item]
    if not patterns and not args.family:
        parser.error(f"name experiments, a glob or a --family. Choices: {', '.join(experiment_names())}")
    own = [override for override in overrides if override.split("=", 1)[0].lstrip("+~") in OWN_KEYS]
    if own:  # the run would write, or start, elsewhere than where the script reads it
        parser.error(f"{' '.join(own)}: reproduce.py sets {', '.join(OWN_KEYS)} itself; use --runs-dir for "
                     f"where the runs go and --resume to continue one")
    results = args.results
    existing = next(parent for parent in results.resolve().parents if parent.exists())
    if results.suffix != ".md" or results.is_dir() or not existing.is_dir():  # not results.json, kept beside it
        parser.error(f"--results {results}: the ledger is a Markdown file, e.g. RESULTS.md, in a folder that "
                     f"exists or can be made (results.json is written beside it)")
    names = select(patterns, args.family, parser)
    if args.resume:  # the run a broken record belongs to may be the one to continue: refuse rather than guess
        for path in sorted(path for name in names for path in (args.runs_dir / name).glob(f"*/{RUN_RECORD}")):
            try:
                read_record(path)
            except ValueError as error:
                parser.error(f"--resume: {path} is unreadable ({error}), so whether its run is the one to "
                             f"continue is unknown. Repair it, or delete it to leave that run folder alone")
    for name in names:  # a bad override fails here, before any run
        try:
            compose(name, tuple(overrides))
        except Exception as error:  # Hydra's composition and override-parsing errors
            parser.error(f"experiment={name} {' '.join(overrides)}: {error}")

    if args.dry_run:
        for name in names:
            cfg = compose(name, tuple(overrides))
            book = book_result(name)
            print(f"{name} ({cfg.trainer.max_epochs} epochs): {book['metric']} "
                  f"{'no book number' if book.get('value') is None else book['value']}; "
                  f"train.py experiment={name} logger=csv run_dir={args.runs_dir / name}/<time> {' '.join(overrides)}")
        return 0

    store = args.results.with_name("results.json")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        if STOP.signum is not None:
            print(f"[reproduce] stopped by {signal.Signals(STOP.signum).name}: {name} and those after it not run")
            break
        try:
            new_rows = run_experiment(name, overrides, args.runs_dir, resume=args.resume)
        except Stopped as stopped:
            argv = sys.argv[1:] if argv is None else argv
            last = stopped.run_dir / "checkpoints" / "last.ckpt"
            kept = (f"kept its newest state in {os.path.relpath(last)}" if last.exists()
                    else f"stopped before its first checkpoint ({os.path.relpath(stopped.run_dir)})")
            print(f"[reproduce] stopped by {signal.Signals(STOP.signum).name}: {name}'s run {kept}; its ledger row "
                  f"is as it was. Continue with: "
                  f"python scripts/reproduce.py {shlex.join([*argv, *([] if args.resume else ['--resume'])])}",
                  flush=True)
            return 128 + STOP.signum
        rows = json.loads(store.read_text()) if store.exists() else {}  # re-read: another batch may have written
        rows = merge(rows, new_rows)
        rows = {key: rows[key] for key in sorted(rows) if key in row_keys()}
        write_whole(store, json.dumps(rows, indent=2) + "\n")  # after each run, so a stopped batch keeps its rows
        write_whole(args.results, ledger(rows))
        books = dict(book_results(name))
        for key, row in new_rows.items():
            print(f"[reproduce] {key}: {verdict(books[key], row)}" + (f": {row['error']}" if row["error"] else ""),
                  flush=True)
    print(f"[reproduce] wrote {args.results} and {store}")
    return 128 + STOP.signum if STOP.signum is not None else 0


if __name__ == "__main__":
    sys.exit(main())
