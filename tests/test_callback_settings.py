"""Callbacks refuse bad settings when they are built, before training, naming the config key."""

from types import SimpleNamespace

import pytest

from dlbook.callbacks.early_stopping import EarlyStopping
from dlbook.callbacks.ema import EMAWeightAveraging
from dlbook.callbacks.explanations import Explanations
from dlbook.callbacks.figures import Figures
from dlbook.callbacks.gradient_check import GradientCheckCallback
from dlbook.callbacks.last_checkpoint import LastCheckpoint
from dlbook.callbacks.sample_grid import SampleGrid
from dlbook.callbacks.sample_quality import FrechetDistance, load_classifier
from dlbook.callbacks.text_samples import TextSamples
from dlbook.callbacks.time_to_target import TimeToTarget
from dlbook.errors import DlbookError


@pytest.mark.parametrize("settings", [{"update_every_n_steps": 0}, {"update_every_n_steps": -1},
                                      {"update_starting_at_step": -5}, {"decay": 1.5}, {"decay": -0.1},
                                      {"decay": "abc"}, {"decay": float("nan")}])
def test_ema_refuses(settings):
    [(name, value)] = settings.items()
    with pytest.raises(DlbookError, match=f"callbacks.ema.{name}="):
        EMAWeightAveraging(**settings)


@pytest.mark.parametrize("settings", [{"patience": -2}, {"patience": "abc"}, {"patience": 1.5},
                                      {"min_delta": -0.1}, {"min_delta": "abc"}, {"min_delta": float("nan")}])
def test_early_stopping_refuses(settings):
    [(name, value)] = settings.items()
    with pytest.raises(DlbookError, match=f"callbacks.early_stopping.{name}="):
        EarlyStopping(monitor="val/loss", **settings)


@pytest.mark.parametrize("settings", [{"max_elements": 0}, {"max_elements": -5}, {"max_elements": "abc"},
                                      {"threshold": -1}, {"threshold": "abc"}, {"seed": "abc"}, {"eps": "abc"}])
def test_gradient_check_refuses(settings):
    [(name, value)] = settings.items()
    with pytest.raises(DlbookError, match=f"callbacks.gradient_check.{name}="):
        GradientCheckCallback(**settings)


@pytest.mark.parametrize("settings", [{"classifier_epochs": 0}, {"classifier_epochs": -1}, {"num_samples": -3},
                                      {"num_samples": 0}, {"num_samples": 1}, {"max_share": "abc"},
                                      {"max_share": -1}, {"max_share": 0}, {"max_share": 1.5}])
def test_sample_quality_refuses(settings, tmp_path):
    [(name, value)] = settings.items()
    with pytest.raises(DlbookError, match=f"callbacks.sample_quality.{name}="):
        FrechetDistance(features="classifier", cache_dir=str(tmp_path), **settings)


def test_sample_quality_names_a_missing_classifier_ckpt(tmp_path):
    with pytest.raises(DlbookError, match="callbacks.sample_quality.classifier_ckpt=.*missing.ckpt does not exist"):
        load_classifier(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("settings", [{"top_k": 0}, {"top_k": -2}, {"top_k": "abc"}, {"temperature": -1},
                                      {"temperature": "abc"}, {"length": 0}, {"length": -5}, {"length": "abc"},
                                      {"seed": "abc"}])
def test_text_samples_refuses(settings):
    [(name, value)] = settings.items()
    with pytest.raises(DlbookError, match=f"callbacks.text_samples.{name}="):
        TextSamples(**settings)


def test_text_samples_refuses_top_k_above_the_vocabulary_at_setup():
    task = SimpleNamespace(generate=None, data_spec=SimpleNamespace(vocab_size=65))
    TextSamples(top_k=65).setup(None, task, "fit")
    with pytest.raises(DlbookError, match="callbacks.text_samples.top_k=66 must be at most 65"):
        TextSamples(top_k=66).setup(None, task, "fit")


def test_explanations_takes_one_method_name():
    assert Explanations(methods="gradcam").methods == ("gradcam",)  # not its letters


@pytest.mark.parametrize("settings", [{"methods": []}, {"num_images": 0}, {"num_images": -2},
                                      {"num_images": "abc"}])
def test_explanations_refuses(settings):
    [(name, value)] = settings.items()
    with pytest.raises(DlbookError, match=f"callbacks.explanations.{name}"):
        Explanations(**settings)


@pytest.mark.parametrize("dpi", [0, -5, "abc"])
def test_figures_refuses_dpi(dpi):
    with pytest.raises(DlbookError, match="callbacks.figures.dpi="):
        Figures(dpi=dpi)


@pytest.mark.parametrize("target", ["abc", float("inf")])
def test_time_to_target_refuses_target(target):
    with pytest.raises(DlbookError, match="callbacks.time_to_target.target="):
        TimeToTarget(target=target)


def test_defaults_are_accepted(tmp_path):
    EMAWeightAveraging(update_starting_at_step=0)
    EarlyStopping(monitor="val/loss", patience=0, min_delta=0)
    GradientCheckCallback(max_elements=None, threshold=1e-7)
    FrechetDistance(features="classifier", cache_dir=str(tmp_path), num_samples=2, max_share=1)
    TextSamples(temperature=0, top_k=1)
    Figures()
    TimeToTarget(target=1)


@pytest.mark.parametrize("callback, name", [(Figures, "figures"), (SampleGrid, "sample_grid"),
                                            (TextSamples, "text_samples"), (Explanations, "explanations"),
                                            (LastCheckpoint, "last_checkpoint")])
def test_a_dirpath_that_is_a_file_is_refused_before_training(callback, name, tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(DlbookError, match=f"callbacks.{name}.dirpath=.*notes.txt is a file; give a folder path"):
        callback(dirpath=str(tmp_path / "notes.txt"))
