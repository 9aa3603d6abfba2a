"""The models trained without an optimizer: k-means recovers well-separated blobs and its elbow finds their
number, PCA is numpy's SVD, and a self-organising map orders itself on the lattice."""

import csv
import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.metrics import adjusted_rand_score

from dlbook.data.synthetic import colors
from dlbook.data.tabular import Table
from dlbook.errors import DlbookError
from dlbook.nets.unsupervised.kmeans import elbow, fit_kmeans
from dlbook.nets.unsupervised.pca import PCA
from dlbook.tasks.clustering import adjusted_rand_index
from dlbook.train import train

QUIET = ("logger=csv", "callbacks.figures=null")


def column(run_dir, name: str) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [float(row[name]) for row in csv.DictReader(f) if row.get(name)]


def circle_of_blobs(centers: int, generator: torch.Generator, per_blob: int = 60) -> Table:
    """Blobs of std 1 on a circle of radius 10: every pair of neighbouring centres 2 x 10 x sin(pi / centers) >=
    11 stds apart for up to five blobs."""
    angles = torch.arange(centers) * 2 * math.pi / centers
    middles = 10 * torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.arange(centers * per_blob) % centers
    return Table(middles[labels] + torch.randn(len(labels), 2, generator=generator), labels, ("x1", "x2"),
                 tuple(map(str, range(centers))), num_classes=centers)


def test_kmeans_recovers_well_separated_blobs(run_config, tmp_path):
    cfg = run_config(["model=kmeans", "data=synthetic", "data.dataset=blobs", "data.num_samples=300",
                      "data.options={centers: 4, cluster_std: 0.3}", "data.generation_seed=0",
                      "model.num_clusters=4", "model.tolerance=null", "trainer.max_epochs=4", "logger=csv"])
    metrics, objects = train(cfg)
    datamodule = objects["datamodule"]
    rows = datamodule.data_train.tensors[0].numpy()
    distortion = column(tmp_path / "run", "train/distortion")
    assert len(distortion) == 4 and distortion[-1] < distortion[0]  # k-means++ seeds, then Lloyd's steps
    assert metrics["test/ari"] > 0.99 and metrics["val/ari"] > 0.99
    # Full-batch Lloyd over batches is scikit-learn's k-means: the same SSE on the training rows.
    sse = objects["model"].kmeans(torch.from_numpy(rows))[1].sum().item()
    assert sse == pytest.approx(SklearnKMeans(4, n_init=10, random_state=0).fit(rows).inertia_, rel=1e-4)
    assert {path.name for path in (tmp_path / "run" / "figures").glob("*.png")} == {"clusters_train.png",
                                                                                   "clusters_test.png"}


@pytest.mark.parametrize("centers", [2, 3, 4, 5])
def test_the_elbow_is_the_number_of_blobs(centers):
    generator = torch.Generator().manual_seed(centers)
    table = circle_of_blobs(centers, generator)
    ks = list(range(1, 11))  # the sweep reaching twice the blobs, as the rule needs
    sse = [fit_kmeans(table.features, k, generator, restarts=5)[1] for k in ks]  # the model's elbow_restarts
    assert all(later < earlier for earlier, later in zip(sse[:centers], sse[1:centers]))
    assert elbow(ks, sse) == centers


def test_elbow_rule_and_its_checks():
    assert elbow([1, 2, 3, 4, 5], [100.0, 60.0, 10.0, 8.0, 7.0]) == 3
    assert elbow([1, 2, 3], [5.0, 5.0, 5.0]) == 1  # a flat curve: one cluster explains as much as three
    table = torch.tensor([[5, 0], [1, 4], [0, 3]])  # clusters x classes
    clusters = np.repeat([0, 1, 1, 2], [5, 1, 4, 3])
    true = np.repeat([0, 0, 1, 1], [5, 1, 4, 3])
    assert adjusted_rand_index(table) == pytest.approx(adjusted_rand_score(true, clusters))


def test_kmeans_refuses_a_bad_sweep(run_config):
    with pytest.raises(DlbookError, match=r"model.elbow_ks=\[3, 2, 1\] must be three or more distinct"):
        train(run_config(["model=kmeans", "model.elbow_ks=[3,2,1]"]))


