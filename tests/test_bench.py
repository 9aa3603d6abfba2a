"""The benchmark scripts run end to end (tiny settings; the numbers themselves are not checked)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_dcgan_benchmark_prints_both_throughputs_and_their_ratio(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / "dcgan.py"), "--batches", "3",
                             "--repeats", "1", "model.generator.features=8", "model.discriminator.features=8"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    numbers = re.search(r"^\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\(dlbook / plain", result.stdout, re.MULTILINE)
    plain, dlbook, ratio = map(float, numbers.groups())
    # all three are printed to 3 decimals: the ratio of the printed throughputs is off by at most their rounding
    rounding = 5e-4 + (dlbook / plain) * (5e-4 / plain + 5e-4 / dlbook)
    assert plain > 0 and dlbook > 0 and ratio == pytest.approx(dlbook / plain, abs=1.01 * rounding)


def test_speed_options_benchmark_prints_each_option_against_fp32(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / "speed_options.py"), "--batches", "3",
                             "--warmup", "1", "--width", "4", "--batch-size", "8",
                             "--options", "channels_last", "data_on_device"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "skipped data_on_device: it needs a GPU" in result.stdout
    rows = {option: (float(rate), float(ratio)) for option, rate, ratio
            in re.findall(r"^(\w+)\s+([\d.]+)\s+([\d.]+)x", result.stdout, re.MULTILINE)}
    assert set(rows) == {"fp32", "channels_last"}
    (baseline, _), (rate, ratio) = rows["fp32"], rows["channels_last"]
    assert baseline > 0 and ratio == pytest.approx(rate / baseline, rel=1e-2)  # of numbers rounded to 3 places


def test_language_model_benchmark_prints_tokens_per_second_and_their_ratio(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / "language_model.py"), "--repeats", "1",
                             "--characters", "5000", "--words", "3000", "--logger", "csv", "model.net.hidden_size=16",
                             "model.net.embed_dim=16", "data.batch_size=8", "data.seq_length=20"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = re.findall(r"^(\w+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\(dlbook / plain", result.stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["char_rnn", "word_lm"]
    for _, plain, dlbook, ratio in rows:
        plain, dlbook, ratio = float(plain), float(dlbook), float(ratio)
        assert plain > 0 and dlbook > 0 and ratio == pytest.approx(dlbook / plain, abs=2e-3)
