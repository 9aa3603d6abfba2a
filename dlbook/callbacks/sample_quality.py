"""A sample-quality metric for GANs: the Fréchet distance between generated and real training images, measured
in the features of Inception-v3 (FID: torchmetrics' FID network with torch-fidelity's weights, stored on this
machine) or, offline, of a classifier of the same data: one trained with dlbook, or else one this callback
trains itself and keeps for later runs. The two kinds give values on different scales, so they are logged under
different names."""

import hashlib
import importlib.util
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch

from dlbook.data.cache import default_cache_dir
from dlbook.errors import DlbookError, check_count, check_number
from dlbook.metrics import frechet_distance, penultimate_features

log = logging.getLogger(__name__)

FEATURES = ("auto", "inception", "classifier")
# What torch-fidelity (0.3, 0.4) downloads into torch hub's cache when given no weights file.
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
INCEPTION_BATCH = 50  # images per Inception forward pass: at 299 px this bounds the memory, not the sample size


class FrechetDistance(L.Callback):
    """After the first epoch, then as often as `max_share` of the time spent in training epochs allows (or every
    `every_n_epochs` epochs, when given) and after the last, on global rank 0 only, logs the Fréchet distance
    (lower is better) between `num_samples` generated and as many real training images (their features computed
    once, in setup), in the features of

    - features=inception: Inception-v3, as `val/fid`. The weights file is `inception_weights`, else
      INCEPTION_FILE in torch hub's cache (`$TORCH_HOME/hub/checkpoints/`); nothing is downloaded.
    - features=classifier: a classifier of the GAN's data, as `val/frechet_distance`: `classifier_ckpt`, a
      checkpoint written by train.py for images of the same shape (e.g. `python train.py model=mnist_cnn
      data=mnist` for MNIST GANs), or else the 512-256-128 MLP of `model=mlp` trained here for
      `classifier_epochs` on the GAN's training images and kept in `<cache_dir>/feature_extractors/` (never in
      the data folder, which may be read-only) for the next run on the same data.
    - features=auto: Inception when its weights file is found, else the classifier; for data of one class, which
      no classifier can be trained on, nothing is measured (with a warning).

    Each measurement's time is logged with its share of the epoch; when training ends, the measurements' total
    and its share of the time spent in training epochs (`measure_seconds`, `train_seconds`).
    """

    def __init__(self, features: str = "auto", classifier_ckpt: str | None = None,
                 inception_weights: str | None = None, num_samples: int = 1000, every_n_epochs: int | None = None,
                 max_share: float = 0.1, classifier_epochs: int = 3, cache_dir: str | None = None):
        if every_n_epochs is not None:
            check_count("callbacks.sample_quality.every_n_epochs", every_n_epochs,
                        note=", or null to measure as often as max_share allows")
        # A classifier trained for no epoch would give features that measure nothing, and be kept for later runs.
        check_count("callbacks.sample_quality.classifier_epochs", classifier_epochs)
        # The distance compares the features' covariances, which need two samples (one divides 0 by 0).
        check_count("callbacks.sample_quality.num_samples", num_samples, least=2,
                    note=": the Fréchet distance compares the covariances of the samples' features")
        share = (", above 0 (the share of the time spent in training epochs that measuring may take; "
                 "every_n_epochs=1 measures after every epoch)")
        check_number("callbacks.sample_quality.max_share", max_share, 0, 1, note=share)
        if max_share == 0:
            raise DlbookError(f"callbacks.sample_quality.max_share=0 must be a finite number from 0 to 1{share}.")
        self.features = features
        self.extractor = choose_features(features, classifier_ckpt, inception_weights, classifier_epochs, cache_dir)
        self.real_features = None
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.max_share = max_share
        self.measurements, self.measure_seconds, self.train_seconds, self.last_cost = 0, 0.0, 0.0, 0.0

    @property
    def metric(self) -> str:
        return self.extractor.metric

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not hasattr(pl_module, "sample_inputs"):
            raise DlbookError(f"callbacks.sample_quality measures a GAN's samples; {type(pl_module).__name__} "
                              f"has none. Remove it with callbacks.sample_quality=null")
        classes = trainer.datamodule.spec.num_classes
        if isinstance(self.extractor, TrainedClassifierFeatures) and classes < 2:
            message = (f"callbacks.sample_quality would train a classifier of the data for its features, but the "
                       f"data has {classes} class; give callbacks.sample_quality.inception_weights or classifier_ckpt")
            if self.features != "auto":
                raise DlbookError(f"{message}, or remove the callback with callbacks.sample_quality=null.")
            log.warning(f"{message}. Sample quality is not measured in this run.")
            self.extractor = None
            return
        # The metric's name depends on the features found (auto), so a monitor of the other name fails here
        # rather than after the first epoch.
        for callback in trainer.callbacks:
            monitor = getattr(callback, "monitor", None)
            if monitor in (InceptionFeatures.metric, ClassifierFeatures.metric) and monitor != self.metric:
                other = "classifier" if monitor == ClassifierFeatures.metric else "inception"
                raise DlbookError(f"monitor={monitor}, but callbacks.sample_quality logs {self.metric} "
                                  f"({self.extractor.describe()}). Set monitor={self.metric} (and optimized_metric "
                                  f"in a sweep), or callbacks.sample_quality.features={other}.")
        error = None
        if trainer.is_global_zero:  # the model is not on its device yet: the strategy's device is where it goes
            try:
                self.extractor.load(trainer.datamodule, trainer.strategy.root_device)
            except DlbookError as failure:
                error = str(failure)
        error = trainer.strategy.broadcast(error, src=0)  # every process stops, none is left waiting for rank 0
        if error:
            raise DlbookError(error)
        if trainer.is_global_zero and self.real_features is None:  # the same real images every time
            real = trainer.datamodule.data_train.images
            real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:self.num_samples]]
            self.real_features = self.extractor.features(real, trainer.strategy.root_device)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.extractor is None or not trainer.is_global_zero:
            return
        epoch_seconds = time.perf_counter() - self.epoch_started
        self.train_seconds += epoch_seconds
        epoch = trainer.current_epoch + 1
        if not self.due(epoch, trainer.max_epochs):
            return
        started = time.perf_counter()
        distance = self.measure(trainer, pl_module)
        value = distance.item()  # waits for the device, so the time below is the measurement's
        self.last_cost = time.perf_counter() - started
        self.measure_seconds += self.last_cost
        self.measurements += 1
        pl_module.log(self.metric, distance, rank_zero_only=True)
        log.info(f"Sample quality after epoch {epoch}: {self.metric} {value:.4g}, measured in {self.last_cost:.1f} s "
                 f"({self.last_cost / epoch_seconds:.0%} of the epoch's {epoch_seconds:.1f} s)")

    def due(self, epoch: int, max_epochs: int) -> bool:
        """Whether to measure after this epoch: the last one always; else every `every_n_epochs`, or when unset,
        after the first and whenever the measurements, one more included, stay within `max_share` of the time
        spent in training epochs."""
        if epoch == max_epochs:
            return True
        if self.every_n_epochs is not None:
            return epoch % self.every_n_epochs == 0
        return not self.measurements or self.measure_seconds + self.last_cost <= self.max_share * self.train_seconds

    def on_train_end(self, trainer, pl_module) -> None:
        if self.measurements:
            log.info(f"Sample quality: measured {self.measurements} times in {self.measure_seconds:.1f} s, "
                     f"{self.measure_seconds / self.train_seconds:.0%} of the {self.train_seconds:.1f} s spent in "
                     f"training epochs")

    def measure(self, trainer, pl_module) -> torch.Tensor:
        with seeded_aside():  # the same noise every time
            fake = pl_module.generate(*pl_module.sample_inputs(len(self.real_features)))
        fake = ((fake.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # [-1, 1] back to pixels
        return frechet_distance(self.real_features, self.extractor.features(fake, pl_module.device)).float()


class ClassifierFeatures:
    metric = "val/frechet_distance"

    def __init__(self, classifier_ckpt: str):
        self.classifier_ckpt = classifier_ckpt
        self.classifier = self.classifier_data = None

    def describe(self) -> str:
        return f"the features of the classifier {self.classifier_ckpt}"

    def load(self, datamodule, device) -> None:
        data_spec = datamodule.spec
        if self.classifier is None:
            self.classifier, self.classifier_data = load_classifier(Path(self.classifier_ckpt))
        if self.classifier_data.spec.input_shape != data_spec.input_shape:
            raise DlbookError(
                f"callbacks.sample_quality.classifier_ckpt={self.classifier_ckpt} classifies "
                f"{self.classifier_data.spec.describe()} images, the GAN makes {data_spec.describe()}; "
                f"train a classifier on the GAN's data.")

    def features(self, images: torch.Tensor, device) -> torch.Tensor:
        """uint8 images -> N x D features."""
        self.classifier.to(device)
        return penultimate_features(self.classifier, self.classifier_data.normalize(images.to(device)))


class TrainedClassifierFeatures(ClassifierFeatures):
    """The offline fallback: model=mlp's net trained on the GAN's own training images (10% held out to report its
    accuracy), saved in <cache_dir>/feature_extractors/ under a fingerprint of those images, and loaded from there
    by later runs on the same data. On the digits the distance in its
    features fell to 0.4x over 10 epochs of the MLP GAN, where a small ResNet-9's (max-pooled) hardly moved."""

    HIDDEN_SIZES = (512, 256, 128)

    def __init__(self, epochs: int, cache_dir: str | None = None):
        self.epochs = epochs
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.classifier = self.classifier_data = self.path = self.held_out_accuracy = None

    def describe(self) -> str:
        return f"the features of an MLP trained on the GAN's data ({self.path or 'when training starts'})"

    def load(self, datamodule, device) -> None:
        from dlbook.nets.classification.mlp import MLP

        if self.classifier is not None:
            return
        spec, images = datamodule.spec, datamodule.data_train.images
        self.classifier_data = datamodule
        fingerprint = hashlib.sha1(images[::max(1, len(images) // 512)].cpu().numpy().tobytes()).hexdigest()[:12]
        self.path = (self.cache_dir / "feature_extractors" / f"{datamodule.name}-{len(images)}-"
                     f"{fingerprint}-{datamodule.normalization}-mlp-{self.epochs}epochs.pt")
        with seeded_aside():
            self.classifier = MLP(spec.input_shape, spec.num_classes, self.HIDDEN_SIZES).to(device)
            if not self.load_kept(device):
                self.train(datamodule, device)
        self.classifier.eval()

    def load_kept(self, device) -> bool:
        """Load the classifier a previous run kept; False if there is none, or it cannot be read."""
        try:
            saved = torch.load(self.path, map_location=device, weights_only=True)
            self.classifier.load_state_dict(saved["state_dict"])
        except FileNotFoundError:
            return False
        except Exception as error:  # e.g. a file another process is writing
            log.warning(f"Training the feature classifier again: {self.path} could not be read ({error})")
            return False
        self.held_out_accuracy = saved["held_out_accuracy"]
        log.info(f"Sample quality: {self.metric} in the features of {self.path} "
                 f"({self.held_out_accuracy:.1%} held-out accuracy)")
        return True

    def train(self, datamodule, device) -> None:
        images, labels = datamodule.data_train.images, datamodule.data_train.labels
        log.info(f"Sample quality: training an MLP on the {len(images)} training images for its features "
                 f"({self.epochs} epochs), once for this data")

        def batch(index):
            index = index.to(images.device)
            return datamodule.normalize(images.index_select(0, index).to(device)), labels[index].to(device)

        order = torch.randperm(len(images))
        held_out, training = order[:max(1, len(order) // 10)], order[max(1, len(order) // 10):]
        optimizer = torch.optim.Adam(self.classifier.parameters(), lr=2e-3)
        self.classifier.train()
        for _ in range(self.epochs):
            for index in training[torch.randperm(len(training))].split(128):
                inputs, targets = batch(index)
                loss = torch.nn.functional.cross_entropy(self.classifier(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self.classifier.eval()
        with torch.no_grad():
            correct = sum((self.classifier(inputs).argmax(1) == targets).sum().item()
                          for inputs, targets in map(batch, held_out.split(512)))
        self.held_out_accuracy = correct / len(held_out)
        log.info(f"Sample quality: the feature classifier reaches {self.held_out_accuracy:.1%} held-out accuracy; "
                 f"kept in {self.path}")
        try:  # written aside and renamed, so another run never reads half a file
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
            torch.save({"state_dict": self.classifier.state_dict(), "held_out_accuracy": self.held_out_accuracy},
                       partial)
            os.replace(partial, self.path)
        except OSError as error:  # an unwritable cache folder: the next run trains it again
            log.warning(f"Could not keep the feature classifier in {self.path} ({error})")


class InceptionFeatures:
    metric = "val/fid"

    def __init__(self, weights: Path):
        self.weights = weights
        self.net = None

    def describe(self) -> str:
        return f"FID, Inception weights {self.weights}"

    def load(self, datamodule, device) -> None:
        data_spec = datamodule.spec
        if data_spec.input_shape[0] not in (1, 3):
            raise DlbookError(f"FID reads grey or RGB images, the GAN makes {data_spec.describe()}; "
                              f"use callbacks.sample_quality.features=classifier.")
        if self.net is not None:
            return
        from torchmetrics.image.fid import NoTrainInceptionV3

        try:
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=str(self.weights))
        except Exception as error:  # a truncated or foreign file
            raise DlbookError(f"The Inception weights {self.weights} could not be loaded ({type(error).__name__}: "
                              f"{error}); {inception_instructions()}") from error
        log.info(f"Sample quality: FID ({self.metric}) with the Inception weights {self.weights}")

    @torch.no_grad()
    def features(self, images: torch.Tensor, device) -> torch.Tensor:
        """uint8 images -> N x 2048 features; the net resizes them to 299 px, grey ones are repeated as RGB."""
        self.net.to(device)
        batches = images.split(INCEPTION_BATCH)
        return torch.cat([self.net(batch.to(device).expand(-1, 3, -1, -1)) for batch in batches])


@contextmanager
def seeded_aside(seed: int = 0):
    """Random numbers from `seed`, with the run's own CPU and CUDA random streams as they were afterwards."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        yield


def choose_features(features: str, classifier_ckpt: str | None, inception_weights: str | None,
                    classifier_epochs: int = 3, cache_dir: str | None = None):
    if features not in FEATURES:
        raise DlbookError(f"callbacks.sample_quality.features={features!r} is not one of {', '.join(FEATURES)}.")
    if features != "classifier":
        weights = find_inception_weights(inception_weights)
        fidelity_installed = importlib.util.find_spec("torch_fidelity") is not None
        if weights and fidelity_installed:
            return InceptionFeatures(weights)
        if features == "inception":
            install = "" if fidelity_installed else " and the torch-fidelity package (pip install 'dlbook[fid]')"
            raise DlbookError(f"callbacks.sample_quality.features=inception: FID ({InceptionFeatures.metric}) needs "
                              f"Inception weights{install}: {inception_instructions()} Without them, use "
                              f"features=classifier (see README, GANs).")
    if classifier_ckpt:
        return ClassifierFeatures(classifier_ckpt)
    return TrainedClassifierFeatures(classifier_epochs, cache_dir)


def find_inception_weights(inception_weights: str | None) -> Path | None:
    """The given weights file (which must exist), else torch-fidelity's file in torch hub's cache, if there."""
    if inception_weights:
        path = Path(inception_weights).expanduser()
        if not path.is_file():
            raise DlbookError(f"callbacks.sample_quality.inception_weights={inception_weights} does not exist; "
                              f"{inception_instructions()}")
        return path
    cached = hub_weights_path()
    return cached if cached.is_file() else None


def hub_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def inception_instructions() -> str:
    return (f"download {INCEPTION_URL} into {hub_weights_path().parent}/ (torch hub's cache; TORCH_HOME moves it), "
            f"or give callbacks.sample_quality.inception_weights=<that file>.")


def load_classifier(path: Path):
    """The net and (unloaded) datamodule of a classifier checkpoint, rebuilt from the config saved in it."""
    from dlbook.tasks.classification import ClassificationTask
    from dlbook.assembly import restore_task
    from dlbook.utils.checkpoints import check_checkpoint

    checkpoint = check_checkpoint(path, "callbacks.sample_quality.classifier_ckpt",
                                  "Give the best.ckpt of a classifier trained with dlbook on the GAN's data, or null "
                                  "to have one trained here.")
    task, datamodule, choices = restore_task(checkpoint, "callbacks.sample_quality")
    if not isinstance(task, ClassificationTask):
        raise DlbookError(f"callbacks.sample_quality.classifier_ckpt={path} is not a classifier written by train.py.")
    log.info(f"Sample quality measured in the features of {path} ({choices.get('model')})")
    return task.net.eval(), datamodule
