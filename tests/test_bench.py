"""The benchmark scripts run end to end (tiny settings; the numbers themselves are not checked). Each starts a
process that trains, so all of them are in the slow suite."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_benchmark(tmp_path, script: str, *arguments: str) -> str:
    """scripts/bench/<script> with arguments, its scratch files under tmp_path; its output, once it has succeeded."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / script), *arguments],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_dcgan_benchmark_prints_both_throughputs_and_their_ratio(tmp_path):
    stdout = run_benchmark(tmp_path, "dcgan.py", "--batches", "3", "--repeats", "1", "model.generator.features=8",
                           "model.discriminator.features=8")
    numbers = re.search(r"^\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\(dlbook / plain", stdout, re.MULTILINE)
    plain, dlbook, ratio = map(float, numbers.groups())
    # all three are printed to 3 decimals: the ratio of the printed throughputs is off by at most their rounding
    rounding = 5e-4 + (dlbook / plain) * (5e-4 / plain + 5e-4 / dlbook)
    assert plain > 0 and dlbook > 0 and ratio == pytest.approx(dlbook / plain, abs=1.01 * rounding)


def test_speed_options_benchmark_prints_each_option_against_fp32(tmp_path):
    stdout = run_benchmark(tmp_path, "speed_options.py", "--batches", "3", "--warmup", "1", "--width", "4",
                           "--batch-size", "8", "--options", "channels_last", "data_on_device")
    assert "skipped data_on_device: it needs a GPU" in stdout
    rows = {option: (float(rate), float(ratio)) for option, rate, ratio
            in re.findall(r"^(\w+)\s+([\d.]+)\s+([\d.]+)x", stdout, re.MULTILINE)}
    assert set(rows) == {"fp32", "channels_last"}
    (baseline, _), (rate, ratio) = rows["fp32"], rows["channels_last"]
    assert baseline > 0 and ratio == pytest.approx(rate / baseline, rel=1e-2)  # of numbers rounded to 3 places


def test_language_model_benchmark_prints_tokens_per_second_and_their_ratio(tmp_path):
    stdout = run_benchmark(tmp_path, "language_model.py", "--repeats", "1", "--characters", "5000", "--words", "3000",
                           "--logger", "csv", "model.net.hidden_size=16", "model.net.embed_dim=16", "data.batch_size=8",
                           "data.seq_length=20")
    rows = re.findall(r"^(\w+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\(dlbook / plain", stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["char_rnn", "word_lm"]
    for _, plain, dlbook, ratio in rows:
        plain, dlbook, ratio = float(plain), float(dlbook), float(ratio)
        assert plain > 0 and dlbook > 0 and ratio == pytest.approx(dlbook / plain, abs=2e-3)


def test_imdb_pipeline_benchmark_prints_the_cache_and_the_pipelines_share(tmp_path):
    stdout = run_benchmark(tmp_path, "imdb_pipeline.py", "--reviews", "200", "--words", "40", "model.net.hidden_size=8",
                           "data.batch_size=32")
    row = re.search(r"^\s*200\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", stdout, re.MULTILINE)
    first, cached, epoch, batches, share = map(float, row.groups())
    assert min(first, cached, epoch, batches) > 0
    # of numbers printed to 3 and 4 decimals: the ratio of the printed ones is off by at most their rounding
    rounding = 5e-5 + 5e-5 / epoch + batches * 5e-4 / epoch ** 2
    assert share == pytest.approx(batches / epoch, abs=1.01 * rounding)


def test_dcgan_benchmark_prints_the_ratio_with_sample_quality_on(tmp_path):
    stdout = run_benchmark(tmp_path, "dcgan.py", "--sample-quality", "--batches", "3", "--epochs", "2", "--repeats",
                           "1", "model.generator.features=8", "model.discriminator.features=8")
    plain, quality, ratio = map(float, re.search(r"^\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\(dlbook with sample quality",
                                                 stdout, re.MULTILINE).groups())
    assert plain > 0 and quality > 0 and ratio == pytest.approx(quality / plain, abs=2e-3)


def test_startup_benchmark_prints_each_cost_against_its_baseline(tmp_path):
    stdout = run_benchmark(tmp_path, "startup.py", "--repeats", "1", "--images", "500")
    rows = dict(re.findall(r"^(\S.*?)\s+[\d.]+\s+([\d.]+)x$", stdout, re.MULTILINE))
    assert rows["import torch, lightning"] == "1.00" and float(rows["train.py debug=fast, whole run"]) > 0
    outside = re.findall(r"^(plain script|train\.py logger=\w+).*?([\d.]+)\s+([\d.]+)x$", stdout, re.MULTILINE)
    assert [name for name, _, _ in outside] == ["plain script", "train.py logger=csv", "train.py logger=wandb"]
    assert outside[0][2] == "1.00" and "W&B offline adds" in stdout


def test_overhead_benchmark_times_a_classifier_and_an_autoencoder_against_their_loops(tmp_path):
    stdout = run_benchmark(tmp_path, "overhead.py", "--models", "mlp", "ae", "--repeats", "1", "--logger", "csv",
                           "--images", "1000")
    rows = re.findall(r"^(\w+)" + r"\s+([\d.]+)" * 6 + "$", stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["mlp", "ae"]
    for _, *numbers in rows:
        plain, lightning, dlbook, ratio, lightning_ratio, dlbook_ratio = map(float, numbers)
        assert min(plain, lightning, dlbook) > 0
        assert ratio == pytest.approx(dlbook / plain, abs=2e-3)
        assert lightning_ratio == pytest.approx(lightning / plain, abs=2e-3)
        assert dlbook_ratio == pytest.approx(dlbook / lightning, abs=2e-3)
