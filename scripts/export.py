"""Export a trained net as a file that runs without dlbook:

  python scripts/export.py ckpt_path=outputs/train/runs/<timestamp> format=torchscript
  python scripts/export.py ckpt_path=<run> format=onnx          # needs the `export` extra (onnx, onnxruntime)
  python scripts/export.py ckpt_path=<run> format=export        # torch.export's ExportedProgram (.pt2)
  python scripts/export.py ckpt_path=<run> quantize=dynamic_int8   # int8 weights for the Linear layers

Rebuilds the task from the checkpoint, writes the net the task names (export_example: a classifier's or
regressor's net, a language model's, a GAN's generator) to `output_dir`, runs the written file on an example batch
and checks it gives the checkpoint's outputs. Image nets are written with their pixel normalisation in front, so
the file takes pixel values 0-255 (N, C, H, W) as float. `model.json` beside it says what goes in and comes out.
With `quantize`, the float and the quantised file's sizes and CPU latencies are printed as ratios.

The files are written into a hidden folder in `output_dir` and moved into place, model.json last, only once they
pass their checks; a file that fails them is kept in `output_dir/rejected/`. A folder holds one export: another
(another checkpoint, format, quantize or opset) into it is refused, the same one again replaces it.
"""

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import guarded, write_whole

log = logging.getLogger("dlbook.export")
register_resolvers()

FORMATS = {"torchscript": "pt", "export": "pt2", "onnx": "onnx"}
QUANTIZATIONS = (None, "dynamic_int8")
INT8 = "model_int8.pt"


def export(cfg: DictConfig) -> dict:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook.assembly import restore_task
    from dlbook.errors import DlbookError, check_count, check_number
    from dlbook.nets.layers import PixelsIn
    from dlbook.utils.checkpoints import resolve_checkpoint

    if cfg.format not in FORMATS:
        raise DlbookError(f"format={cfg.format} is not one of {', '.join(FORMATS)}.")
    if cfg.quantize not in QUANTIZATIONS:
        raise DlbookError(f"quantize={cfg.quantize} is not one of {', '.join(map(str, QUANTIZATIONS))}.")
    if cfg.quantize and cfg.format != "torchscript":
        raise DlbookError(f"quantize={cfg.quantize} writes torch's quantised kernels, which only format=torchscript "
                          f"keeps; format={cfg.format} cannot hold them.")
    check_number("tolerance", cfg.tolerance, 0, note=": the largest difference from the checkpoint's outputs that "
                                                     "the written file may give (e.g. 1e-4)")
    check_count("latency_runs", cfg.latency_runs, note=" (the calls timed for each of the float and int8 models)")
    if cfg.format == "onnx":
        check_count("opset", cfg.opset, note=" (an ONNX opset version)")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    output_dir = Path(cfg.output_dir)
    refuse_another_export(output_dir, {"checkpoint": str(ckpt_path), "format": cfg.format, "quantize": cfg.quantize,
                                       "opset": cfg.opset if cfg.format == "onnx" else None})
    task, datamodule, choices = restore_task(ckpt_path, "export.py")
    task.eval()
    net, example = task.export_example()
    takes_pixels = hasattr(datamodule, "normalize") and example[0].shape[1:] == getattr(task.data_spec,
                                                                                       "input_shape", None)
    if takes_pixels:  # every normalisation dlbook applies is affine per channel: its values at 0 and 1 tell it
        shift = datamodule.normalize(torch.zeros(1, example[0].shape[1], 1, 1))
        net = PixelsIn(net, shift, datamodule.normalize(torch.ones_like(shift)) - shift)
        example = (torch.rand(example[0].shape, generator=torch.Generator().manual_seed(0)) * 255,)
    net.eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"model.{FORMATS[cfg.format]}"
    # Staged apart, so that a file failing its check or a crash never replaces or mixes with an earlier export.
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".export-") as folder:
        staging = Path(folder)
        staged = staging / path.name
        with torch.no_grad():
            expected = net(*example)
            write(net, example, staged, cfg.format, cfg.opset)
            got = run_written(staged, cfg.format, example)
        difference = max_difference(expected, got)
        opset = onnx_opset(staged) if cfg.format == "onnx" else None
        if cfg.format == "onnx" and opset != cfg.opset:  # torch keeps its own opset where converting fails
            reject(staging, output_dir, unconverted(cfg.opset, opset))
        if difference > cfg.tolerance:
            reject(staging, output_dir, f"The written {path.name} gives outputs up to {difference:.3g} away from the "
                   f"checkpoint's (tolerance={cfg.tolerance}).")
        written = sum(file.stat().st_size for file in staging.glob(f"{staged.name}*"))  # with an ONNX file's .data
        report = {"file": str(path), "format": cfg.format, "quantize": cfg.quantize, "opset": opset,
                  "max_abs_difference": difference, "bytes": written}
        if cfg.quantize:
            report["quantized"] = {"file": str(output_dir / INT8),
                                   **quantize(net, example, staging, expected, cfg.latency_runs)}
        for file in staging.iterdir():  # an ONNX file's weights beside it too (model.onnx.data)
            os.replace(file, output_dir / file.name)
    # Last: until now model.json describes the earlier export, if any, of the same checkpoint and settings.
    describe(output_dir / "model.json", task, choices, example, takes_pixels, report, ckpt_path)
    log.info(f"Wrote {path} ({report['bytes'] / 1e6:.2f} MB); on an example batch it gives the checkpoint's "
             f"outputs to {difference:.2g}")
    return report


