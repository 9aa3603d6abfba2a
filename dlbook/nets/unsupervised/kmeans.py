"""k-means: centroids in buffers, seeded by k-means++, and Lloyd's update accumulated batch by batch, so that an
epoch of batches is one full-batch Lloyd step whatever the batch size and order; the elbow of an SSE curve."""

import torch
import torch.nn.functional as F
from torch import nn

DISTANCES = ("euclidean", "cosine")


def squared_distances(rows: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(N, k) squared Euclidean distances."""
    return torch.cdist(rows, centroids).square()


class KMeans(nn.Module):
    """`num_clusters` centroids of `num_features` values, by squared Euclidean distance; `distance` cosine scales
    rows to unit length and the centroids after each update (spherical k-means, TensorFlow's cosine distance), so
    the squared distance is 2 (1 - cosine similarity). `sums` and `counts` gather the current epoch's assignments
    (float64, kept in checkpoints, so a run resumed mid-epoch updates as one never interrupted)."""

    def __init__(self, num_features: int, num_clusters: int, distance: str = "euclidean"):
        super().__init__()
        self.spherical = distance == "cosine"
        self.register_buffer("centroids", torch.zeros(num_clusters, num_features))
        self.register_buffer("sums", torch.zeros(num_clusters, num_features, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(num_clusters, dtype=torch.float64))
        self.register_buffer("seeded", torch.zeros((), dtype=torch.bool))

    @property
    def num_clusters(self) -> int:
        return len(self.centroids)

    def prepare(self, rows: torch.Tensor) -> torch.Tensor:
        return F.normalize(rows, dim=1) if self.spherical else rows

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(each row's cluster, its squared distance to that centroid)."""
        distances, clusters = squared_distances(self.prepare(rows), self.centroids).min(dim=1)
        return clusters, distances

    @torch.no_grad()
    def seed(self, rows: torch.Tensor, generator: torch.Generator) -> None:
        """k-means++ (Arthur and Vassilvitskii, 2007): the first centroid a row drawn uniformly, each next one a row
        drawn with probability proportional to its squared distance to the nearest centroid so far. `generator`
        is a CPU one: the draws are made there, the distances where the rows are."""
        rows = self.prepare(rows)
        chosen = [int(torch.randint(len(rows), (1,), generator=generator))]
        nearest = squared_distances(rows, rows[chosen]).squeeze(1)
        for _ in range(1, self.num_clusters):
            weights = nearest.double().cpu()
            if weights.sum() == 0:  # every row sits on a centroid already: fewer distinct rows than clusters
                weights = torch.ones_like(weights)
            chosen.append(int(torch.multinomial(weights, 1, generator=generator)))
            nearest = torch.minimum(nearest, squared_distances(rows, rows[chosen[-1:]]).squeeze(1))
        self.centroids.copy_(rows[chosen])
        self.seeded.fill_(True)

    @torch.no_grad()
    def accumulate(self, rows: torch.Tensor) -> torch.Tensor:
        """Assign the rows to the current centroids and add them to their clusters' sums; returns each row's
        squared distance to its centroid."""
        clusters, distances = self(rows)
        self.sums.index_add_(0, clusters, self.prepare(rows).double())
        self.counts.index_add_(0, clusters, torch.ones_like(distances, dtype=torch.float64))
        return distances

    @torch.no_grad()
    def update(self) -> torch.Tensor:
        """Lloyd's step: each centroid the mean of the rows assigned to it (a cluster that got none keeps its
        centroid); the sums start afresh. Returns the largest distance a centroid moved."""
        means = (self.sums / self.counts.clamp_min(1).unsqueeze(1)).to(self.centroids.dtype)
        if self.spherical:
            means = F.normalize(means, dim=1)
        updated = torch.where(self.counts.unsqueeze(1) > 0, means, self.centroids)
        shift = (updated - self.centroids).norm(dim=1).max()
        self.centroids.copy_(updated)
        self.sums.zero_()
        self.counts.zero_()
        return shift


def fit_kmeans(rows: torch.Tensor, num_clusters: int, generator: torch.Generator, distance: str = "euclidean",
               max_iterations: int = 300, tolerance: float = 1e-6, restarts: int = 1) -> tuple[KMeans, float]:
    """k-means fitted to `rows` in memory: k-means++, then Lloyd's steps until no centroid moves more than
    `tolerance` (or `max_iterations`); the best of `restarts` such fits by SSE, as Pro Deep Learning with
    TensorFlow 2 (ch. 1) advises against k-means' local minima. Returns (the model, its SSE)."""
    best, best_sse = None, float("inf")
    for _ in range(restarts):
        model = KMeans(rows.shape[1], num_clusters, distance).to(rows.device)
        model.seed(rows, generator)
        for _ in range(max_iterations):
            model.accumulate(rows)
            if model.update() <= tolerance:
                break
        sse = float(model(rows)[1].double().sum())
        if sse < best_sse:
            best, best_sse = model, sse
    return best, best_sse


def elbow(ks: list[int], sse: list[float]) -> int:
    """The k at the elbow of a decreasing SSE curve: with k and SSE each scaled to [0, 1] over the sweep, the point
    farthest below the straight line from the first point to the last (the difference curve of Satopää et al.'s
    Kneedle, 2011, without its smoothing). Needs three ks or more; the bend is found only inside the sweep, so a
    sweep should reach well past the expected k."""
    k, values = torch.tensor(ks, dtype=torch.float64), torch.tensor(sse, dtype=torch.float64)
    span = values[0] - values[-1]
    if span <= 0:  # a flat curve: more clusters explain nothing
        return ks[0]
    x = (k - k[0]) / (k[-1] - k[0])
    y = (values - values[-1]) / span
    return ks[int(((1 - x) - y).argmax())]
