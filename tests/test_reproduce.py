"""scripts/reproduce.py and the results ledger: the book_result blocks, the verdicts, and real runs whose numbers
must reach RESULTS.md unchanged (tiny runs: the bundled digits, one epoch)."""

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce.py"
EXPERIMENTS = sorted((ROOT / "conf" / "experiment").glob("*.yaml"))
TINY = ["data=digits", "trainer.max_epochs=1", "extras.print_config=false", "++trainer.enable_progress_bar=false"]

spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def run_reproduce(tmp_path: Path, *args: str, threads: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBOOK_DATA_DIR": str(tmp_path / "data"), "HYDRA_FULL_ERROR": "0",
           "OMP_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--results", str(tmp_path / "RESULTS.md"),
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def ledger_rows(text: str) -> dict[str, dict[str, str]]:
    """The table of RESULTS.md as {experiment: {column: cell}}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = lambda line: [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]  # noqa: E731
    header = split(lines[0])
    rows = [dict(zip(header, split(line))) for line in lines[2:]]
    return {row["experiment"].strip("`"): row for row in rows}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A run that completes (softmax_mnist on the digits), then one that fails (no MNIST in the data dir)."""
    tmp_path = tmp_path_factory.mktemp("reproduce")
    for args in (["softmax_mnist", *TINY], ["lenet5_mnist", "data.download=false"]):
        result = run_reproduce(tmp_path, *args)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp_path


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[path.stem for path in EXPERIMENTS])
def test_every_experiment_states_its_book_result(path):
    blocks = OmegaConf.to_container(OmegaConf.load(path)).get("book_result")
    assert isinstance(blocks, (dict, list)) and blocks, f"{path.name} has no book_result block"
    blocks = blocks if isinstance(blocks, list) else [blocks]
    assert len({block["metric"] for block in blocks}) == len(blocks), "one row per metric"
    for block in blocks:
        for key in ("book", "chapter", "dataset", "metric", "note"):
            assert isinstance(block.get(key), str) and block[key].strip(), f"{path.name}: book_result.{key}"
        # true or false, or null for a number with no better direction (a fitted weight), stated either way
        assert "higher_is_better" in block and block["higher_is_better"] in (True, False, None)
        assert "/" in block["metric"], "a key of the run's metrics.json, e.g. test/acc"
        value = block.get("value", "missing")
        assert value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        tolerance = block.get("tolerance")
        assert tolerance is None or (isinstance(tolerance, (int, float)) and tolerance >= 0)
        if value is not None:
            assert tolerance is not None, "a book number comes with the tolerance it is matched within"
    assert all(isinstance(seed, int) for seed in blocks[0].get("seeds", []))


def test_values_show_as_many_decimals_as_the_book_prints():
    assert reproduce.number(6.000000000012662, 6.000000000012662) == "6.000000000012662"
    assert reproduce.number(0.92519, 0.9105) == "0.9252"
    assert reproduce.number(3.0, 3) == "3"  # a count (the elbow's k, a parameter count) as a count
    assert reproduce.number(3.5, 3) == "3.5000"


def test_the_block_survives_composition():
    cfg = reproduce.compose("mlp_small_mnist")
    assert cfg.book_result.value == 0.9718 and cfg.book_result.metric == "test/acc"


@pytest.mark.parametrize("value, higher_is_better, expected", [
    (0.95, True, "beaten"), (0.9118, True, "matched (±0.005)"), (0.9056, True, "matched (±0.005)"),
    (0.90, True, "short"), (0.90, False, "beaten"), (0.92, False, "short"),
])
def test_verdict_respects_direction_and_tolerance(value, higher_is_better, expected):
    book = {"value": 0.9105, "higher_is_better": higher_is_better, "tolerance": 0.005}
    assert reproduce.verdict(book, {"status": "completed", "value": value, "error": None}) == expected


