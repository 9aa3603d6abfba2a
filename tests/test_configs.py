"""Every group choice composes, with the documented choices (each model trains in test_models.py)."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from dlbook.utils.config import config_dir

CONF = Path(config_dir())


def choices(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def test_groups_have_the_documented_choices():
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "image_folder", "unpaired_folders"} <= set(choices("data"))
    assert {"softmax_regression", "mlp", "mlp_small", "mnist_cnn", "lenet5", "resnet9", "gan", "lsgan", "wgan",
            "wgan_gp", "cgan", "dcgan", "infogan", "stackgan", "cyclegan"} <= set(choices("model"))
    assert set(choices("scheduler")) == {"none", "step", "multistep", "cosine", "onecycle", "plateau",
                                         "linear_decay"}
    assert set(choices("trainer")) == {"default", "cpu", "gpu", "ddp", "ddp_cpu", "mps"}
    assert set(choices("logger")) == {"wandb", "csv", "tensorboard", "many", "none"}
    assert {"fast", "overfit", "limit", "profile"} <= set(choices("debug"))


@pytest.mark.parametrize("group, choice", [(group, choice) for group in
                                           ("optimizer", "scheduler", "trainer", "logger", "callbacks",
                                            "debug", "experiment", "extras", "paths")
                                           for choice in choices(group)])
def test_every_choice_composes(run_config, group, choice):
    cfg = run_config([f"{group}={choice}"])
    assert cfg.trainer._target_.endswith("Trainer")
    if group == "optimizer":  # a partial to call with the parameters, or none
        assert cfg.optimizer is None if choice == "none" else callable(instantiate(cfg.optimizer))
    if group == "callbacks" and choice == "default":
        assert any(c["_target_"].endswith("ModelCheckpoint") for c in cfg.callbacks.values() if c)


# Experiments not from the books name their source and its reported result instead.
NOT_FROM_BOOKS = {"cifar10_speedrun": ("Myrtle.ai", "94% test accuracy"),
                  "word_lm_ptb_zaremba_small": ("Zaremba", "quote no PTB perplexity")}


def test_experiments_name_their_book_and_result():
    for path in (CONF / "experiment").glob("*.yaml"):
        header = path.read_text().split("defaults:")[0]
        if path.stem in NOT_FROM_BOOKS:
            assert all(words in header for words in NOT_FROM_BOOKS[path.stem]), path.name
            continue
        assert "ch." in header or "exercise" in header or "LeCun" in header, path.name


def test_early_stopping_is_optional(run_config):
    assert "early_stopping" not in run_config().callbacks
    assert run_config(["callbacks=[default,early_stopping]"]).callbacks.early_stopping.monitor == "val/acc"


def test_eval_config_composes(run_config):
    cfg = run_config(["ckpt_path=x.ckpt"], config_name="eval")
    assert cfg.ckpt_path == "x.ckpt" and cfg.task_name == "eval"
