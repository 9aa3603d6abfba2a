"""A non-editable install ships every module and conf/ inside the package, and the entry points find it there."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_every_module_and_config_and_composes_from_it(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("dlbook-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"dlbook/conf/{path.relative_to(ROOT / 'conf')}" for path in (ROOT / "conf").rglob("*.yaml")}
    assert configs and configs <= shipped
    sources = {f"dlbook/{path.relative_to(ROOT / 'dlbook')}" for path in (ROOT / "dlbook").rglob("*.py")}
    assert sources - shipped == set()  # every subpackage is in pyproject's list
    plugin = {f"{path.relative_to(ROOT)}" for path in (ROOT / "hydra_plugins").rglob("*.py")}
    assert plugin and plugin <= shipped

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-m", "dlbook.train", "model=lenet5", "data=mnist", "--cfg", "job"],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "dlbook.nets.classification.lenet5.LeNet5" in result.stdout
    where = subprocess.run([sys.executable, "-c", "from dlbook.utils.config import config_dir; print(config_dir())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site))
    discover = ("from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
                "print([sweeper.__module__ for sweeper in Plugins.instance().discover(Sweeper)])")
    sweepers = subprocess.run([sys.executable, "-c", discover], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "hydra_plugins.dlbook_optuna_sweeper.optuna_sweeper" in sweepers.stdout, sweepers.stderr  # for -m searches