def refuse_another_export(output_dir: Path, this: dict) -> None:
    """A folder holds one export, described by its model.json: another would overwrite it, or leave files the new
    model.json does not describe. The same export again (reproduce.py --resume exports a completed run again)
    replaces it."""
    from dlbook.errors import DlbookError

    described = output_dir / "model.json"
    if not described.exists():
        return
    earlier = json.loads(described.read_text())
    earlier = {key: earlier.get(key) for key in this}
    if earlier == this:
        return

    def settings(export: dict) -> str:
        return ", ".join(f"{key}={value}" for key, value in export.items() if key != "checkpoint" and value is not None)

    raise DlbookError(f"output_dir={output_dir} holds an export of {earlier['checkpoint']} ({settings(earlier)}), "
                      f"which this export of {this['checkpoint']} ({settings(this)}) would overwrite or leave "
                      f"undescribed. Give another output_dir (or leave it and run_dir out: a new run directory), or "
                      f"delete that export (model.json and the model files) first; only the same export again, of "
                      f"the same checkpoint with the same format, quantize and opset, replaces it.")


def reject(staging: Path, output_dir: Path, problem: str) -> None:
    """Keep the staged files that failed a check in output_dir/rejected (an earlier failure's go), apart from any
    good export in output_dir, and stop."""
    from dlbook.errors import DlbookError

    rejected = output_dir / "rejected"
    shutil.rmtree(rejected, ignore_errors=True)
    os.replace(staging, rejected)
    raise DlbookError(f"{problem} The files are kept in {rejected} for inspection; the export in {output_dir}, if "
                      f"any, is as it was.")


def unconverted(asked: int, written: int) -> str:
    """Why the ONNX file has another opset than asked, and which to give."""
    import onnx

    return (f"format=onnx opset={asked}: the exporter could not convert this net to opset {asked} and wrote opset "
            f"{written} instead. Give opset={written} (what it writes itself) or a newer one up to "
            f"{onnx.defs.onnx_opset_version()} (the newest the installed onnx defines); an older one only where onnx "
            f"converts every operator of the net (the warning above names one it cannot).")


def write(net, example, path: Path, fmt: str, opset: int | None) -> None:
    """The net written in `fmt`, its inputs' first dimension (the batch) left free."""
    import torch

    from dlbook.errors import DlbookError

    if fmt == "torchscript":
        torch.jit.save(torch.jit.trace(net, example), str(path))
        return
    batch = tuple({0: torch.export.Dim("batch")} for _ in example)
    if fmt == "export":
        torch.export.save(torch.export.export(net, example, dynamic_shapes=batch), str(path))
        return
    try:
        import onnx  # noqa: F401  (torch.onnx's exporter needs it and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError:
        raise DlbookError("format=onnx needs the onnx and onnxscript packages (pip install 'dlbook[export]', "
                          "which also brings onnxruntime to check the file).") from None
    torch.onnx.export(net, example, str(path), input_names=[f"input{i}" for i in range(len(example))],
                      dynamic_shapes=batch, opset_version=opset, dynamo=True, verbose=False)


