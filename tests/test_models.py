"""Every conf/model choice trains: one smoke run per model on its smallest fitting data, from the registry SMOKE,
and model/data pairs that must be refused are refused with a clear error."""

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from PIL import Image

from dlbook.assembly import build_datamodule, build_task
from dlbook.errors import DlbookError
from dlbook.train import train
from tests.conftest import batches_in
from tests.datasets import (write_cifar10, write_corpus, write_mnist, write_ptb, write_reviews, write_topic_corpus,
                            write_unpaired_folders)
from tests.test_configs import choices

# Run lengths. A classifier must beat chance: Adam at 1e-2, not the default 1e-3, gets each one there in 3 epochs
# of the digits. A generative run takes a few batches and writes sample grids on the way; the sample-quality
# measurement, tested in test_sample_quality.py, would add seconds to each.
CLASSIFIER = ("trainer.max_epochs=3", "optimizer.lr=1e-2")
REGRESSOR = ("trainer.max_epochs=10", "optimizer=sgd", "optimizer.lr=0.05")
GENERATIVE = ("trainer.max_epochs=2", "++trainer.limit_train_batches=6", "callbacks.sample_grid.every_n_batches=4",
              "++callbacks.sample_quality=null")
# 500 chains of 100 transitions, the first 50 of each left out: the start at the mean has been forgotten.
SAMPLER = ("data.steps_per_epoch=2", "trainer.max_epochs=2", "model.chains=500", "model.draws_per_step=50",
           "model.burn_in=50", "model.trace_length=100")
# A small recurrent net, a few epochs of the pattern text at Adam's 1e-2.
LANGUAGE_MODEL = ("trainer.max_epochs=3", "optimizer.lr=1e-2", "model.net.hidden_size=32", "model.net.num_layers=1",
                  "data.seq_length=20", "data.batch_size=8", "callbacks.text_samples.length=20")
# Short binary sequences to count the ones of, at Adam's 1e-2.
SEQUENCES = ("data.num_sequences=256", "data.test_sequences=64", "data.length=8", "trainer.max_epochs=5",
             "optimizer.lr=1e-2")
# A one-block transformer of width 32 and no dropout, Adam at 3e-3.
TRANSFORMER = ("optimizer.lr=3e-3", "model.net.num_layers=1", "model.net.d_model=32", "model.net.heads=2",
               "model.net.d_ff=64", "model.net.dropout=0")
# Word vectors of width 16 on the topic corpus, windows of 2, frequent words subsampled, Adam at 1e-2.
EMBEDDING = ("trainer.max_epochs=3", "optimizer.lr=1e-2", "model.net.embed_dim=16", "data.window=2",
             "data.min_count=1", "data.subsample=1e-2", "data.batch_size=64")
# Reversing 1,000 sequences of 3 to 6 of 6 symbols, small nets, Adam at 1e-2.
REVERSAL = ("data.num_pairs=1000", "data.test_pairs=100", "data.max_length=6", "data.symbols=6", "data.batch_size=32",
            "trainer.max_epochs=4", "optimizer.lr=1e-2")
# Autoencoders on the digits: a few epochs of batches of 16 at Adam's 1e-2.
AUTOENCODER = ("trainer.max_epochs=4", "optimizer.lr=1e-2", "data.batch_size=16")
SMALL_VAE = ("model.net.hidden_sizes=[128]", "model.net.latent_dim=8", "trainer.max_epochs=6")
# A plain CNN of two 8-channel conv blocks and 32 hidden units.
NARROW_CNN = ("model.net.conv_blocks=[{channels:8,pool:2},{channels:8,pool:2}]", "model.net.hidden_sizes=[32]")
SMALL_DCGAN = ("model.generator.features=8", "model.discriminator.features=8", "data.batch_size=16")  # narrow nets
# A narrow CapsNet: 16 conv channels, 4 maps of 4-D primary capsules (144 on 28x28), class capsules of 8-D.
SMALL_CAPSNET = ("model.net.conv_channels=16", "model.net.primary_maps=4", "model.net.primary_dim=4",
                 "model.net.capsule_dim=8", "model.net.decoder_sizes=[32]")


# What a model adds to its family's checks, given the trained task, its train/ metrics and its run directory.
def critic_weights_stay_clipped(task, columns, run_dir):
    assert max(p.abs().max() for p in task.discriminator.parameters()) <= task.clip_value + 1e-7


