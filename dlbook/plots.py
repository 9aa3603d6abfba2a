"""Figures the tasks share, drawn on matplotlib Figure objects (no pyplot state, so safe in any process)."""

from collections.abc import Callable

import torch
from matplotlib.figure import Figure


def new_figure(width: float = 5.0, height: float = 4.0) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def principal_plane(vectors: torch.Tensor) -> torch.Tensor:
    """Vectors (N, D) as points on their first two principal components, (N, 2); as they are when D is 2."""
    vectors = vectors.detach().cpu().float()
    if vectors.shape[1] <= 2:
        return vectors
    centred = vectors - vectors.mean(dim=0)
    return centred @ torch.linalg.svd(centred, full_matrices=False).Vh[:2].T


def scatter(axes, points: torch.Tensor, labels: torch.Tensor | None = None, names: tuple[str, ...] = (), **kwargs):
    """2-D points (or 3-D, on 3-D axes), one colour per label (with a legend when the labels have names)."""
    points = points.detach().cpu().float()
    if labels is None:
        axes.scatter(*points.T, s=12, **kwargs)
        return
    labels = labels.detach().cpu()
    for label in labels.unique().tolist():
        chosen = labels == label
        name = names[label] if label < len(names) else str(label)
        axes.scatter(*points[chosen].T, s=12, label=name, **kwargs)
    axes.legend(fontsize="small")


def decision_regions(axes, predict: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor,
                     resolution: int = 200, margin: float = 0.5) -> None:
    """Shade the plane around 2-D `points` by the class `predict` gives each grid point (a (G, 2) -> (G,) map of
    class indices)."""
    points = points.detach().cpu().float()
    low, high = points.min(dim=0).values - margin, points.max(dim=0).values + margin
    xs, ys = (torch.linspace(low[i], high[i], resolution) for i in range(2))
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    with torch.no_grad():
        classes = predict(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)).cpu().reshape(grid_x.shape)
    levels = [label - 0.5 for label in range(int(classes.max()) + 2)]  # one band per class
    axes.contourf(grid_x, grid_y, classes.float(), levels=levels, alpha=0.25, cmap="tab10", vmin=0, vmax=9)


def attention_maps(maps: list[tuple[list[str], list[str], torch.Tensor]]) -> Figure:
    """One heatmap per (columns, rows, weights (rows, columns)) side by side: how much each written token (a row)
    attended to each source token (a column)."""
    width = sum(max(2.0, 0.35 * len(columns) + 1.0) for columns, _, _ in maps)
    height = max(2.5, 0.35 * max(len(rows) for _, rows, _ in maps) + 1.5)
    figure = Figure(figsize=(width, height), layout="constrained")
    for axes, (columns, rows, weights) in zip(figure.subplots(1, len(maps), squeeze=False)[0], maps):
        axes.imshow(weights.detach().cpu().float(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axes.set_xticks(range(len(columns)), columns, rotation=90, fontsize="small")
        axes.set_yticks(range(len(rows)), rows, fontsize="small")
    return figure


# Beyond this many classes the cells are too small for their counts and names (and thousands of them took tens of
# GB to draw): the shading alone is drawn, on a canvas of bounded size.
NAMED_CLASSES = 40


def confusion_matrix(matrix: torch.Tensor, names: list[str]) -> Figure:
    """Counts of (true class, predicted class), each row shaded by its share of the class's samples."""
    matrix = matrix.detach().cpu()
    named = len(names) <= NAMED_CLASSES
    size = max(4.0, 0.45 * len(names) + 2.0) if named else 0.45 * NAMED_CLASSES + 2.0
    figure, axes = new_figure(size, size)
    shares = matrix.double() / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    if named:
        for (row, column), count in zip(torch.cartesian_prod(torch.arange(len(names)),
                                                             torch.arange(len(names))).tolist(),
                                        matrix.flatten().tolist()):
            axes.text(column, row, str(count), ha="center", va="center", fontsize="x-small",
                      color="white" if shares[row, column] > 0.5 else "black")
        axes.set_xticks(range(len(names)), names, rotation=90, fontsize="small")
        axes.set_yticks(range(len(names)), names, fontsize="small")
    axis = "" if named else " (class index)"
    axes.set(xlabel=f"predicted{axis}", ylabel=f"true{axis}", title="Test confusion matrix")
    return figure


def image_grid(images: list[torch.Tensor], titles: list[str], columns: int = 8) -> Figure:
    """Images (C, H, W) in [0, 1] on one canvas (one axes draws fast), each under its title."""
    channels, height, width = images[0].shape
    rows, columns = -(-len(images) // columns), min(columns, len(images))
    gap, band = max(1, width // 8), max(2, height // 2)  # between images; above each, for its title
    canvas = torch.ones(channels, rows * (band + height + gap), columns * (width + gap) + gap)
    for index, image in enumerate(images):
        top, left = (index // columns) * (band + height + gap) + band, (index % columns) * (width + gap) + gap
        canvas[:, top:top + height, left:left + width] = image.detach().cpu().float()
    inches = 1.2 / (width + gap)  # per pixel: each image about 1.2 inches wide
    figure = Figure(figsize=(canvas.shape[2] * inches, canvas.shape[1] * inches))
    axes = figure.add_axes((0, 0, 1, 1))
    shown = canvas.permute(1, 2, 0).squeeze(-1)
    axes.imshow(shown, cmap="gray" if channels == 1 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    for index, title in enumerate(titles):
        top, left = (index // columns) * (band + height + gap) + band, (index % columns) * (width + gap) + gap
        axes.text(left + width / 2, top - 0.5, title, ha="center", va="bottom", fontsize="x-small")
    axes.axis("off")
    return figure