def onnx_opset(path: Path) -> int:
    """The opset of the standard ONNX operators that the file declares."""
    import onnx

    return next(entry.version for entry in onnx.load(str(path), load_external_data=False).opset_import
                if entry.domain in ("", "ai.onnx"))


def run_written(path: Path, fmt: str, example):
    """The written file's outputs on the example, read back with nothing of dlbook."""
    import torch

    if fmt == "torchscript":
        return torch.jit.load(str(path))(*example)
    if fmt == "export":
        return torch.export.load(str(path)).module()(*example)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {entry.name: tensor.numpy() for entry, tensor in zip(session.get_inputs(), example)}
    outputs = [torch.from_numpy(output) for output in session.run(None, feeds)]
    return outputs[0] if len(outputs) == 1 else outputs


def flatten(outputs) -> list:
    if isinstance(outputs, (tuple, list)):
        return [tensor for output in outputs for tensor in flatten(output)]
    return [outputs]


def max_difference(expected, got) -> float:
    pairs = list(zip(flatten(expected), flatten(got)))
    return max(float((a.float() - b.float()).abs().max()) for a, b in pairs) if pairs else 0.0


def quantize(net, example, folder: Path, expected, runs: int) -> dict:
    """Dynamic int8 quantisation (weights stored as int8, activations quantised on the fly) of the Linear layers,
    written as TorchScript beside the float file (in `folder`), with size and latency ratios. Recurrent layers stay
    float: a traced int8 LSTM keeps the example's batch size."""
    import torch
    from torch import nn

    quantized = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
    path = folder / INT8
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(quantized, example), str(path))
        got = torch.jit.load(str(path))(*example)
        float_model = torch.jit.load(str(folder / "model.pt"))
        timings = {name: latency(model, example, runs) for name, model in
                   (("float", float_model), ("int8", torch.jit.load(str(path))))}
    float_bytes, int8_bytes = (folder / "model.pt").stat().st_size, path.stat().st_size
    result = {"bytes": int8_bytes, "size_ratio": int8_bytes / float_bytes,
              "latency_ratio": timings["int8"] / timings["float"],
              "max_abs_difference": max_difference(expected, got)}
    print(f"int8: {float_bytes / 1e6:.2f} MB -> {int8_bytes / 1e6:.2f} MB ({result['size_ratio']:.2f}x the size), "
          f"CPU latency {result['latency_ratio']:.2f}x the float model's ({runs} runs each, a batch of {len(example[0])}), outputs "
          f"within {result['max_abs_difference']:.3g} of the float model's")
    return result


def latency(model, example, runs: int) -> float:
    """The median seconds of one call, after a warm-up call."""
    model(*example)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model(*example)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def describe(path: Path, task, choices: dict, example, takes_pixels: bool, report: dict, ckpt_path) -> None:
    spec = task.data_spec
    inputs = [{"shape": ["batch", *example_input.shape[1:]], "dtype": str(example_input.dtype).removeprefix("torch.")}
              for example_input in example]
    if takes_pixels:
        inputs[0]["values"] = "pixel values 0-255 as float (the normalisation is inside the model)"
    metadata = {"model": choices.get("model"), "data": choices.get("data"), "checkpoint": str(ckpt_path),
                "data_spec": spec.describe(), "inputs": inputs,
                "class_names": list(getattr(spec, "class_names", ()) or getattr(spec, "target_names", ())),
                "vocabulary": list(getattr(spec, "vocabulary", ())), **report}
    write_whole(path, json.dumps(metadata, indent=2) + "\n")


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
def main(cfg: DictConfig) -> None:
    guarded(export, cfg)


if __name__ == "__main__":
    main()