def gradient_penalty_is_logged(task, columns, run_dir):
    assert all(value >= 0 for value in columns["train/gp"])


def one_row_per_class(task, columns, run_dir):
    last_grid = max((run_dir / "samples").glob("step_??????.png"))
    assert Image.open(last_grid).size == (8 * 10 + 2, 10 * 10 + 2)  # 8 of each of 10 classes, 8x8 digits, 2 px apart


def denoises_below_the_noise(task, columns, run_dir):
    assert columns["train/mse"][-1] < 0.8 * columns["train/noise_mse"][-1]


def activations_move_toward_rho(task, columns, run_dir):
    # The mean code activation starts near 0.5 (sigmoid of small weights) and falls toward rho.
    assert columns["train/penalty"][-1] < columns["train/penalty"][0]


def draws_the_data_shape(task, columns, run_dir):
    images, grid_columns, samples = task.sample(8)
    assert samples.shape[1:] == task.data_spec.input_shape and -1 <= samples.min() and samples.max() <= 1
    assert samples.std() > 0.05  # not one flat image
    assert "samples.png" in {path.name for path in (run_dir / "figures").glob("*.png")}


def draws_reconstructions_and_embeds_capsules(task, columns, run_dir):
    drawn = {path.name for path in (run_dir / "figures").glob("*.png")}
    assert {"reconstructions_val.png", "reconstructions_test.png"} <= drawn
    assert task.features(torch.rand(2, 1, 28, 28)).shape == (2, 10 * 8)  # scripts/embed.py's vectors


def reaches_the_minimum(task, columns, run_dir):
    assert abs(columns["train/x"][-1] - 5) < 1e-2  # x^2 - 10x + 25 from x = 0


@dataclass(frozen=True)
class Smoke:
    """How one model trains in a test: the smallest data choice it fits, overrides that make the run tiny, and
    what the model adds to its family's checks; `slow` for a deep net whose run takes more than a few seconds."""
    data: str
    overrides: tuple[str, ...]
    check: Callable | None = None
    slow: bool = False


