"""The entry points as a user runs them: exit status and what they print."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["logger=none", "extras.print_config=false", "++trainer.enable_progress_bar=false"]


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBOOK_DATA_DIR": str(cwd / "data"), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def output(result) -> str:
    return result.stdout + result.stderr


def test_default_run_prints_accuracy_and_run_dir(tmp_path):
    result = run("train.py", "trainer.max_epochs=3", *QUIET, cwd=tmp_path)
    assert result.returncode == 0, output(result)
    runs = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 1
    run_dir = runs[0]
    assert f"Run directory: {run_dir}" in output(result)
    accuracy = json.loads((run_dir / "metrics.json").read_text())["test/acc"]
    assert f"Test accuracy: {accuracy:.4f}" in output(result)
    for produced in (".hydra/config.yaml", "train.log", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run_dir / produced).exists(), produced


def test_unknown_choice_lists_the_valid_ones(tmp_path):
    result = run("train.py", "model=resnet9000", *QUIET, cwd=tmp_path)
    assert result.returncode != 0
    assert "model/resnet9000" in output(result) and "lenet5" in output(result) and "mlp_small" in output(result)
    assert "Traceback" not in output(result)


def test_model_data_mismatch_is_one_paragraph(tmp_path):
    result = run("train.py", "model=lenet5", "data=digits", *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert "model=lenet5 does not fit data=digits" in output(result) and "mnist" in output(result)
    assert "Traceback" not in output(result)


def test_missing_dataset_offline(tmp_path):
    result = run("train.py", "data=mnist", "data.download=false", *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert str(tmp_path / "data" / "MNIST" / "raw") in output(result) and "DLBOOK_DATA_DIR" in output(result)
    assert "Traceback" not in output(result)


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=0", "data.batch_size=0 must be a positive integer"),  # raised by the datamodule
    ("callbacks.sample_grid.every_n_batches=0", "every_n_batches=0 must be a positive integer"),  # by a callback
    ("seed=abc", "seed=abc is not an integer from 0 to 4294967295"),  # by train.py, before any building
    ("seed=-1", "seed=-1 is not an integer"),  # Lightning would seed with 0 instead
])
def test_bad_value_raised_while_building_is_one_paragraph(tmp_path, override, message):
    result = run("train.py", "model=gan", override, *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert message in output(result)
    assert "Error in call to target" not in output(result) and "Traceback" not in output(result)


@pytest.mark.parametrize("overrides, message", [
    # a metric no one logs: Lightning's ModelCheckpoint finds out at the first epoch's end, or its early stopping
    (["monitor=val/acuracy"], "`ModelCheckpoint(monitor='val/acuracy')` could not find the monitored key in the "
                              "returned metrics: ['val/loss', 'val/acc', 'val/acc_best'"),
    (["monitor=val/acuracy", "callbacks=[default,early_stopping]"],
     "Early stopping conditioned on metric `val/acuracy` which is not available. Pass in or modify your "
     "`EarlyStopping` callback to use any of the following: `val/loss`, `val/acc`"),
    pytest.param(["trainer=gpu"], "No supported gpu backend found! (building lightning.pytorch.trainer.Trainer)",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there")),
], ids=["checkpoint", "early_stopping", "gpu"])
def test_a_setting_lightning_refuses_is_one_paragraph(tmp_path, overrides, message):
    result = run("train.py", *overrides, "trainer.max_epochs=1", *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert f"Lightning refused a setting: {message}" in output(result)
    assert "Error in call to target" not in output(result) and "Traceback" not in output(result)


@pytest.mark.parametrize("script, prints_config", [("eval.py", True), ("scripts/sample.py", False)])
def test_a_required_value_left_out_is_one_paragraph(tmp_path, script, prints_config):
    result = run(script, cwd=tmp_path)
    assert result.returncode == 1
    assert "ckpt_path is required (??? in the config): pass ckpt_path=<value>." in output(result)
    assert ("CONFIG" in output(result) and "── ???" in output(result)) == prints_config  # the tree shows it unset
    assert "Traceback" not in output(result)


def test_a_full_disk_is_one_paragraph_and_the_run_resumes_from_its_last_checkpoint(tmp_path):
    full = ["+callbacks.disk_full._target_=tests.callbacks.DiskFullAtEpoch", "+callbacks.disk_full.epoch=1"]
    result = run("train.py", "trainer.max_epochs=3", *full, *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert "The disk is full or over its quota ([Errno 28] No space left on device)" in output(result)
    assert "Traceback" not in output(result)
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    resumed = run("train.py", "trainer.max_epochs=3", "ckpt_path=last", f"run_dir={run_dir}", *QUIET, cwd=tmp_path)
    assert resumed.returncode == 0, output(resumed)
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 3


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04 truncated zip"])
def test_corrupt_checkpoint(tmp_path, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    result = run("eval.py", f"ckpt_path={bad}", "extras.print_config=false", cwd=tmp_path)
    assert result.returncode == 1
    assert f"ckpt_path={bad} is not a readable checkpoint" in output(result)
    assert "Traceback" not in output(result)


def test_missing_checkpoint_and_last_without_run_dir(tmp_path):
    result = run("train.py", f"ckpt_path={tmp_path / 'nope.ckpt'}", *QUIET, cwd=tmp_path)
    assert result.returncode == 1 and "does not exist" in output(result)
    result = run("train.py", "ckpt_path=last", *QUIET, cwd=tmp_path)
    assert result.returncode == 1 and "run_dir=" in output(result)


@pytest.mark.parametrize("script, overrides", [
    ("train.py", ["run_dir={file}"]),
    ("train.py", ["run_dir={file}/run"]),
    ("train.py", ["paths.log_dir={file}"]),
    ("train.py", ["-m", "sweep_dir={file}", "seed=1,2"]),
    ("eval.py", ["run_dir={file}", "ckpt_path={file}"]),
])
def test_a_run_directory_that_is_a_file_is_refused_in_one_line_and_the_file_kept(tmp_path, script, overrides):
    notes = tmp_path / "notes.txt"
    notes.write_text("kept")
    overrides = [override.format(file=notes) for override in overrides]
    result = run(script, *overrides, *QUIET, cwd=tmp_path)
    key = next(override.split("=")[0] for override in overrides if "dir" in override)
    assert result.returncode == 1 and f"{key}={notes}" in output(result) and str(notes) in output(result)
    assert "Traceback" not in output(result) and notes.read_text() == "kept"


def test_sweep_runs_one_job_per_value(tmp_path):
    result = run("train.py", "-m", "optimizer.lr=1e-3,3e-4", "trainer.max_epochs=1", *QUIET, cwd=tmp_path)
    assert result.returncode == 0, output(result)
    sweep = next((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    jobs = sorted(path.name for path in sweep.iterdir() if path.is_dir())
    assert jobs == ["0", "1"]
    lrs = [(sweep / job / ".hydra" / "overrides.yaml").read_text() for job in jobs]
    assert "optimizer.lr=0.001" in lrs[0] and "optimizer.lr=0.0003" in lrs[1]
    assert all((sweep / job / "metrics.json").exists() for job in jobs)


def test_help_does_not_import_torch(tmp_path):
    probe = ("import runpy, sys\n"
             f"sys.argv = ['train.py', '--help']\n"
             "try:\n"
             f"    runpy.run_path({str(ROOT / 'train.py')!r}, run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             "print('imported torch:', 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert "imported torch: False" in result.stdout, result.stdout + result.stderr
    assert "model: " in result.stdout and "lenet5" in result.stdout  # the groups and choices are listed


@pytest.mark.slow  # two processes started together (test-all); run directories are made by every other test
def test_runs_started_together_get_a_directory_each(tmp_path):
    env = {**os.environ, "DLBOOK_DATA_DIR": str(tmp_path / "data"), "HYDRA_FULL_ERROR": "0"}
    processes = [subprocess.Popen([sys.executable, str(ROOT / "train.py"), "trainer.max_epochs=1", f"seed={seed}",
                                   *QUIET], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for seed in (1, 2)]
    for process in processes:
        process.communicate(timeout=300)
        assert process.returncode == 0
    run_dirs = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(run_dirs) == 2
    seeds = sorted((run_dir / ".hydra" / "overrides.yaml").read_text().split("seed=")[1].split()[0]
                   for run_dir in run_dirs)
    assert seeds == ["1", "2"] and all((run_dir / "metrics.json").exists() for run_dir in run_dirs)


def test_run_directories_of_one_second_are_created_atomically(tmp_path):
    # Processes racing for the same timestamp: each gets a directory no other got.
    claim = ("import sys; from dlbook.utils.config import run_directory; "
             "print(run_directory(None, sys.argv[1], '2026-01-01_00-00-00'))")
    processes = [subprocess.Popen([sys.executable, "-c", claim, str(tmp_path / "runs")], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True) for _ in range(4)]
    claimed = [process.communicate(timeout=60)[0].strip() for process in processes]
    assert len(set(claimed)) == 4
    assert sorted(Path(path).name for path in claimed) == ["2026-01-01_00-00-00", *(f"2026-01-01_00-00-00_{n}"
                                                                                     for n in (1, 2, 3))]


def test_a_resume_keeps_the_original_runs_config_even_when_it_fails(tmp_path):
    first = run("train.py", "trainer.max_epochs=1", "optimizer.lr=0.002", *QUIET, cwd=tmp_path)
    assert first.returncode == 0, output(first)
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    originals = {path: path.read_bytes() for path in (run_dir / ".hydra").iterdir()}
    failed = run("train.py", "ckpt_path=last", f"run_dir={run_dir}", "trainer.precision=bogus", *QUIET, cwd=tmp_path)
    assert failed.returncode != 0
    resumed = run("train.py", "ckpt_path=last", f"run_dir={run_dir}", "trainer.max_epochs=2", "optimizer.lr=0.002",
                  *QUIET, cwd=tmp_path)
    assert resumed.returncode == 0, output(resumed)
    assert {path: path.read_bytes() for path in originals} == originals
    records = sorted((run_dir / ".hydra").glob("resume-*"))
    assert len(records) == 2  # one per resume, the failed one included
    assert ["trainer.precision=bogus" in (record / "overrides.yaml").read_text() for record in records] == [True, False]
    assert "trainer.max_epochs=2" in (records[1] / "overrides.yaml").read_text()


def test_full_resume_into_another_model_names_what_differs(tmp_path):
    first = run("train.py", "trainer.max_epochs=1", *QUIET, cwd=tmp_path)
    assert first.returncode == 0, output(first)
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    result = run("train.py", "model=mlp_small", f"ckpt_path={last}", *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert f"The weights in ckpt_path={last} do not fit this model" in output(result)
    assert "of another shape (net.layers.1.weight (512, 64) vs (50, 64)" in output(result)
    assert "written by a run of model=mlp data=digits" in output(result)
    assert "Traceback" not in output(result)


@pytest.mark.parametrize("model, override, key", [
    ("mlp", "optimizer.lr=-1", "optimizer"),
    ("gan", "model.generator_optimizer.betas=[0.5,2.0]", "model.generator_optimizer"),
])
def test_an_optimizer_torch_refuses_is_one_paragraph(tmp_path, model, override, key):
    result = run("train.py", f"model={model}", override, "trainer.max_epochs=1", *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{key} cannot be built: Invalid" in output(result) and "torch.optim.adam.Adam(" not in output(result)
    assert "Traceback" not in output(result)


def test_make_clean_removes_build_leftovers_and_keeps_the_runs(tmp_path):
    for folder in ("build/lib", "dlbook.egg-info", "outputs/train/runs/1/checkpoints", "multirun/2"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "outputs/train/runs/1/checkpoints/last.ckpt").write_bytes(b"weeks of training")
    subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["multirun", "outputs"]
    assert (tmp_path / "outputs/train/runs/1/checkpoints/last.ckpt").read_bytes() == b"weeks of training"
    subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean-outputs"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script, overrides, message", [
    ("sample", ["n=abc"], "n=abc must be a positive integer."),
    ("sample", ["output={tmp}/grid.txt"], "grid.txt must end in one of .bmp, .gif, .jpeg"),  # PIL: unknown extension
    ("generate", ["length=abc"], "length=abc must be a non-negative integer."),  # was a TypeError comparing it
    ("generate", ["temperature=nan"], "temperature=nan must be a finite number from 0 up (0: greedy)."),
    ("generate", ["top_k=2.5"], "top_k=2.5 must be a positive integer, or null for the whole vocabulary."),
    ("generate", ["output={tmp}"], "is a folder; give a file path."),  # IsADirectoryError once the text was made
    ("translate", ["text=hi", "max_length=0"], "max_length=0 must be a positive integer"),  # 0 meant the default
    ("translate", ["text=hi", "beam_size=2.5"], "beam_size=2.5 must be a positive integer (1: greedy)"),
    ("translate", ["text=hi", "length_penalty=abc"], "length_penalty=abc must be a finite number"),
    ("explain", ["max_images=-1"], "max_images=-1 must be a positive integer."),  # a slice: all images but one
    ("explain", ["output_dir={tmp}/notes.txt/x"], "which is a file, not a folder"),
    ("embed", ["limit=-3"], "limit=-3 must be a positive integer, or null"),  # a slice: all vectors but 3
    ("embed", ["k=0"], "k=0 must be a positive integer."),
], ids=lambda value: value if isinstance(value, str) and " " not in value else None)
def test_a_bad_script_setting_is_refused_before_any_work(tmp_path, script, overrides, message):
    """Each script checks its own settings before it reads the checkpoint (none exists here)."""
    import importlib

    from dlbook.errors import DlbookError
    from dlbook.utils.config import compose_run

    (tmp_path / "notes.txt").write_text("a file, not a folder")
    overrides = [override.format(tmp=tmp_path) for override in overrides]
    cfg = compose_run([f"ckpt_path={tmp_path / 'no.ckpt'}", f"paths.log_dir={tmp_path}", *overrides],
                      tmp_path / "run", script)
    with pytest.raises(DlbookError) as refused:
        getattr(importlib.import_module(f"scripts.{script}"), script)(cfg)
    assert message in str(refused.value)