def test_pca_is_numpys_svd_of_the_centred_training_rows(run_config, tmp_path):
    metrics, objects = train(run_config(["model=pca", "data=digits", "model.n_components=5", "trainer.max_epochs=1",
                                         *QUIET]))
    task, datamodule = objects["model"], objects["datamodule"]
    rows = datamodule.normalize(datamodule.data_train.tensors[0]).flatten(1).double().numpy()
    _, singular_values, axes = np.linalg.svd(rows - rows.mean(axis=0), full_matrices=False)
    components = task.pca.components[:5].double().numpy()
    signs = np.sign((components * axes[:5]).sum(axis=1))  # each axis is only defined up to its sign
    assert np.allclose(components, signs[:, None] * axes[:5], atol=1e-3)
    ratios = singular_values ** 2 / (singular_values ** 2).sum()
    assert [metrics[f"pca/explained_variance_ratio.{i}"] for i in range(5)] == pytest.approx(ratios[:5], rel=1e-3)
    assert metrics["pca/explained_variance"] == pytest.approx(ratios[:5].sum(), rel=1e-3)
    # The training rows' reconstruction error is the variance of the axes left out.
    left_out = (singular_values[5:] ** 2).sum() / len(rows)
    assert column(tmp_path / "run", "train/reconstruction_error")[-1] > left_out  # the first epoch: unfitted
    errors = task.reconstruction_errors(torch.from_numpy(rows).float()).double().mean().item()
    assert errors == pytest.approx(left_out, rel=1e-3)
    images = datamodule.normalize(datamodule.data_test.tensors[0][:3])
    assert task.inverse_transform(task.transform(images)).shape == images.shape


def test_pca_keeps_as_many_components_as_keep_info_asks():
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(200, 6, generator=generator) * torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.1]) + 4
    variance, values = PCA(6, n_components=None, keep_info=0.9), PCA(6, None, 0.5, center=False,
                                                                   info="singular_values")
    variance.fit(rows)
    values.fit(rows)
    centred = torch.linalg.svdvals((rows - rows.mean(dim=0)).double()).square()
    assert int(variance.kept) == int((centred.cumsum(0) / centred.sum() < 0.9).sum()) + 1 == 3
    singular = torch.linalg.svdvals(rows.double())
    assert int(values.kept) == int((singular.cumsum(0) / singular.sum() < 0.5).sum()) + 1
    full = PCA(6, n_components=6)
    full.fit(rows)
    assert torch.allclose(full.inverse_transform(full.transform(rows)), rows, atol=1e-4)
    with pytest.raises(DlbookError, match="set exactly one of them"):
        PCA(6, n_components=2, keep_info=0.5)


def test_som_orders_colours_on_its_lattice(run_config, tmp_path):
    cfg = run_config(["model=som", "data=synthetic", "data.dataset=colors", "data.num_samples=100",
                      "data.scaling=minmax", "model.rows=8", "model.columns=8", "model.radius=4",
                      "trainer.max_epochs=15", "data.batch_size=100", *QUIET])
    metrics, objects = train(cfg)
    errors = column(tmp_path / "run", "train/quantization_error")
    assert len(errors) == 15 and errors[-1] < 0.5 * errors[0]
    som = objects["model"].som
    train_rows, test_rows = (split.tensors[0] for split in (objects["datamodule"].data_train,
                                                           objects["datamodule"].data_test))
    one_unit = (test_rows - train_rows.mean(dim=0)).norm(dim=1).mean().item()  # a map of one unit at the mean
    assert metrics["test/quantization_error"] < 0.5 * one_unit
    assert metrics["test/topographic_error"] < 0.2
    # Neighbouring units end with closer weights than units drawn at random.
    weights = som.weights.view(8, 8, 3)
    neighbours = torch.cat([(weights[1:] - weights[:-1]).norm(dim=2).flatten(),
                            (weights[:, 1:] - weights[:, :-1]).norm(dim=2).flatten()]).mean()
    assert neighbours < 0.3 * torch.cdist(som.weights, som.weights).mean()


def test_colors_are_named_by_the_nearest_corner_of_the_rgb_cube():
    table = colors(50, torch.Generator().manual_seed(0))
    assert table.features.min() >= 0 and table.features.max() <= 1
    corners = torch.tensor([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=torch.float32)
    assert torch.equal(table.targets, torch.cdist(table.features, corners).argmin(dim=1))
    assert table.target_names[table.targets[0]] in ("black", "blue", "green", "cyan", "red", "magenta", "yellow",
                                                    "white")


def test_the_models_refuse_an_optimizer(run_config):
    with pytest.raises(DlbookError, match="not by an optimizer; this run sets one. Use optimizer=none"):
        train(run_config(["model=som", "optimizer=adam", "model.rows=2", "model.columns=2"]))


@pytest.mark.parametrize("setting", ["model.learning_rate=-1", "model.learning_rate=0", "model.radius=-2"])
def test_the_som_refuses_a_step_or_radius_that_is_not_positive(run_config, setting):
    # a negative rate pushed the map away from the data, without a word
    with pytest.raises(DlbookError, match=f"{setting} must be a finite number above 0."):
        train(run_config(["model=som", "model.rows=2", "model.columns=2", setting]))
