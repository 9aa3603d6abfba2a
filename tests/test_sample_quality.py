"""The Fréchet distance and the offline sample-quality callback for GANs."""

import csv

import pytest
import torch

from dlbook.errors import DlbookError
from dlbook.metrics import frechet_distance, penultimate_features
from dlbook.nets.mlp import MLP
from dlbook.train import train


def test_frechet_distance_of_known_gaussians():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=generator)
    assert frechet_distance(a, a).item() == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5])
    assert frechet_distance(a, a + shift).item() == pytest.approx(shift.square().sum().item(), rel=1e-6)
    # N(0, I) against N(0, 4 I) in 4 dimensions: 4 * (1 + 4 - 2 * 2) = 4
    b = 2 * torch.randn(20000, 4, generator=generator)
    assert frechet_distance(a, b).item() == pytest.approx(4.0, rel=0.05)


def test_penultimate_features_are_the_last_linear_layers_input():
    net = MLP((1, 4, 4), 3, hidden_sizes=(5,))
    features = penultimate_features(net, torch.randn(7, 1, 4, 4), batch_size=3)
    assert features.shape == (7, 5) and (features >= 0).all()  # after the ReLU


@pytest.fixture
def classifier_ckpt(run_config, tmp_path):
    train(run_config(["trainer.max_epochs=3"], run_name="classifier"))
    return tmp_path / "classifier" / "checkpoints" / "best.ckpt"


# The MLP GAN with DCGAN's Adam settings, which keep it from collapsing on the small digits set.
STABLE_GAN = [f"model.{net}_optimizer.{key}={value}" for net in ("generator", "discriminator")
              for key, value in (("lr", 2e-4), ("betas", "[0.5,0.999]"))]


def gan_run(run_config, classifier, epochs, run_name="gan"):
    return run_config(["model=gan", *STABLE_GAN, f"trainer.max_epochs={epochs}", "logger=csv",
                       "callbacks=[default,sample_quality]", "++callbacks.rich_progress_bar=null",
                       "++callbacks.model_summary=null", f"callbacks.sample_quality.classifier_ckpt={classifier}",
                       "callbacks.sample_quality.num_samples=300", "monitor=val/frechet_distance", "monitor_mode=min"],
                      run_name=run_name)


def test_gan_samples_get_closer_to_the_data(run_config, tmp_path, classifier_ckpt):
    train(gan_run(run_config, classifier_ckpt, epochs=10))
    with open(tmp_path / "gan" / "csv" / "metrics.csv") as f:
        distances = [float(row["val/frechet_distance"]) for row in csv.DictReader(f) if row["val/frechet_distance"]]
    assert len(distances) == 10 and all(torch.isfinite(torch.tensor(distances)))
    assert min(distances[-4:]) < 0.7 * distances[0], distances
    best = torch.load(tmp_path / "gan" / "checkpoints" / "best.ckpt", weights_only=False)
    callback_state = next(state for key, state in best["callbacks"].items() if key.startswith("ModelCheckpoint"))
    assert callback_state["monitor"] == "val/frechet_distance"
    assert float(callback_state["best_model_score"]) == pytest.approx(min(distances), rel=1e-5)


def test_classifier_must_fit_the_gan(run_config, tmp_path, classifier_ckpt):
    train(run_config(["model=gan", "trainer.max_epochs=1", "++trainer.limit_train_batches=2"], run_name="other"))
    with pytest.raises(DlbookError, match="is not a classifier written by train.py"):
        train(gan_run(run_config, tmp_path / "other" / "checkpoints" / "last.ckpt", epochs=1))


def test_gan_optuna_search_minimises_the_distance():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from dlbook.utils.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=gan_optuna", "callbacks.sample_quality.classifier_ckpt=c"],
                      return_hydra_config=True)
    assert cfg.optimized_metric == cfg.monitor == "val/frechet_distance" and cfg.monitor_mode == "min"
    assert cfg.hydra.sweeper.direction == "minimize" and cfg.callbacks.sample_quality.classifier_ckpt == "c"
    assert cfg.model._target_ == "dlbook.tasks.gan.GANTask"
