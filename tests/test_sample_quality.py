"""The Fréchet distance and the sample-quality callback for GANs: offline in a classifier's features, and FID with
Inception weights in the real file format (random values; nothing is downloaded)."""

import csv
import math
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from torch import nn

from dlbook.callbacks import sample_quality
from dlbook.callbacks.sample_quality import (INCEPTION_FILE, INCEPTION_URL, FrechetDistance, InceptionFeatures,
                                             TrainedClassifierFeatures, choose_features)
from dlbook.data.spec import ImageSpec
from dlbook.errors import DlbookError
from dlbook.metrics import frechet_distance, penultimate_features
from dlbook.nets.classification.mlp import MLP
from dlbook.train import train
from tests.datasets import digits


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    """No Inception weights in torch hub's cache unless a test puts them there: auto mode falls back to a
    classifier whatever this machine has cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


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
    """The GAN family's own sample-quality callback, in a given classifier's features or (classifier=None) in
    those of a classifier it trains itself."""
    return run_config(["model=gan", *STABLE_GAN, f"trainer.max_epochs={epochs}", "logger=csv",
                       f"callbacks.sample_quality.classifier_ckpt={classifier or 'null'}",
                       "callbacks.sample_quality.num_samples=300", "callbacks.sample_quality.every_n_epochs=1",
                       "monitor=val/frechet_distance", "monitor_mode=min"],
                      run_name=run_name)


@pytest.mark.parametrize("classifier", ["given", "trained by the callback"])
def test_gan_samples_get_closer_to_the_data(run_config, tmp_path, request, classifier):
    given = request.getfixturevalue("classifier_ckpt") if classifier == "given" else None
    train(gan_run(run_config, given, epochs=10))
    with open(tmp_path / "gan" / "csv" / "metrics.csv") as f:
        distances = [float(row["val/frechet_distance"]) for row in csv.DictReader(f) if row["val/frechet_distance"]]
    assert len(distances) == 10 and all(torch.isfinite(torch.tensor(distances)))
    assert min(distances[-4:]) < 0.7 * distances[0], distances
    best = torch.load(tmp_path / "gan" / "checkpoints" / "best.ckpt", weights_only=True)
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
    assert cfg.callbacks.sample_quality.features == "classifier"  # not auto, which may find Inception weights
    assert cfg.hydra.sweeper.direction == "minimize" and cfg.callbacks.sample_quality.classifier_ckpt == "c"
    assert cfg.model._target_ == "dlbook.tasks.gan.GANTask"


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """torch-fidelity's Inception-v3 with random weights, saved as the file it downloads, in torch hub's cache
    layout. The convolutions get He initialisation: PyTorch's default shrinks the activations through the ~90
    layers until every distance is about 0."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(0)
    with mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", return_value={}), \
            mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict"):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("torch") / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    return path


def torch_home(weights):
    return str(weights.parents[2])


def test_fid_tells_the_same_images_from_others_and_from_noise(inception_weights, monkeypatch):
    monkeypatch.setattr(sample_quality, "INCEPTION_BATCH", 4)  # several batches per set
    images = torch.from_numpy(digits(16)[0]).permute(0, 3, 1, 2)  # grey, repeated as RGB for Inception
    noise = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    inception = InceptionFeatures(inception_weights)
    inception.load(SimpleNamespace(spec=ImageSpec((1, 16, 16), 10)), "cpu")
    real, other_digits, noise = (inception.features(x, "cpu") for x in (images[:6], images[6:12], noise))
    assert real.shape == (6, 2048)
    same, other, random = (frechet_distance(real, fake).item() for fake in (real, other_digits, noise))
    assert same == pytest.approx(0, abs=1e-6)
    assert random > 10 * other > 0, (same, other, random)


def test_frechet_distance_is_torchmetrics_fid(monkeypatch):
    from torchmetrics.image.fid import _compute_fid

    generator = torch.Generator().manual_seed(0)
    for n in (8, 100):  # fewer samples than features, and more
        a, b = torch.randn(n, 16, generator=generator).double(), torch.rand(n, 16, generator=generator).double()
        expected = _compute_fid(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))
        assert frechet_distance(a, b).item() == pytest.approx(expected.item(), rel=1e-6)


