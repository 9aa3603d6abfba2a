"""scripts/export.py: a checkpoint's net written as TorchScript, torch.export or ONNX, run back without dlbook."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlbook.errors import DlbookError
from dlbook.train import train
from dlbook.utils.config import compose_run
from scripts.export import export, run_written
from tests.datasets import write_mnist

TINY = ["trainer.max_epochs=1", "test=false", "++trainer.limit_train_batches=4"]


def exported(tmp_path, run: str, *overrides, name="export"):
    return export(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / run}", *overrides],
                              tmp_path / name, "export"))


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("mnist")
    write_mnist(tmp_path / "data")
    from tests.conftest import compose_run as test_run
    train(test_run(tmp_path, ["model=lenet5", "data=mnist", "data.download=false", *TINY]))
    return tmp_path


@pytest.mark.parametrize("fmt", ["torchscript", "export", "onnx"])
def test_an_image_classifier_runs_from_the_file_on_raw_pixels(mnist_run, fmt):
    report = exported(mnist_run, "run", f"format={fmt}", name=f"export_{fmt}")
    assert report["max_abs_difference"] < 1e-4
    metadata = json.loads((mnist_run / f"export_{fmt}" / "model.json").read_text())
    assert metadata["inputs"][0]["shape"] == ["batch", 1, 28, 28] and "0-255" in metadata["inputs"][0]["values"]
    assert metadata["opset"] == (18 if fmt == "onnx" else None)  # conf/export.yaml's, which the file has
    files = [file for file in (mnist_run / f"export_{fmt}").iterdir() if file.name.startswith("model.")
             and file.name != "model.json"]
    assert report["bytes"] == sum(file.stat().st_size for file in files)  # ONNX: model.onnx and model.onnx.data
    # Five written digits, a batch of another size than the example's, as pixel values.
    from dlbook.assembly import restore_task
    from dlbook.data.idx import read_idx

    task, datamodule, _ = restore_task(mnist_run / "run" / "checkpoints" / "best.ckpt", "test")
    images = read_idx(next((mnist_run / "data" / "MNIST" / "raw").glob("t10k-images*")))[:5, None].float()
    with torch.no_grad():
        expected = task.eval()(datamodule.normalize(images))
    assert (run_written(Path(report["file"]), fmt, (images,)) - expected).abs().max() < 1e-4
    if fmt != "torchscript":
        return
    # Loaded in a Python that never imports dlbook, the file gives the checkpoint's classes.
    torch.save(images, mnist_run / "digits.pt")
    script = ("import sys, torch; model = torch.jit.load(sys.argv[1]); "
              "print(model(torch.load(sys.argv[2])).argmax(dim=1).tolist()); "
              "assert not any(name.startswith('dlbook') for name in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script, report["file"], str(mnist_run / "digits.pt")],
                            capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected.argmax(dim=1).tolist())


def test_dynamic_int8_shrinks_an_mlp_and_keeps_its_classes(tmp_path):
    from tests.conftest import compose_run as test_run
    _, objects = train(test_run(tmp_path, ["model=mlp", *TINY]))
    report = exported(tmp_path, "run", "quantize=dynamic_int8", "latency_runs=3")
    quantized = report["quantized"]
    assert quantized["size_ratio"] < 0.4  # 512-256-128 Linear weights as int8, a quarter of float32's bytes
    assert quantized["latency_ratio"] > 0
    pixels = objects["datamodule"].data_val.tensors[0][:50].float()  # the 8x8 digits' values, as stored
    with torch.no_grad():
        float_classes = objects["model"].eval()(objects["datamodule"].normalize(pixels)).argmax(dim=1)
        int8_classes = torch.jit.load(quantized["file"])(pixels).argmax(dim=1)  # a batch of another size
    assert (int8_classes == float_classes).float().mean() > 0.9


@pytest.mark.parametrize("overrides, message", [
    (["format=tflite"], r"format=tflite is not one of torchscript, export, onnx"),
    (["format=onnx", "quantize=dynamic_int8"], r"only format=torchscript keeps"),
    (["tolerance=-1"], r"tolerance=-1 must be a finite number from 0 up"),
    (["latency_runs=0"], r"latency_runs=0 must be a positive integer"),
    (["latency_runs=2.5"], r"latency_runs=2.5 must be a positive integer"),
    (["format=onnx", "opset=0"], r"opset=0 must be a positive integer"),
])
def test_bad_settings_are_refused(mnist_run, overrides, message):
    with pytest.raises(DlbookError, match=message):
        exported(mnist_run, "run", *overrides, name="refused")
    assert not any((mnist_run / "refused").iterdir())  # refused before anything was written


def listing(folder: Path) -> dict:
    """Each entry of the folder, with what tells whether it was written again."""
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir()}


def test_an_export_into_a_folder_holding_another_is_refused(mnist_run):
    folder = mnist_run / "export_shared"
    exported(mnist_run, "run", name=folder.name)
    before = listing(folder)
    shutil.copy(mnist_run / "run" / "checkpoints" / "best.ckpt", mnist_run / "other.ckpt")
    for run, overrides, this in (("run", ["format=export"], r"best.ckpt \(format=export\)"),
                                 ("other.ckpt", [], r"other.ckpt \(format=torchscript\)")):
        with pytest.raises(DlbookError, match=rf"output_dir={folder} holds an export of .*best.ckpt \(format="
                                              rf"torchscript\), which this export of .*{this} would overwrite"):
            exported(mnist_run, run, *overrides, name=folder.name)
        assert listing(folder) == before
    exported(mnist_run, "run", name=folder.name)  # the same export again (reproduce.py --resume) replaces it
    assert listing(folder).keys() == before.keys() and listing(folder) != before


@pytest.mark.parametrize("failure", ["check", "crash"])
def test_a_failed_export_leaves_the_earlier_one_as_it_was(mnist_run, monkeypatch, failure):
    folder = mnist_run / f"export_kept_{failure}"
    exported(mnist_run, "run", name=folder.name)
    before = listing(folder)
    if failure == "check":
        monkeypatch.setattr("scripts.export.max_difference", lambda expected, got: 1.0)
        error, message = DlbookError, rf"up to 1 away .* kept in {re.escape(str(folder / 'rejected'))} .* is as it was"
    else:
        def killed(*args):
            raise RuntimeError("killed after writing")
        monkeypatch.setattr("scripts.export.run_written", killed)
        error, message = RuntimeError, "killed after writing"
    with pytest.raises(error, match=message):
        exported(mnist_run, "run", name=folder.name)
    after = listing(folder)
    kept = after.pop("rejected", None)
    assert after == before  # no file replaced, nothing half-written left
    assert (kept is not None) == (failure == "check")
    if failure == "check":
        torch.jit.load(folder / "rejected" / "model.pt")  # the failed file, whole, for inspection


def test_an_opset_the_exporter_cannot_write_is_refused(mnist_run):
    folder = mnist_run / "export_opset5"
    with pytest.raises(DlbookError, match=r"opset=5: the exporter could not convert this net to opset 5 and wrote "
                                          r"opset (\d+) instead\. Give opset=\1 .* up to \d+"):
        exported(mnist_run, "run", "format=onnx", "opset=5", name=folder.name)
    assert sorted(path.name for path in folder.iterdir()) == ["rejected"]


def test_a_task_of_no_single_net_refuses(tmp_path):
    from tests.conftest import compose_run as test_run
    train(test_run(tmp_path, ["model=kmeans", "trainer.max_epochs=1"]))
    with pytest.raises(DlbookError, match="KMeansTask is not one net from inputs to outputs"):
        exported(tmp_path, "run")
