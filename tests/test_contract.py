"""The task contract, once for each task the models use: a run interrupted and resumed ends as one never
interrupted; eval.py reproduces the test metric; the spec types say which data each model takes."""

import functools
import json
from pathlib import Path

import lightning
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class
from omegaconf import OmegaConf

from dlbook.assembly import data_choices_for
from dlbook.eval import evaluate
from dlbook.train import train
from dlbook.utils.config import config_dir
from tests.conftest import compose_run
from tests.test_configs import choices
from tests.test_models import SMOKE, data_overrides

# Each task, by the model whose smoke case stands for it.
CONTRACT = {
    "ClassificationTask": "mlp",
    "SequenceClassificationTask": "rnn_classifier",
    "RegressionTask": "linear_regression",
    "PerceptronTask": "perceptron",
    "MinimizeTask": "minimize",
    "MonteCarloPiTask": "monte_carlo_pi",
    "MetropolisTask": "metropolis",
    "GibbsTask": "gibbs",
    "KMeansTask": "kmeans",
    "PCATask": "pca",
    "SOMTask": "som",
    "GANTask": "gan",
    "VectorGANTask": "sine_gan",
    "StackGANTask": "stackgan",
    "CycleGANTask": "cyclegan",
    "LanguageModelTask": "char_rnn",
    "EmbeddingTask": "word2vec",
    "Seq2SeqTask": "seq2seq",
    "ReconstructionTask": "sparse_ae",
    "VAETask": "cvae",  # its draws of codes must resume in step
    "RBMTask": "rbm",  # persistent chains, kept in checkpoints
    "PretrainedClassificationTask": "dbn",  # interrupted after the pretraining epoch
    "CapsuleTask": "capsnet",
}


@functools.cache
def compose_model(model: str):
    """The model config of `model=<model>`, its family's defaults applied."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=[f"model={model}"]).model


def task_class(model: str) -> type:
    return get_class(compose_model(model)._target_)


# The tasks with a test metric.
TESTED = [task for task, model in CONTRACT.items()
          if task_class(model).test_step is not lightning.LightningModule.test_step]


def test_every_task_has_a_contract_case():
    assert {task_class(model).__name__ for model in choices("model")} == set(CONTRACT)


@pytest.mark.parametrize("task", CONTRACT)
def test_interrupted_and_resumed_run_ends_as_one_never_interrupted(run_config, tmp_path, task):
    model = CONTRACT[task]
    case = SMOKE[model]
    setup = [f"model={model}", *data_overrides(case.data, tmp_path), *case.overrides, "trainer.deterministic=true"]
    uninterrupted, whole = train(run_config(setup, run_name="whole"))
    crash = [*setup, "+callbacks.crash._target_=tests.callbacks.CrashAfterEpoch", "+callbacks.crash.epoch=0"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(run_config(crash, run_name="interrupted"))
    resumed, objects = train(run_config([*setup, "ckpt_path=last"], run_name="interrupted"))
    assert objects["trainer"].global_step == whole["trainer"].global_step
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        assert resumed[name] == pytest.approx(value, abs=1e-5), name
    for name, weights in whole["model"].state_dict().items():
        if isinstance(weights, torch.Tensor) and weights.is_floating_point():  # not a module's extra state
            assert torch.allclose(objects["model"].state_dict()[name], weights, atol=1e-5), name


@pytest.mark.parametrize("task", TESTED)
def test_eval_reproduces_the_test_metric(run_config, tmp_path, task):
    model = CONTRACT[task]
    case = SMOKE[model]
    metrics, _ = train(run_config([f"model={model}", *data_overrides(case.data, tmp_path), *case.overrides]))
    best = json.loads((tmp_path / "run" / "metrics.json").read_text())["best_checkpoint"]
    evaluated, _ = evaluate(compose_run(tmp_path, [f"ckpt_path={best}"], config_name="eval", run_name="eval"))
    tested = {name: value for name, value in metrics.items() if name.startswith("test/")}
    assert tested
    for name, value in tested.items():
        assert evaluated[name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize("model", choices("model"))
def test_the_spec_types_name_the_data_each_model_takes(model):
    """Cheap (no file read, nets built only on fixed specs of the right type), and never empty."""
    accepts = task_class(model).accepts
    fitting, by_files = data_choices_for(compose_model(model))
    assert fitting or by_files
    for data in fitting + by_files:
        data_class = get_class(OmegaConf.load(Path(config_dir()) / "data" / f"{data}.yaml")._target_)
        assert issubclass(data_class.spec_type, accepts), data
    assert SMOKE[model].data in fitting + by_files