def test_fid_is_logged_during_training(run_config, tmp_path, inception_weights, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", torch_home(inception_weights))  # found by auto, no classifier needed
    _, objects = train(run_config(["model=gan", "trainer.max_epochs=2", "++trainer.limit_train_batches=3",
                                   "logger=csv", "callbacks=[default,sample_quality]",
                                   "++callbacks.rich_progress_bar=null", "++callbacks.model_summary=null",
                                   "callbacks.sample_quality.num_samples=6", "monitor=val/fid", "monitor_mode=min"]))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        values = [float(row["val/fid"]) for row in csv.DictReader(f) if row["val/fid"]]
    assert len(values) == 2 and all(math.isfinite(value) and value >= 0 for value in values), values
    callback = next(c for c in objects["trainer"].callbacks if isinstance(c, FrechetDistance))
    assert callback.extractor.weights == inception_weights
    assert callback.real_features.shape == (6, 2048)  # measured once, kept for the second epoch
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint_state = next(state for key, state in best["callbacks"].items() if key.startswith("ModelCheckpoint"))
    assert checkpoint_state["monitor"] == "val/fid"
    assert float(checkpoint_state["best_model_score"]) == pytest.approx(min(values), rel=1e-5)


def test_auto_chooses_inception_weights_then_the_given_classifier_then_its_own(tmp_path, inception_weights,
                                                                             monkeypatch, empty_torch_home):
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    assert INCEPTION_URL == fidelity.URL_INCEPTION_V3  # the file torch-fidelity would download
    cache = empty_torch_home / "hub" / "checkpoints"
    assert choose_features("auto", "c.ckpt", None).classifier_ckpt == "c.ckpt"
    for features in ("auto", "classifier"):  # no weights, no classifier given: it trains one
        assert isinstance(choose_features(features, None, None), TrainedClassifierFeatures)
    with pytest.raises(DlbookError, match=r"features=inception: FID \(val/fid\) needs Inception weights: "
                                          r"download .* Without them, use features=classifier") as error:
        choose_features("inception", "c.ckpt", None)
    for part in (f"download {INCEPTION_URL} into {cache}/", "inception_weights=<that file>"):
        assert part in str(error.value)
    with pytest.raises(DlbookError, match="inception_weights=.*missing.pth does not exist"):
        choose_features("auto", "c.ckpt", str(tmp_path / "missing.pth"))
    assert choose_features("auto", None, str(inception_weights)).metric == "val/fid"
    assert isinstance(choose_features("classifier", None, str(inception_weights)), TrainedClassifierFeatures)
    with pytest.raises(DlbookError, match="features='fid' is not one of auto, inception, classifier"):
        choose_features("fid", "c.ckpt", None)

    monkeypatch.setenv("TORCH_HOME", torch_home(inception_weights))
    assert choose_features("auto", "c.ckpt", None).weights == inception_weights  # weights first
    with monkeypatch.context() as without_fidelity:
        without_fidelity.setattr(sample_quality.importlib.util, "find_spec", lambda name: None)
        assert choose_features("auto", "c.ckpt", None).metric == "val/frechet_distance"
        with pytest.raises(DlbookError, match=r"needs Inception weights and the torch-fidelity package "
                                              r"\(pip install 'dlbook\[fid\]'\)"):
            choose_features("inception", None, None)


def test_feature_errors_reach_train_as_one_clear_error(run_config, tmp_path, inception_weights, monkeypatch):
    def gan_with_quality(*overrides):
        return run_config(["model=gan", "trainer.max_epochs=1", "callbacks=[default,sample_quality]",
                           "++callbacks.rich_progress_bar=null", "++callbacks.model_summary=null", *overrides])

    with pytest.raises(DlbookError, match="features=inception: FID"):  # no weights in the (empty) cache
        train(gan_with_quality("callbacks.sample_quality.features=inception"))
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(DlbookError, match="Inception weights .*broken.pth could not be loaded"):
        train(gan_with_quality(f"callbacks.sample_quality.inception_weights={broken}"))
    # auto finds the weights, so the metric is val/fid: monitoring the classifier's metric would fail later.
    monkeypatch.setenv("TORCH_HOME", torch_home(inception_weights))
    with pytest.raises(DlbookError, match="monitor=val/frechet_distance, but callbacks.sample_quality logs val/fid "
                                          r"\(FID, Inception weights .*\). Set monitor=val/fid"):
        train(gan_with_quality("callbacks.sample_quality.classifier_ckpt=c.ckpt", "monitor=val/frechet_distance"))


def test_every_gan_run_measures_its_samples_in_a_classifier_it_trains_once(run_config, tmp_path, caplog):
    # No sample-quality settings: conf/family/gan.yaml turns the callback on, and offline it trains a classifier.
    def run(name):
        _, objects = train(run_config(["model=gan", "trainer.max_epochs=2", "logger=csv"], run_name=name))
        extractor = next(c for c in objects["trainer"].callbacks if isinstance(c, FrechetDistance)).extractor
        with open(tmp_path / name / "csv" / "metrics.csv") as f:
            values = [float(row["val/frechet_distance"]) for row in csv.DictReader(f) if row["val/frechet_distance"]]
        return extractor, values

    first, values = run("first")
    assert isinstance(first, TrainedClassifierFeatures) and first.path.parent == tmp_path / "cache" / "feature_extractors"
    assert first.held_out_accuracy > 0.8  # the digits' 10 classes: the features separate them (chance 0.1)
    assert len(values) == 2 and all(math.isfinite(value) and value > 0 for value in values)
    trained_at = first.path.stat().st_mtime_ns
    caplog.clear()
    second, _ = run("second")
    assert second.path == first.path and second.path.stat().st_mtime_ns == trained_at  # loaded, not retrained
    assert "training an MLP" not in caplog.text and second.held_out_accuracy == first.held_out_accuracy
    for name, weights in first.classifier.state_dict().items():
        assert torch.equal(weights, second.classifier.state_dict()[name]), name


def test_training_the_feature_classifier_leaves_the_run_reproducible(run_config):
    def final_weights(overrides, name):
        _, objects = train(run_config(["model=gan", "trainer.max_epochs=2", "++trainer.limit_train_batches=4",
                                       *overrides], run_name=name))
        return objects["model"].generator.state_dict()

    with_quality = final_weights([], "with")
    without = final_weights(["callbacks.sample_quality=null"], "without")
    for name, weights in with_quality.items():
        assert torch.equal(weights, without[name]), name


def test_one_class_data_trains_without_a_measurement_unless_a_classifier_is_asked_for(run_config, tmp_path, caplog):
    from tests.datasets import write_image_folder

    write_image_folder(tmp_path / "faces", classes=(0,), with_test=False)
    gan = ["model=gan", "data=image_folder", f"data.root={tmp_path / 'faces'}", "trainer.max_epochs=1", "logger=csv"]
    _, objects = train(run_config(gan))
    assert "Sample quality is not measured in this run" in caplog.text
    assert "val/frechet_distance" not in objects["trainer"].callback_metrics
    with pytest.raises(DlbookError, match="data has 1 class; give callbacks.sample_quality.inception_weights"):
        train(run_config([*gan, "callbacks.sample_quality.features=classifier"], run_name="asked"))


def measured_epochs(monkeypatch, epochs: int, epoch_seconds: float, cost: float, **settings) -> list[int]:
    """The epochs after which the callback measures, on a clock where each epoch and each measurement take the
    given seconds."""
    clock = [0.0]
    monkeypatch.setattr(sample_quality.time, "perf_counter", lambda: clock[0])
    callback = FrechetDistance(features="classifier", **settings)

    def measure(trainer, pl_module):
        clock[0] += cost
        return torch.tensor(1.0)

    monkeypatch.setattr(callback, "measure", measure)
    measured = []
    task = SimpleNamespace(log=lambda name, value, **kwargs: measured.append(trainer.current_epoch + 1))
    for epoch in range(epochs):
        trainer = SimpleNamespace(is_global_zero=True, current_epoch=epoch, max_epochs=epochs)
        callback.on_train_epoch_start(trainer, task)
        clock[0] += epoch_seconds
        callback.on_train_epoch_end(trainer, task)
    assert callback.train_seconds == pytest.approx(epochs * epoch_seconds)
    assert callback.measure_seconds == pytest.approx(len(measured) * cost)
    return measured


def test_measurements_keep_within_their_share_of_the_training_time(monkeypatch, caplog):
    caplog.set_level("INFO", logger=sample_quality.__name__)
    # Each measurement costs a quarter of an epoch: after the first, one every other epoch keeps them within
    # an eighth of the time; the last epoch is always measured.
    epochs = measured_epochs(monkeypatch, 20, epoch_seconds=1.0, cost=0.25, max_share=0.125)
    assert epochs == [1, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert "measured in 0.2 s (25% of the epoch's 1.0 s)" in caplog.text
    # Cheap measurements are taken after every epoch; a fixed interval ignores the share.
    assert measured_epochs(monkeypatch, 5, epoch_seconds=1.0, cost=0.01) == [1, 2, 3, 4, 5]
    assert measured_epochs(monkeypatch, 7, epoch_seconds=1.0, cost=5.0, every_n_epochs=3) == [3, 6, 7]
    with pytest.raises(DlbookError, match="every_n_epochs=0 must be a positive integer, or null"):
        FrechetDistance(features="classifier", every_n_epochs=0)