@pytest.mark.parametrize("value, expected", [(0.9118, "matched (±0.005)"), (0.90, "differs"), (0.95, "differs")])
def test_a_value_with_no_better_direction_matches_or_differs(value, expected):
    book = {"value": 0.9105, "higher_is_better": None, "tolerance": 0.005}
    assert reproduce.verdict(book, {"status": "completed", "value": value, "error": None}) == expected


def test_verdict_without_a_book_number_or_a_run():
    book = {"value": None, "higher_is_better": False, "tolerance": None}
    assert reproduce.verdict(book, {"status": "completed", "value": 12.5, "error": None}) == "no book number"
    assert reproduce.verdict(book, None) == "not run"
    missing = "Dataset 'mnist' is not in data and data.download=false. Missing: ..."
    assert reproduce.verdict(book, {"status": "failed", "value": None, "error": missing}) == "failed (dataset missing)"


def test_ledger_shows_the_number_of_metrics_json(ledger):
    rows = json.loads((ledger / "results.json").read_text())
    run_dir = ledger / rows["softmax_mnist"]["run_dir"]
    accuracy = json.loads((run_dir / "metrics.json").read_text())["test/acc"]
    assert rows["softmax_mnist"]["value"] == accuracy
    row = ledger_rows((ledger / "RESULTS.md").read_text())["softmax_mnist"]
    assert row["dlbook"] == f"{accuracy:.4f}" and row["book"] == "0.9105"
    assert row["verdict"].endswith("†") and "`data=digits`" in row["overrides"]  # not the experiment as configured
    assert row["epochs"] == "1 of 1000" and "cores" in row["machine"] and row["torch"]


def test_failed_run_gets_no_number_and_other_rows_are_kept(ledger):
    rows = json.loads((ledger / "results.json").read_text())
    assert rows["lenet5_mnist"]["status"] == "failed" and rows["lenet5_mnist"]["value"] is None
    assert "Dataset 'mnist' is not in" in rows["lenet5_mnist"]["error"]
    text = (ledger / "RESULTS.md").read_text()
    table = ledger_rows(text)
    assert table["lenet5_mnist"]["dlbook"] == "—" and table["lenet5_mnist"]["verdict"] == "failed (dataset missing) †"
    assert "Run failed: Dataset 'mnist' is not in" in text
    assert table["softmax_mnist"]["dlbook"] != "—"  # from the earlier call, kept
    assert all(row["verdict"] == "not run" and row["dlbook"] == "—" for name, row in table.items()
               if name not in ("softmax_mnist", "lenet5_mnist"))


