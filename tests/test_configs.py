"""Every group choice composes, with the documented choices (each model trains in test_models.py)."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from dlbook.utils.config import compose_run, config_dir

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


def readme_commands() -> list[tuple[str, list[str]]]:
    """Each line of the README's bash blocks that runs train.py, eval.py or a Hydra script as (config name,
    overrides): a placeholder (<run>) stands for a value, a sweep takes its first value of each swept key; lines
    with Hydra's own flags (--cfg) are left out."""
    import re
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    hydra_scripts = "|".join(path.stem for path in CONF.glob("*.yaml"))
    parser, commands = OverridesParser.create(), []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in re.sub(r"<[^>]*>", "placeholder", block.replace("\\\n", " ")).splitlines():
            command = re.match(rf"(?:[A-Z_]+=\S+ )*python (?:scripts/)?({hydra_scripts})\.py (.*?)(?:\s+#.*)?$",
                               line.strip())
            arguments = [argument for argument in shlex.split(command[2]) if argument not in ("-m", "--multirun")] \
                if command else []
            if not arguments or any(argument.startswith("-") for argument in arguments):
                continue
            commands.append((command[1], [f"{override.get_key_element()}={next(override.sweep_string_iterator())}"
                                          if override.is_sweep_override() else text
                                          for override, text in zip(parser.parse_overrides(arguments), arguments)]))
    return commands


@pytest.mark.parametrize("config_name, overrides", readme_commands(),
                         ids=lambda value: " ".join(value) if isinstance(value, list) else value)
def test_every_command_in_the_readme_composes(tmp_path, config_name, overrides):
    # a renamed key or choice, or a setting Hydra refuses (an empty mapping is closed to new keys), fails here
    cfg = compose_run(overrides, tmp_path / "run", config_name)
    assert "paths" in cfg
