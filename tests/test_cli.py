"""The entry points as a user runs them: exit status and what they print."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
])
def test_bad_value_raised_while_building_is_one_paragraph(tmp_path, override, message):
    result = run("train.py", "model=gan", override, *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert message in output(result)
    assert "Error in call to target" not in output(result) and "Traceback" not in output(result)


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
