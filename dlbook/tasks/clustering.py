"""k-means clustering (TF 1.x Deep Learning Cookbook, ch. 7): k-means++ seeding, then one full-batch Lloyd step
per epoch, accumulated over the epoch's batches; an elbow sweep over k when training ends."""

from collections.abc import Callable

import torch

from dlbook import plots
from dlbook.data.spec import DataSpec
from dlbook.errors import DlbookError, check_count, check_number
from dlbook.nets.unsupervised.kmeans import DISTANCES, KMeans, elbow, fit_kmeans
from dlbook.nets.unsupervised.pca import PCA
from dlbook.tasks.unsupervised import SelfUpdatingTask


def adjusted_rand_index(table: torch.Tensor) -> float:
    """scikit-learn's adjusted Rand index of the (cluster, class) pairs that a contingency table counts."""
    from sklearn.metrics import adjusted_rand_score

    counts = table.long().cpu()
    clusters, labels = torch.nonzero(counts, as_tuple=True)
    repeats = counts[clusters, labels]
    return adjusted_rand_score(labels.repeat_interleave(repeats).numpy(), clusters.repeat_interleave(repeats).numpy())


class KMeansTask(SelfUpdatingTask):
    """`num_clusters` centroids by `distance` euclidean (squared) or cosine. Lloyd's step each epoch, full-batch
    rather than mini-batch k-means: it is exact, never raises the SSE, needs no learning rate and gives
    scikit-learn's answer from the same start, and an epoch of batches costs what one pass over the data does.
    Training stops once no centroid moves more than `tolerance` in an epoch (null: every epoch trains).

    `<stage>/distortion` is the mean squared distance of a row to its centroid (the SSE, scikit-learn's inertia,
    divided by the rows, so splits of any size compare; train/ measures the centroids each batch met, before the
    epoch's update); `val/ari` and `test/ari` the adjusted Rand index of the clusters against the classes, where
    the data has them. `elbow_ks` (three or more ks, or null): when training ends, k-means is fitted afresh to the
    training rows for each k (the best of `elbow_restarts` k-means++ starts), logging `elbow/sse.<k>` and the
    detected `elbow/k` (the rule is dlbook.nets.unsupervised.kmeans.elbow) and drawing the curve."""

    summary_metrics = (("test/ari", "Test adjusted Rand index"), ("test/distortion", "Test distortion"))

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None,
                 init_seed: int = 0, num_clusters: int = 3, distance: str = "euclidean",
                 tolerance: float | None = 1e-6, elbow_ks: list[int] | None = None, elbow_restarts: int = 5):
        super().__init__(data_spec, optimizer, scheduler, init_seed)
        if distance not in DISTANCES:
            raise DlbookError(f"model.distance={distance!r} is not one of {', '.join(DISTANCES)}.")
        check_count("model.num_clusters", num_clusters)
        check_count("model.elbow_restarts", elbow_restarts, note=" (k-means++ starts for each k of the sweep)")
        if tolerance is not None:  # below 0 no epoch would ever count as converged
            check_number("model.tolerance", tolerance, least=0, note=", or null to train every epoch")
        if elbow_ks is not None and (len(elbow_ks) < 3 or any(k < 1 for k in elbow_ks)
                                     or list(elbow_ks) != sorted(set(elbow_ks))):
            raise DlbookError(f"model.elbow_ks={list(elbow_ks)} must be three or more distinct positive ks in "
                              f"increasing order, e.g. [1,2,3,4,5,6,7,8,9,10]; or null for no sweep.")
        self.kmeans = KMeans(self.num_features, num_clusters, distance)
        self.distance = distance
        self.tolerance = tolerance
        self.elbow_ks = None if elbow_ks is None else list(elbow_ks)
        self.elbow_restarts = elbow_restarts
        self.elbow_sse: list[float] | None = None
        self._table: torch.Tensor | None = None  # (cluster, class) counts of the current evaluation epoch

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """The cluster of each row (or image)."""
        return self.kmeans(rows.flatten(1))[0]

    def on_train_start(self) -> None:
        super().on_train_start()
        if not self.kmeans.seeded:  # a fresh run; a resumed one has its centroids from the checkpoint
            rows = self.split_rows("train")[0]
            if len(rows) < self.kmeans.num_clusters:
                raise DlbookError(f"model.num_clusters={self.kmeans.num_clusters} exceeds the {len(rows)} training "
                                  f"rows; choose fewer clusters.")
            self.kmeans.seed(rows, self.generator())

    def learn(self, rows: torch.Tensor) -> None:
        distances = self.kmeans.accumulate(rows)
        self.log_epoch_sum("train/distortion", distances.sum(), len(distances))

    def end_of_epoch(self) -> None:
        reduce = self.trainer.strategy.reduce
        self.kmeans.sums.copy_(reduce(self.kmeans.sums, reduce_op="sum"))
        self.kmeans.counts.copy_(reduce(self.kmeans.counts, reduce_op="sum"))
        shift = self.kmeans.update()
        if self.tolerance is not None and shift.item() <= self.tolerance:  # one host sync an epoch
            self.trainer.should_stop = True

    def _evaluate(self, batch, stage: str) -> None:
        rows, labels = self.rows(batch)
        clusters, distances = self.kmeans(rows)
        self.log_epoch_sum(f"{stage}/distortion", distances.sum(), len(distances))
        if labels is not None:
            self._table.index_put_((clusters, labels), torch.ones_like(distances), accumulate=True)

    def _start_table(self) -> None:
        self._table = torch.zeros(self.kmeans.num_clusters, max(self.num_classes, 1), device=self.device)

    def _log_ari(self, stage: str) -> None:
        table = self.trainer.strategy.reduce(self._table, reduce_op="sum")
        if self.num_classes and table.sum() > 0:
            self.log(f"{stage}/ari", adjusted_rand_index(table))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self._start_table()

    def on_test_epoch_start(self) -> None:
        self._start_table()

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_ari("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_ari("test")

    def elbow_sweep(self) -> list[float] | None:
        """The training rows' SSE for each of elbow_ks, fitted once (the figures callback may ask first)."""
        if self.elbow_ks is not None and self.elbow_sse is None:
            rows = self.split_rows("train")[0]
            generator = self.generator()
            self.elbow_sse = [fit_kmeans(rows, k, generator, self.distance, restarts=self.elbow_restarts)[1]
                              for k in self.elbow_ks if k <= len(rows)]
        return self.elbow_sse

    def on_train_end(self) -> None:
        sse = self.elbow_sweep()
        if sse is not None:
            ks = self.elbow_ks[:len(sse)]
            self.report({"elbow/k": float(elbow(ks, sse)), **{f"elbow/sse.{k}": value for k, value in zip(ks, sse)}})

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        """The clusters of the training ("fit") or test rows, coloured by cluster with the centroids marked, in
        the plane of the features (two of them) or of the rows' first two principal components; and at "fit" the
        elbow curve."""
        figures = {}
        split = "train" if stage == "fit" else "test"
        rows, _ = self.drawn_rows(split)
        if self.num_features >= 2 and len(rows):
            clusters = self.kmeans(rows)[0]
            points, centroids = self.kmeans.prepare(rows), self.kmeans.centroids
            names = getattr(self.data_spec, "feature_names", ()) or ("feature 1", "feature 2")
            if self.num_features > 2:  # the plane the rows spread most in
                plane = PCA(self.num_features, n_components=2).to(rows.device)
                plane.fit(points)
                points, centroids = plane.transform(points), plane.transform(centroids)
                names = ("principal component 1", "principal component 2")
            figure, axes = plots.new_figure()
            plots.scatter(axes, points, clusters, tuple(f"cluster {i}" for i in range(self.kmeans.num_clusters)))
            centroids = centroids.cpu()
            axes.scatter(centroids[:, 0], centroids[:, 1], marker="+", s=300, color="black", label="centroids")
            axes.legend(fontsize="small")
            axes.set_xlabel(names[0])
            axes.set_ylabel(names[1])
            axes.set_title(f"k-means, k = {self.kmeans.num_clusters}, {split} rows")
            figures[f"clusters_{split}"] = figure
        sse = self.elbow_sweep() if stage == "fit" else None
        if sse:
            ks = self.elbow_ks[:len(sse)]
            found = elbow(ks, sse)
            figure, axes = plots.new_figure()
            axes.plot(ks, sse, marker="o")
            axes.plot([found], [sse[ks.index(found)]], marker="o", markersize=14, fillstyle="none", linestyle="none",
                      color="C3", label=f"elbow, k = {found}")
            axes.set(xlabel="k (clusters)", ylabel="SSE of the training rows", title="Elbow curve")
            axes.legend(fontsize="small")
            figures["elbow"] = figure
        return figures