def test_a_failure_names_the_data_folder_without_this_machines_path(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_DIR", str(tmp_path / "datasets"))
    (tmp_path / "train.log").write_text(f"[2026-01-01 00:00:00,000][dlbook][ERROR] - Dataset 'mnist' is not in "
                                        f"{tmp_path / 'datasets'}. Expected layout: {tmp_path / 'datasets'}/MNIST/raw\n")
    assert reproduce.failure_message(tmp_path, "") == ("Dataset 'mnist' is not in <data_dir>. Expected layout: "
                                                       "<data_dir>/MNIST/raw")


def test_unknown_experiment_lists_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(["softmax_mnits"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "no experiment matches 'softmax_mnits'" in message and "softmax_mnist" in message and "lenet5_mnist" in message


def test_bad_override_stops_before_any_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["softmax_mnist", "trainer.max_epoch=1", "--results", str(tmp_path / "RESULTS.md")])
    assert "trainer.max_epoch" in capsys.readouterr().err and not (tmp_path / "RESULTS.md").exists()


def test_dry_run_lists_globbed_experiments_and_runs_nothing(tmp_path, capsys):
    assert reproduce.main(["mlp*_mnist", "--dry-run", "trainer.max_epochs=2", "--results",
                           str(tmp_path / "RESULTS.md")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["mlp_mnist", "mlp_small_mnist"]
    assert all("(2 epochs)" in line and "trainer.max_epochs=2" in line for line in lines)
    assert not (tmp_path / "RESULTS.md").exists()


def test_family_follows_the_model_task():
    parser = reproduce.argparse.ArgumentParser()
    names = ["cnn_mnist", "cifar10_speedrun", "infogan_mnist", "stackgan_cifar10", "cyclegan_edges2handbags"]
    assert reproduce.select(names, "classification", parser) == ["cnn_mnist", "cifar10_speedrun"]
    assert reproduce.select(names, "gan", parser) == ["infogan_mnist", "stackgan_cifar10", "cyclegan_edges2handbags"]


@pytest.mark.slow  # forty seconds: a run, then its export
def test_an_export_block_measures_the_exported_files(tmp_path):
    result = run_reproduce(tmp_path, "cnn_mnist_int8_tf1", "data=digits", "trainer.max_steps=2",
                           "extras.print_config=false", "++trainer.enable_progress_bar=false")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads((tmp_path / "results.json").read_text())
    export = tmp_path / rows["cnn_mnist_int8_tf1"]["run_dir"] / "export"
    sizes = {name: (export / name).stat().st_size for name in ("model.pt", "model_int8.pt")}
    assert rows["cnn_mnist_int8_tf1"]["value"] == sizes["model_int8.pt"] / sizes["model.pt"]
    report = json.loads((export / "model.json").read_text())["quantized"]
    assert rows["cnn_mnist_int8_tf1:export/quantized/latency_ratio"]["value"] == report["latency_ratio"] > 0


def fake_run(experiment_dir: Path, name: str, overrides: list[str], checkpoint: bool = True,
             completed: bool = False) -> Path:
    run_dir = experiment_dir / name
    (run_dir / "checkpoints").mkdir(parents=True)
    record = {"overrides": overrides, "segments": [{"started": "2026-01-01T00:00:00+00:00", "seconds": 60.0}]}
    (run_dir / reproduce.RUN_RECORD).write_text(json.dumps(record))
    if checkpoint:
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    if completed:
        (run_dir / "metrics.json").write_text(json.dumps({"status": "completed"}))
    return run_dir


def test_resume_takes_the_newest_run_of_the_same_overrides_and_seed(tmp_path):
    fake_run(tmp_path, "2026-01-01_00-00-00", [])
    newest = fake_run(tmp_path, "2026-01-02_00-00-00", [])
    fake_run(tmp_path, "2026-01-03_00-00-00", ["trainer.max_epochs=1"])
    seeded = fake_run(tmp_path, "2026-01-04_00-00-00_seed1", [])
    assert reproduce.resumable_run(tmp_path, "", []) == newest
    assert reproduce.resumable_run(tmp_path, "_seed1", []) == seeded
    assert reproduce.resumable_run(tmp_path, "_seed2", []) is None
    fake_run(tmp_path, "2026-01-05_00-00-00", [], checkpoint=False)  # stopped before any checkpoint: start anew
    assert reproduce.resumable_run(tmp_path, "", []) is None
    done = fake_run(tmp_path, "2026-01-06_00-00-00", [], checkpoint=False, completed=True)
    assert reproduce.resumable_run(tmp_path, "", []) == done


def test_a_segment_cut_off_counts_until_the_last_file_it_wrote(tmp_path):
    run_dir = fake_run(tmp_path, "2026-01-01_00-00-00", [])
    record = json.loads((run_dir / reproduce.RUN_RECORD).read_text())
    started = reproduce.datetime.fromisoformat(record["segments"][0]["started"]).timestamp()
    record["segments"].append({"started": "2026-01-01T01:00:00+00:00", "seconds": None})
    (run_dir / reproduce.RUN_RECORD).write_text(json.dumps(record))
    for file in run_dir.rglob("*"):
        os.utime(file, (started, started))
    os.utime(run_dir / "checkpoints" / "last.ckpt", (started + 3600 + 90, started + 3600 + 90))
    segments = reproduce.run_record(run_dir, [])["segments"]
    assert [segment["seconds"] for segment in segments] == [60.0, 90.0]


@pytest.mark.slow  # three tiny runs
def test_resume_continues_a_stopped_run_and_reads_a_completed_one(tmp_path):
    assert run_reproduce(tmp_path, "softmax_mnist", *TINY).returncode == 0
    (run_dir,) = (tmp_path / "runs" / "softmax_mnist").iterdir()
    (run_dir / "metrics.json").unlink()  # as if it was stopped after its last checkpoint
    record = json.loads((run_dir / reproduce.RUN_RECORD).read_text())
    record["segments"][0]["seconds"] = None
    (run_dir / reproduce.RUN_RECORD).write_text(json.dumps(record))

    continued = run_reproduce(tmp_path, "softmax_mnist", *TINY, "--resume")
    assert continued.returncode == 0, continued.stdout[-3000:] + continued.stderr[-3000:]
    assert "ckpt_path=auto" in continued.stdout and "resumed from" in (run_dir / "train.log").read_text()
    row = json.loads((tmp_path / "results.json").read_text())["softmax_mnist"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert row["segments"] == 2 and row["value"] == metrics["test/acc"] and row["epochs"] == 1
    assert "in 2 segments" in ledger_rows((tmp_path / "RESULTS.md").read_text())["softmax_mnist"]["run time"]

    # read by a process of other threads: the row keeps the machine the run recorded
    read = run_reproduce(tmp_path, "softmax_mnist", *TINY, "--resume", threads=1)
    assert read.returncode == 0 and "completed before, read" in read.stdout
    assert list((tmp_path / "runs" / "softmax_mnist").iterdir()) == [run_dir]
    assert json.loads((tmp_path / "results.json").read_text())["softmax_mnist"] == row


@pytest.mark.parametrize("signum, whom", [
    (signal.SIGINT, "group"),  # Ctrl-C in a terminal reaches both processes
    pytest.param(signal.SIGTERM, "parent", marks=pytest.mark.slow),  # `kill <pid of reproduce.py>`
])
def test_a_stopped_batch_waits_for_the_run_to_save_and_keeps_the_ledger(tmp_path, signum, whom):
    env = {**os.environ, "DLBOOK_DATA_DIR": str(tmp_path / "data")}
    batch = subprocess.Popen([sys.executable, str(SCRIPT), "softmax_mnist", "mlp_mnist", *TINY,
                              "trainer.max_epochs=100000", "--results", str(tmp_path / "RESULTS.md"),
                              "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        train_log = tmp_path / "runs" / "softmax_mnist"
        deadline = time.monotonic() + 120
        while not any("Training" in log.read_text() for log in train_log.glob("*/train.log")):
            assert batch.poll() is None and time.monotonic() < deadline, batch.communicate()[0][-3000:]
            time.sleep(0.5)
        time.sleep(1)  # a few epochs in
        if whom == "group":
            os.killpg(batch.pid, signum)
        else:
            batch.send_signal(signum)
        output = batch.communicate(timeout=120)[0]
    finally:  # nothing left training if the test fails
        with contextlib.suppress(ProcessLookupError):
            os.killpg(batch.pid, signal.SIGKILL)

    assert batch.returncode == 128 + signum, output[-3000:]
    (run_dir,) = train_log.iterdir()
    assert "Saved a checkpoint on" in (run_dir / "train.log").read_text()
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and not (run_dir / "metrics.json").exists()
    assert "Continue with: python scripts/reproduce.py softmax_mnist mlp_mnist" in output and "--resume" in output
    assert not (tmp_path / "runs" / "mlp_mnist").exists()  # no experiment starts after the stop
    assert not (tmp_path / "results.json").exists()  # the stopped run has no row
    record = json.loads((run_dir / reproduce.RUN_RECORD).read_text())
    assert record["segments"][0]["seconds"] > 0


def ledger_row(**fields) -> dict:
    """A row of results.json as run_experiment returns it: a measured one unless fields say otherwise."""
    return {"status": "completed", "error": None, "run_dir": "runs/softmax_mnist/2026-01-01_00-00-00",
            "epochs": 1, "max_epochs": 1000, "seconds": 10.0, "segments": 1, "machine": "a CPU, 1 cores",
            "torch": "2.0", "date": "2026-01-01 00:00 UTC", "overrides": [], "value": 0.9, "metric": "test/acc",
            **fields}


def test_a_failed_run_keeps_the_measured_row_and_says_it_failed(tmp_path, monkeypatch):
    measured = ledger_row()
    (tmp_path / "results.json").write_text(json.dumps({"softmax_mnist": measured}))
    failure = "data.batch_size must be positive"
    monkeypatch.setattr(reproduce, "run_experiment", lambda name, *args, **kwargs: {name: ledger_row(
        status="failed", error=failure, value=None, date="2026-02-02 00:00 UTC", overrides=["data.batch_size=0"])})
    assert reproduce.main(["softmax_mnist", "lenet5_mnist", "--results", str(tmp_path / "RESULTS.md"),
                           "--runs-dir", str(tmp_path / "runs")]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())
    assert {key: rows["softmax_mnist"][key] for key in measured} == measured  # the number and its run, kept
    assert rows["softmax_mnist"]["latest_attempt"]["error"] == failure
    assert rows["lenet5_mnist"]["status"] == "failed" and "latest_attempt" not in rows["lenet5_mnist"]  # as ever
    text = (tmp_path / "RESULTS.md").read_text()
    table = ledger_rows(text)
    assert table["softmax_mnist"]["dlbook"] == "0.9000" and "latest attempt failed" in table["softmax_mnist"]["verdict"]
    assert "Latest attempt (2026-02-02 00:00 UTC, `data.batch_size=0`" in text and failure in text


@pytest.mark.parametrize("override", ["run_dir=/tmp/elsewhere", "logger=wandb", "++experiment=cnn_mnist",
                                      "ckpt_path=auto"])
def test_overrides_the_script_sets_are_refused(tmp_path, capsys, override):
    with pytest.raises(SystemExit):
        reproduce.main(["softmax_mnist", override, "--dry-run", "--results", str(tmp_path / "RESULTS.md")])
    message = capsys.readouterr().err
    assert override in message and "experiment, logger, run_dir, ckpt_path" in message


@pytest.mark.parametrize("results", ["results.json", "folder", "file/RESULTS.md", "RESULTS.txt"])
def test_results_must_be_a_markdown_file_in_a_folder(tmp_path, capsys, results):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(SystemExit):
        reproduce.main(["softmax_mnist", "--dry-run", "--results", str(tmp_path / results)])
    assert f"--results {tmp_path / results}: the ledger is a Markdown file" in capsys.readouterr().err
    assert (tmp_path / "results.json").read_text() == "{}"


def test_the_results_folder_is_made(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "run_experiment", lambda name, *args, **kwargs: {name: ledger_row()})
    assert reproduce.main(["softmax_mnist", "--results", str(tmp_path / "new" / "RESULTS.md"),
                           "--runs-dir", str(tmp_path / "runs")]) == 0
    assert json.loads((tmp_path / "new" / "results.json").read_text())["softmax_mnist"]["value"] == 0.9


def test_patterns_outside_the_family_are_an_error(capsys, monkeypatch):
    monkeypatch.setattr(reproduce, "experiment_names", lambda: ["cnn_mnist", "dcgan_mnist", "gan_mnist"])
    with pytest.raises(SystemExit):
        reproduce.select(["cnn_*"], "gan", reproduce.argparse.ArgumentParser())
    assert "no experiment matching 'cnn_*' is of family 'gan'. Its experiments: dcgan_mnist, gan_mnist" in (
        capsys.readouterr().err)


def test_resume_refuses_an_unreadable_run_record(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "runs" / "softmax_mnist", "2026-01-01_00-00-00", [])
    (run_dir / reproduce.RUN_RECORD).write_text("{bad")
    with pytest.raises(SystemExit):
        reproduce.main(["softmax_mnist", "--resume", "--runs-dir", str(tmp_path / "runs"),
                        "--results", str(tmp_path / "RESULTS.md")])
    assert f"--resume: {run_dir / reproduce.RUN_RECORD} is unreadable" in capsys.readouterr().err
    assert not (tmp_path / "RESULTS.md").exists()
