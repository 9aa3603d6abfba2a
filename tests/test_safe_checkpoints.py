"""Every path that reads a checkpoint refuses one whose unpickling would run code, or whose saved run config would
call a function that no dlbook config names, with one paragraph."""

import subprocess
import sys

import pytest
import torch

from tests.test_cli import QUIET, output, run


class RunsCode:
    """Unpickling this runs `touch <marker>`, as a hostile checkpoint would run anything."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def hostile_checkpoint(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "payload": RunsCode(marker)}, path)
    # It is a real threat: unpickled without weights_only it runs the command.
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(path)!r}, weights_only=False)"], check=True)
    assert marker.exists()
    marker.unlink()
    return path, marker


@pytest.mark.parametrize("script, args", [
    ("eval.py", ["extras.print_config=false"]),
    ("train.py", QUIET),  # resuming
    ("train.py", ["ckpt_restore=weights", *QUIET]),  # fine-tuning
    ("scripts/sample.py", []),
    ("train.py", ["model=gan", "callbacks.sample_quality.features=classifier", "trainer.max_epochs=1", *QUIET]),
], ids=["eval", "resume", "weights", "sample", "sample_quality_classifier"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, hostile_checkpoint, script, args):
    path, marker = hostile_checkpoint
    key = "callbacks.sample_quality.classifier_ckpt" if "callbacks.sample_quality.features=classifier" in args \
        else "ckpt_path"
    result = run(script, f"{key}={path}", *args, cwd=tmp_path)
    assert result.returncode == 1, output(result)
    assert f"ckpt_path={path} holds Python objects other than tensors" in output(result)
    assert "Traceback" not in output(result)
    assert not marker.exists()


@pytest.fixture
def checkpoint_naming_a_command(tmp_path, run_config):
    """A real checkpoint whose saved run config "builds its data" with os.mkdir: loading it with weights_only
    succeeds (it holds only plain containers), and Hydra's instantiate, whose blocklist misses it, would call it."""
    from hydra.utils import instantiate

    from dlbook.tasks.base import CONFIG_KEY
    from dlbook.train import train

    train(run_config(["trainer.max_epochs=1", "test=false"]))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    marker = tmp_path / "code_ran"
    checkpoint[CONFIG_KEY]["config"]["data"] = {"_target_": "os.mkdir", "path": str(marker)}
    path = tmp_path / "tampered.ckpt"
    torch.save(checkpoint, path)
    instantiate(torch.load(path, weights_only=True)[CONFIG_KEY]["config"]["data"])  # a real threat
    assert marker.exists()
    marker.rmdir()
    return path, marker


@pytest.mark.parametrize("script", ["eval.py", "scripts/sample.py"])
def test_a_checkpoint_whose_config_names_a_foreign_function_is_refused(tmp_path, checkpoint_naming_a_command,
                                                                        script, monkeypatch):
    path, marker = checkpoint_naming_a_command
    result = run(script, f"ckpt_path={path}", cwd=tmp_path)
    assert result.returncode == 1, output(result)
    refusal = f"ckpt_path={path} would build its data or model with os.mkdir, which no dlbook config names"
    assert refusal in output(result)
    assert "Traceback" not in output(result)
    assert not marker.exists()
    monkeypatch.setenv("DLBOOK_TRUSTED_TARGETS", "os.mkdir")  # what the message offers, for one's own code
    run(script, f"ckpt_path={path}", cwd=tmp_path)
    assert marker.exists()


def test_a_checkpoint_whose_config_holds_an_interpolation_is_refused_unread(tmp_path, run_config):
    from omegaconf import OmegaConf

    from dlbook.tasks.base import CONFIG_KEY
    from dlbook.train import train
    from dlbook.utils.config import register_resolvers

    train(run_config(["trainer.max_epochs=1", "test=false"]))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    made = tmp_path / "made"
    checkpoint[CONFIG_KEY]["config"]["data"]["data_dir"] = f"${{run_directory:null,{made},here}}"
    path = tmp_path / "tampered.ckpt"
    torch.save(checkpoint, path)
    register_resolvers()  # a real threat: reading the value calls dlbook's resolver, which makes the directory
    assert OmegaConf.create(checkpoint[CONFIG_KEY]["config"]).data.data_dir == str(made / "here")
    (made / "here").rmdir()
    made.rmdir()
    result = run("eval.py", f"ckpt_path={path}", cwd=tmp_path)
    assert result.returncode == 1, output(result)
    assert "holds a run config with interpolations (data.data_dir: ${run_directory:null," in output(result)
    assert "Traceback" not in output(result)
    assert not made.exists()


@pytest.mark.parametrize("saved", [
    "mlp",  # was an AttributeError
    {"config": {"data": {}}, "choices": {}},  # no model: a ConfigAttributeError where it was read
    {"config": {"data": {}, "model": {}}, "choices": ["mlp"]},
])
def test_a_damaged_run_config_is_refused_in_one_paragraph(tmp_path, saved):
    from dlbook.errors import CheckpointError
    from dlbook.tasks.base import CONFIG_KEY
    from dlbook.utils.checkpoints import saved_run_config

    with pytest.raises(CheckpointError, match="holds a damaged dlbook run config"):
        saved_run_config({CONFIG_KEY: saved, "state_dict": {}}, tmp_path / "damaged.ckpt", "eval.py")


def test_a_run_directory_without_best_ckpt_names_the_checkpoints_it_holds(tmp_path):
    from dlbook.errors import CheckpointError
    from dlbook.utils.checkpoints import resolve_checkpoint

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"its checkpoints/ holds last.ckpt: give ckpt_path=.*run/checkpoints/"
                                              r"last.ckpt"):
        resolve_checkpoint(str(tmp_path / "run"), str(tmp_path / "elsewhere"))