SMOKE = {
    "softmax_regression": Smoke("digits", CLASSIFIER),
    "mlp": Smoke("digits", CLASSIFIER),
    "mlp_small": Smoke("digits", CLASSIFIER),
    "mnist_cnn": Smoke("digits", (*CLASSIFIER, "model.net.channels=[8,16]", "model.net.hidden_size=64")),
    "lenet5": Smoke("mnist", CLASSIFIER),
    "resnet9": Smoke("digits", (*CLASSIFIER, "model.net.width=8", "optimizer.lr=3e-3")),
    # The books' plain CNNs and the classic architectures, narrowed; deep ones take seconds a run even so, and are slow
    # (test_vision_nets.py trains a few steps of them in the default suite).
    "cnn_workshop": Smoke("mnist", (*CLASSIFIER, *NARROW_CNN)),
    "cnn_pro_dl": Smoke("digits", (*CLASSIFIER, *NARROW_CNN)),
    "cnn_small_pro_dl": Smoke("mnist", (*CLASSIFIER, *NARROW_CNN, "model.net.separable=true")),
    "cnn_cifar10_tf1": Smoke("digits", (*CLASSIFIER, *NARROW_CNN)),
    "cnn_cifar10_workshop": Smoke("mnist", (*CLASSIFIER, *NARROW_CNN)),
    "alexnet": Smoke("mnist", (*CLASSIFIER, "model.net.width=0.1", "model.net.classifier_width=64",
                               "model.net.dropout=0", "optimizer.lr=3e-3", "trainer.max_epochs=5"), slow=True),
    "vgg": Smoke("cifar10", (*CLASSIFIER, "model.net.depth=11", "model.net.width=8", "model.net.classifier_width=64",
                             "model.net.dropout=0", "optimizer.lr=1e-3", "data.batch_size=32", "trainer.max_epochs=5"),
                 slow=True),
    "resnet": Smoke("digits", (*CLASSIFIER, "model.net.depth=20", "model.net.width=8", "optimizer.lr=3e-3"),
                    slow=True),
    "inception": Smoke("digits", (*CLASSIFIER, "model.net.width=0.1", "optimizer.lr=3e-3"), slow=True),
    "mobilenet": Smoke("mnist", (*CLASSIFIER, "model.net.width_multiplier=0.25"), slow=True),
    "densenet": Smoke("digits", (*CLASSIFIER, "model.net.growth_rate=4", "optimizer.lr=3e-3"), slow=True),
    "xception": Smoke("mnist", (*CLASSIFIER, "model.net.width_multiplier=0.1", "model.net.middle_blocks=1",
                                "optimizer.lr=3e-3"), slow=True),
    "squeezenet": Smoke("digits", (*CLASSIFIER, "data.image_size=16", "model.net.dropout=0", "optimizer.lr=3e-4",
                                    "trainer.max_epochs=6"),
                        slow=True),
    # The cheapest torchvision classifier, from random weights, on the digits at 16x16.
    # slow: the smallest torchvision classifier takes seconds to train; test_transfer.py steps one in the default suite
    "pretrained": Smoke("digits", (*CLASSIFIER, "model.net.name=shufflenet_v2_x0_5", "model.net.weights=null",
                                   "data.image_size=16"), slow=True),
    "capsnet": Smoke("mnist", (*CLASSIFIER, *SMALL_CAPSNET), check=draws_reconstructions_and_embeds_capsules),
    "gan": Smoke("digits", GENERATIVE),
    "lsgan": Smoke("digits", GENERATIVE),
    "wgan": Smoke("digits", GENERATIVE, critic_weights_stay_clipped),
    "cgan": Smoke("digits", GENERATIVE, one_row_per_class),
    "infogan": Smoke("digits", GENERATIVE),
    "dcgan": Smoke("mnist", (*GENERATIVE, *SMALL_DCGAN)),
    "wgan_gp": Smoke("mnist", (*GENERATIVE, *SMALL_DCGAN), gradient_penalty_is_logged),
    "stackgan": Smoke("mnist", (*GENERATIVE, *SMALL_DCGAN, "model.generator.residual_blocks=1")),
    "sine_gan": Smoke("sine", ("trainer.max_epochs=2", "data.num_batches=10")),
    "linear_regression": Smoke("diabetes", REGRESSOR),
    "logistic_regression": Smoke("breast_cancer", CLASSIFIER),
    # One full-batch step an epoch: XOR is learnt in a few hundred at Adam's 0.1; validated and saved rarely.
    "xor_mlp": Smoke("truth_table", ("trainer.max_epochs=200", "optimizer.lr=0.1",
                                     "trainer.check_val_every_n_epoch=50", "callbacks.last_checkpoint=null")),
    "mlp_regressor": Smoke("diabetes", REGRESSOR),
    # Every epoch trains (no stop at zero error), so each has a mean error; AND is learnt in 7 of them.
    "perceptron": Smoke("truth_table", ("data.table=and", "trainer.max_epochs=8", "model.stop_at_error=null")),
    # Samplers and the minimiser take steps, not data: a few of them, two epochs (the contract resumes after one).
    "minimize": Smoke("steps", ("data.steps_per_epoch=75", "trainer.max_epochs=2", "optimizer.lr=0.1",
                                "model.objective.absolute=false"), reaches_the_minimum),
    "monte_carlo_pi": Smoke("steps", ("data.steps_per_epoch=2", "trainer.max_epochs=2", "model.draws_per_step=5000")),
    "metropolis": Smoke("steps", SAMPLER),
    "gibbs": Smoke("steps", SAMPLER),
    # Trained without an optimizer: a few Lloyd steps (and a small elbow sweep), PCA fitted after the first epoch,
    # a small map shown 320 rows an epoch (its rule takes them one at a time).
    "kmeans": Smoke("digits", ("trainer.max_epochs=3", "model.num_clusters=10", "model.tolerance=null",
                               "model.elbow_ks=[1,2,3,4]", "model.elbow_restarts=1")),
    "pca": Smoke("digits", ("trainer.max_epochs=2", "model.n_components=8")),
    "som": Smoke("digits", ("trainer.max_epochs=3", "++trainer.limit_train_batches=5", "model.rows=5",
                            "model.columns=5")),
    "char_rnn": Smoke("text_chars", LANGUAGE_MODEL),
    "word_lm": Smoke("ptb", (*LANGUAGE_MODEL, "model.net.embed_dim=32")),
    "gpt": Smoke("text_chars", (*TRANSFORMER, "trainer.max_epochs=3", "data.seq_length=20", "data.batch_size=8",
                                "callbacks.text_samples.length=20")),
    "word2vec": Smoke("text_corpus", EMBEDDING),
    "doc2vec": Smoke("text_corpus", (*EMBEDDING, "data.sentences=periods")),
    "lstm_mnist": Smoke("digits", (*CLASSIFIER, "model.net.hidden_size=32")),
    "rnn_classifier": Smoke("imdb", (*CLASSIFIER, "data.batch_size=8", "data.max_length=24")),
    "text_cnn": Smoke("imdb", (*CLASSIFIER, "data.batch_size=8", "data.max_length=24", "model.net.num_filters=16",
                               "model.net.embed_dim=16", "trainer.max_epochs=5")),
    "transformer_classifier": Smoke("imdb", (*CLASSIFIER, *TRANSFORMER, "data.batch_size=8", "data.max_length=24")),
    "seq_regressor": Smoke("count_ones", SEQUENCES),
    "conv1d_regressor": Smoke("count_ones", (*SEQUENCES, "model.net.kernel_size=3", "model.net.pool_size=2")),
    "conv_rnn_regressor": Smoke("count_ones", SEQUENCES),
    # Two scalar weights from a small start: a larger rate, and every sequence's count near its mean at first.
    "linear_rnn": Smoke("count_ones", ("data.num_sequences=64", "data.test_sequences=16", "data.length=8",
                                       "trainer.max_epochs=5", "optimizer.lr=0.05", "model.net.init_u=0.5",
                                       "model.net.init_w=0.5")),
    "seq2seq": Smoke("sequence_pairs", (*REVERSAL, "model.net.embed_dim=16", "model.net.hidden_size=32")),
    "transformer": Smoke("sequence_pairs", (*REVERSAL, *TRANSFORMER, "optimizer.lr=3e-3", "trainer.max_epochs=6")),
    "ae": Smoke("digits", AUTOENCODER),
    "deep_ae": Smoke("digits", ("trainer.max_epochs=6", "optimizer.lr=1e-2", "model.net.hidden_sizes=[32,16]",
                                "data.batch_size=16", "model.layerwise_epochs=1")),  # greedy, then the whole net
    "conv_ae": Smoke("digits", (*AUTOENCODER, "model.net.channels=[16,8]")),
    "denoising_ae": Smoke("digits", (*AUTOENCODER, "model.net.channels=[32,16]", "model.corruption.std=0.3"),
                          denoises_below_the_noise),
    "sparse_ae": Smoke("digits", AUTOENCODER, activations_move_toward_rho),
    "contractive_ae": Smoke("digits", AUTOENCODER),
    "vae": Smoke("digits", (*AUTOENCODER, *SMALL_VAE), draws_the_data_shape),
    "cvae": Smoke("digits", (*AUTOENCODER, *SMALL_VAE), draws_the_data_shape),
    "rbm": Smoke("digits", ("trainer.max_epochs=4", "data.batch_size=8", "model.net.num_hidden=64", "model.lr=0.1",
                            "model.net.init_std=0.1", "model.sample_steps=20", "model.persistent=true"),
                 draws_the_data_shape),
    "dbn": Smoke("digits", (*CLASSIFIER, "data.batch_size=16", "model.net.cd_lr=0.1", "model.net.binarize=null")),
    "ae_classifier": Smoke("digits", (*CLASSIFIER, "data.batch_size=16", "model.net.autoencoder.hidden_sizes=[32]")),
    "cyclegan": Smoke("unpaired_folders", (*GENERATIVE, "data.batch_size=8", "model.generator.features=8",
                                           "model.generator.blocks=1", "model.discriminator.features=8",
                                           "model.discriminator.layers=2", "model.pool_size=8",
                                           "model.num_fixed_samples=4")),
}
# Data choices the registry uses: the files each one's test writes, and the overrides that read them.
DATA = {
    "digits": (None, []),  # bundled with scikit-learn
    "diabetes": (None, []),  # likewise
    "breast_cancer": (None, []),  # likewise
    "truth_table": (None, []),  # generated
    "steps": (None, []),  # nothing to read
    "sine": (None, []),  # generated
    "count_ones": (None, []),  # generated
    "sequence_pairs": (None, []),  # generated
    "mnist": (write_mnist, ["data.download=false"]),
    "cifar10": (write_cifar10, ["data.download=false"]),
    "text_chars": (lambda data_dir: write_corpus(data_dir / "tinyshakespeare" / "input.txt"), ["data.download=false"]),
    "ptb": (lambda data_dir: write_ptb(data_dir / "PTB"), ["data.download=false"]),
    "imdb": (lambda data_dir: write_reviews(data_dir, per_class=48), ["data.download=false"]),
    "text_corpus": (lambda data_dir: write_topic_corpus(data_dir / "PTB" / "ptb.train.txt"), ["data.download=false"]),
    "unpaired_folders": (lambda data_dir: write_unpaired_folders(data_dir / "unpaired", size=16),
                         ["data.image_size=16"]),
}


def data_overrides(data: str, tmp_path) -> list[str]:
    write, overrides = DATA[data]
    if write:
        write(tmp_path / "data")
    return [f"data={data}", *overrides]


def train_columns(run_dir: Path) -> dict[str, list[float]]:
    """Each train/ metric of the CSV log, one value per epoch."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return {name: [float(row[name]) for row in rows if row[name]] for name in rows[0] if name.startswith("train/")}


def test_every_model_has_a_smoke_case():
    assert sorted(SMOKE) == choices("model")


@pytest.mark.parametrize("model", [model for model, case in SMOKE.items() if case.data != "digits"])
def test_smoke_data_is_the_smallest_that_fits(run_config, model):
    cfg = run_config([f"model={model}"])
    with pytest.raises(DlbookError, match=f"model={model} does not fit data=digits"):
        build_task(cfg, build_datamodule(cfg).spec, {"model": model, "data": "digits"})


def classifier_learns(cfg, metrics, objects, columns):
    assert columns["train/loss"][-1] < 0.5 * columns["train/loss"][0]
    task, datamodule = objects["model"], objects["datamodule"]
    assert metrics["test/acc"] > max(0.5, 1.5 / datamodule.spec.num_classes)  # 1.5 x chance, or more
    # A batch as the trainer hands it over: images normalised on the device, table rows as they are.
    inputs, labels = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert task(inputs).shape == (len(labels), 1 if task.binary else datamodule.spec.num_classes)


def regressor_beats_the_mean(cfg, metrics, objects, columns):
    assert columns["train/loss"][-1] < 0.7 * columns["train/loss"][0]
    spec = objects["datamodule"].spec
    targets = objects["datamodule"].data_test.tensors[1] * spec.target_std[0]  # deviations from the training mean
    assert metrics["test/rmse"] < 0.8 * targets.square().mean().sqrt().item()  # predicting the training mean


def generative_run_counts_its_batches_and_draws_grids(cfg, metrics, objects, columns):
    task, run_dir = objects["model"], Path(cfg.paths.output_dir)
    batches = cfg.trainer.max_epochs * cfg.trainer.limit_train_batches
    assert task.batches == batches  # one D step a batch, a G step every n_critic
    assert objects["trainer"].global_step == batches + math.ceil(batches / getattr(task, "n_critic", 1))
    assert batches_in(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)) == batches

    images, grid_columns = task.sample_grids()["samples"]
    assert images.shape[1:] == objects["datamodule"].spec.input_shape
    every = cfg.callbacks.sample_grid.every_n_batches
    grids = sorted((run_dir / "samples").glob("step_??????.png"))
    assert [path.name for path in grids] == [f"step_{step:06d}.png"
                                             for step in sorted({*range(every, batches + 1, every), batches})]
    _, height, width = images.shape[1:]
    rows = math.ceil(len(images) / grid_columns)
    assert Image.open(grids[-1]).size == (grid_columns * (width + 2) + 2, rows * (height + 2) + 2)  # 2 px apart


def perceptron_separates_the_table(cfg, metrics, objects, columns):
    assert columns["train/mean_error"][-1] < columns["train/mean_error"][0]
    assert metrics["test/acc"] == 1.0  # chance is 0.5


def vector_gan_counts_its_batches_and_draws_its_points(cfg, metrics, objects, columns):
    task, trainer = objects["model"], objects["trainer"]
    batches = cfg.trainer.max_epochs * trainer.num_training_batches
    assert task.batches == batches and trainer.global_step == batches * (1 + task.train_generator)
    assert task.generate(task.fixed_noise).shape == (len(task.fixed_noise), *objects["datamodule"].spec.input_shape)
    assert {"train/d_real_acc", "train/d_fake_acc"} <= set(columns)
    assert (Path(cfg.paths.output_dir) / "figures" / "samples.png").is_file()


def pi_within_four_standard_errors(cfg, metrics, objects, columns):
    assert abs(metrics["train/pi"] - math.pi) < 4 * metrics["train/pi_stderr"]
    assert metrics["train/samples"] == 4 * 5000


def chain_covariance_near_the_target(cfg, metrics, objects, columns):
    assert metrics["train/cov_max_error"] < 0.1  # of a covariance with unit variances and correlation 0.7
    assert metrics.get("train/acceptance_rate", 0.5) < 0.9 or type(objects["model"]).__name__ == "GibbsTask"


def spread_about_the_training_mean(objects) -> float:
    """The test rows' mean squared distance to the training rows' mean: what one centroid, or no component, leaves."""
    task = objects["model"]
    train_rows, test_rows = task.split_rows("train")[0], task.split_rows("test")[0]
    return (test_rows - train_rows.mean(dim=0)).square().sum(dim=1).mean().item()


def clusters_follow_the_classes(cfg, metrics, objects, columns):
    assert columns["train/distortion"][-1] < columns["train/distortion"][0]
    assert metrics["test/distortion"] < 0.8 * spread_about_the_training_mean(objects)
    assert metrics["test/ari"] > 0.3  # chance is 0
    assert metrics["elbow/k"] in cfg.model.elbow_ks
    assert {"clusters_train.png", "clusters_test.png", "elbow.png"} <= figures_of(cfg)


def projection_keeps_the_spread(cfg, metrics, objects, columns):
    assert columns["train/reconstruction_error"][-1] < columns["train/reconstruction_error"][0]  # fitted after one
    assert metrics["test/reconstruction_error"] < 0.8 * spread_about_the_training_mean(objects)
    assert metrics["pca/n_components"] == cfg.model.n_components
    assert {"projection_train.png", "projection_test.png", "explained_variance.png"} <= figures_of(cfg)


def map_comes_near_the_rows(cfg, metrics, objects, columns):
    assert columns["train/quantization_error"][-1] < columns["train/quantization_error"][0]
    assert metrics["test/quantization_error"] ** 2 < 0.8 * spread_about_the_training_mean(objects)
    assert 0 <= metrics["test/topographic_error"] <= 1
    assert figures_of(cfg) == {"map.png"}


def figures_of(cfg) -> set[str]:
    return {path.name for path in (Path(cfg.paths.output_dir) / "figures").glob("*.png")}


def language_model_uses_its_context(cfg, metrics, objects, columns):
    assert columns["train/loss"][-1] < 0.7 * columns["train/loss"][0]
    # A model of no context scores the perplexity of the training tokens' frequencies.
    train_ids, test_ids = objects["datamodule"].data_train.rows.flatten(), objects["datamodule"].data_test.rows.flatten()
    frequencies = torch.bincount(train_ids, minlength=objects["datamodule"].spec.vocab_size).double() / len(train_ids)
    unigram = frequencies[test_ids].log().mean().neg().exp().item()
    assert metrics["test/perplexity"] < 0.7 * unigram
    samples = Path(cfg.paths.output_dir) / "samples"
    assert (samples / "final.txt").is_file() and len(list(samples.glob("epoch_*.txt"))) == cfg.trainer.max_epochs


def vectors_follow_cooccurrence(cfg, metrics, objects, columns):
    assert columns["train/loss"][-1] < 0.9 * columns["train/loss"][0]
    assert metrics["test/cooccurrence_margin"] > 0.02  # random vectors score 0
    assert "words_pca.png" in figures_of(cfg) and (Path(cfg.paths.output_dir) / "neighbours.txt").is_file()


def writes_targets_beyond_echoing_the_source(cfg, metrics, objects, columns):
    from torchmetrics.text import BLEUScore

    from dlbook.data.pairs import source_tokens, target_tokens

    assert columns["train/loss"][-1] < 0.5 * columns["train/loss"][0]
    spec = objects["datamodule"].spec
    sources, targets = objects["datamodule"].data_test.tensors
    echo = BLEUScore()([" ".join(source_tokens(source, spec)) for source in sources],
                       [[" ".join(target_tokens(target, spec))] for target in targets]).item()
    assert metrics["test/bleu"] > max(0.5, echo + 0.2)  # a reversal's BLEU against the source written as it is
    assert metrics["test/sequence_acc"] > 0.3 and {"attention_val.png", "attention_test.png"} <= figures_of(cfg)


def images_as_the_task_sees_them(objects, split: str) -> torch.Tensor:
    """A split's images in [0, 1], as the task's inputs (an RBM's visible units)."""
    datamodule, task = objects["datamodule"], objects["model"]
    images = datamodule.normalize(getattr(datamodule, f"data_{split}").images).float()
    return task.visible(images.flatten(1)).view(images.shape) if hasattr(task, "visible") else images


def mean_image_mse(objects) -> float:
    """The test images' squared error per pixel from the training images' mean: what a net that ignored its input
    would reach."""
    train_images, test_images = images_as_the_task_sees_them(objects, "train"), images_as_the_task_sees_them(objects, "test")
    return (test_images - train_images.mean(dim=0)).square().mean().item()


def reconstructs_better_than_the_mean_image(cfg, metrics, objects, columns):
    name = "train/loss" if "train/loss" in columns else "train/mse"  # an RBM has no loss; CD lowers its error
    assert columns[name][-1] < 0.8 * columns[name][0]
    assert metrics["test/mse"] < 0.6 * mean_image_mse(objects)
    assert {"reconstructions_val.png", "reconstructions_test.png", "codes_test.png"} <= figures_of(cfg) or (
        type(objects["model"]).__name__ == "RBMTask" and {"filters.png", "samples.png"} <= figures_of(cfg))


def elbo_beats_independent_pixels(cfg, metrics, objects, columns):
    """The negative ELBO falls, below the cross-entropy of pixels drawn independently with the training images'
    means (a VAE whose code says nothing), and the reconstructions beat the mean image."""
    assert columns["train/loss"][-1] < columns["train/loss"][0]
    mean = images_as_the_task_sees_them(objects, "train").mean(dim=0).clamp(1e-4, 1 - 1e-4)
    test_images = images_as_the_task_sees_them(objects, "test")
    independent = torch.nn.functional.binary_cross_entropy(mean.expand_as(test_images), test_images,
                                                           reduction="sum").item() / len(test_images)
    assert metrics["test/loss"] < 0.97 * independent
    assert metrics["test/mse"] < 0.8 * mean_image_mse(objects)
    assert {"reconstructions_test.png", "codes_test.png", "samples.png"} <= figures_of(cfg)


def objective_falls(cfg, metrics, objects, columns):
    assert columns["train/objective"][-1] < 1e-3 * columns["train/objective"][0]


# What every model of a task must show, by task.
FAMILY_CHECKS = {"PerceptronTask": perceptron_separates_the_table, "ClassificationTask": classifier_learns,
                 "SequenceClassificationTask": classifier_learns, "RegressionTask": regressor_beats_the_mean,
                 "VectorGANTask": vector_gan_counts_its_batches_and_draws_its_points,
                 "MinimizeTask": objective_falls, "MonteCarloPiTask": pi_within_four_standard_errors,
                 "MetropolisTask": chain_covariance_near_the_target, "GibbsTask": chain_covariance_near_the_target,
                 "KMeansTask": clusters_follow_the_classes, "PCATask": projection_keeps_the_spread,
                 "SOMTask": map_comes_near_the_rows, "LanguageModelTask": language_model_uses_its_context,
                 "EmbeddingTask": vectors_follow_cooccurrence,
                 "PretrainedClassificationTask": classifier_learns, "CapsuleTask": classifier_learns,
                 "ReconstructionTask": reconstructs_better_than_the_mean_image,
                 "RBMTask": reconstructs_better_than_the_mean_image, "VAETask": elbo_beats_independent_pixels, "Seq2SeqTask": writes_targets_beyond_echoing_the_source,
                 **{task: generative_run_counts_its_batches_and_draws_grids
                    for task in ("GANTask", "StackGANTask", "CycleGANTask")}}


@pytest.mark.parametrize("model", [pytest.param(model, marks=pytest.mark.slow) if case.slow else model
                                   for model, case in SMOKE.items()])
def test_model_trains(run_config, tmp_path, model):
    case = SMOKE[model]
    cfg = run_config([f"model={model}", *data_overrides(case.data, tmp_path), *case.overrides, "logger=csv"])
    metrics, objects = train(cfg)
    run_dir = tmp_path / "run"
    columns = train_columns(run_dir)
    assert columns
    for name, values in columns.items():
        assert len(values) == cfg.trainer.max_epochs, (name, values)  # one per epoch
        assert all(map(math.isfinite, values)) and values[0] != values[-1], (name, values)
    FAMILY_CHECKS[type(objects["model"]).__name__](cfg, metrics, objects, columns)
    if case.check:
        case.check(objects["model"], columns, run_dir)


# Pairs that must stop before training, with what the user reads.
REFUSED = [
    ("lenet5", "digits", "LeNet-5 takes images of 28x28 to 32x32 pixels, the data gives 8x8. Data choices that fit "
                         "model=lenet5: cifar10, fashion_mnist, mnist"),
    ("mlp", "unpaired_folders", r"\(unpaired_images\): it trains on labelled_images or tabular data. Data choices "
                                r"that fit model=mlp: breast_cancer, cifar10, digits, digits_vectors, "
                                r"fashion_mnist, iris, mnist, truth_table, wine; of its kind, shaped by their "
                                r"files: bag_of_words, csv, image_folder"),
    ("gan", "diabetes", r"\(tabular\): it trains on labelled_images data"),  # a table is not images
    ("gan", "sine", r"\(vectors\): it trains on labelled_images data"),  # nor are the points of a curve
    ("sine_gan", "digits", r"\(labelled_images\): it trains on vectors data. Data choices that fit "
                           r"model=sine_gan: sine\."),
    ("perceptron", "diabetes", r"a threshold unit separates two classes; the data has numeric targets. Data "
                               r"choices that fit model=perceptron: breast_cancer, .*truth_table"),
    ("cyclegan", "digits", r"it trains on unpaired_images data. Data choices that fit model=cyclegan: "
                           r"unpaired_folders\."),
    ("metropolis", "digits", r"it trains on steps data. Data choices that fit model=metropolis: steps\."),  # no data
]


@pytest.mark.parametrize("model, data, message", REFUSED)
def test_mismatched_model_and_data_are_refused(run_config, tmp_path, model, data, message):
    cfg = run_config([f"model={model}", *data_overrides(data, tmp_path)])
    with pytest.raises(DlbookError, match=f"model={model} does not fit data={data} .*{message}"):
        choices = {"model": model, "data": data}
        build_task(cfg, build_datamodule(cfg, choices).spec, choices)


@pytest.mark.parametrize("overrides, message", [
    # the data does not fit either: listing the data that fits built the net, whose torch error was a traceback
    (["model=seq_regressor", "data=digits", "model.net.hidden_size=0"],
     "model=seq_regressor cannot be built: torch refused a layer's setting: hidden_size must be greater than zero. "
     "Its model.net settings: cell=rnn, hidden_size=0"),
    (["model=conv1d_regressor", "data=count_ones", "model.net.pool_size=0"],  # was a ZeroDivisionError
     "model.net.pool_size=0 must be a positive integer."),
    # trained without end, or the wrong way, without a word
    (["model=perceptron", "data=truth_table", "model.learning_rate=-1"],
     "model.learning_rate=-1 must be a finite number above 0."),
    (["model=perceptron", "data=truth_table", "model.stop_at_error=-1"],
     "model.stop_at_error=-1 must be a finite number from 0 up, or null to train every epoch."),
    (["model=kmeans", "data=digits", "model.tolerance=-1"],
     "model.tolerance=-1 must be a finite number from 0 up, or null to train every epoch."),
    (["model=kmeans", "data=digits", "model.elbow_restarts=0"], "model.elbow_restarts=0 must be a positive integer"),
    (["model=xor_mlp", "data=truth_table", "model.row_probabilities=-1"],
     "model.row_probabilities=-1 must be a non-negative integer."),
], ids=["seq_regressor_on_images", "conv1d_pool", "perceptron_rate", "perceptron_stop", "kmeans_tolerance",
        "kmeans_restarts", "row_probabilities"])
def test_a_setting_no_run_could_use_is_refused_before_training(run_config, tmp_path, overrides, message):
    with pytest.raises(DlbookError) as refused:
        train(run_config(["trainer.max_epochs=1", *overrides]))
    assert message in str(refused.value)
    assert not (tmp_path / "run" / "checkpoints").exists()
