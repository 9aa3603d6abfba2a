"""Principal component analysis (TF 1.x Deep Learning Cookbook, ch. 7: MNIST's 784 pixels to 3 dimensions): the
SVD of the training rows, their projection and its explained variance."""

from collections.abc import Callable

import torch
from matplotlib.figure import Figure

from dlbook import plots
from dlbook.data.spec import DataSpec
from dlbook.nets.unsupervised.pca import PCA
from dlbook.tasks.unsupervised import SelfUpdatingTask


class PCATask(SelfUpdatingTask):
    """PCA (`n_components`, or `keep_info` of the `info` measure; `center`: see dlbook.nets.unsupervised.pca.PCA)
    fitted to every training row by one SVD after the first epoch's last batch; later epochs change nothing.
    `<stage>/reconstruction_error` is the mean squared distance of a row to its rebuilding from the kept
    components (train/: as each batch met the state, so the first epoch measures the unfitted PCA, which rebuilds
    every row as 0). When training ends: `pca/n_components`, `pca/explained_variance` (the share of the variance
    kept), `pca/kept_info` (the share of the info measure kept) and `pca/explained_variance_ratio.<i>` of each kept
    component. `transform` and `inverse_transform` take rows or images."""

    summary_metrics = (("test/reconstruction_error", "Test reconstruction error"),)

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None,
                 init_seed: int = 0, n_components: int | None = 2, keep_info: float | None = None,
                 center: bool = True, info: str = "variance"):
        super().__init__(data_spec, optimizer, scheduler, init_seed)
        self.pca = PCA(self.num_features, n_components, keep_info, center, info)

    def transform(self, rows: torch.Tensor) -> torch.Tensor:
        return self.pca.transform(rows.flatten(1))

    def inverse_transform(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Rows in the data's shape (images for image data)."""
        return self.pca.inverse_transform(coordinates).view(-1, *self.data_spec.input_shape)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.transform(rows)

    def reconstruction_errors(self, rows: torch.Tensor) -> torch.Tensor:
        return (self.pca.inverse_transform(self.pca.transform(rows)) - rows).square().sum(dim=1)

    def learn(self, rows: torch.Tensor) -> None:
        errors = self.reconstruction_errors(rows)
        self.log_epoch_sum("train/reconstruction_error", errors.sum(), len(errors))

    def end_of_epoch(self) -> None:
        if not self.pca.kept:
            self.pca.fit(self.split_rows("train")[0])

    def _evaluate(self, batch, stage: str) -> None:
        errors = self.reconstruction_errors(self.rows(batch)[0])
        self.log_epoch_sum(f"{stage}/reconstruction_error", errors.sum(), len(errors))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def on_train_end(self) -> None:
        kept = int(self.pca.kept)
        ratios = self.pca.explained_variance_ratio()[:kept].tolist()
        self.report({"pca/n_components": float(kept), "pca/explained_variance": sum(ratios),
                     "pca/kept_info": float(self.pca.information()[:kept].sum()),
                     **{f"pca/explained_variance_ratio.{i}": ratio for i, ratio in enumerate(ratios)}})

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        """The training ("fit") or test rows on the first three (or two) kept components, coloured by class; at
        "fit" also each component's share of the variance and their cumulative sum."""
        kept = int(self.pca.kept)
        if not kept:
            return {}
        split = "train" if stage == "fit" else "test"
        rows, labels = self.drawn_rows(split)
        dims = min(kept, 3)
        points = self.pca.transform(rows)[:, :dims]
        if dims == 1:  # one component: the points on a line
            points = torch.cat([points, torch.zeros_like(points)], dim=1)
        figure = Figure(figsize=(6.0, 5.0) if dims == 3 else (5.0, 4.0))
        axes = figure.add_subplot(projection="3d" if dims == 3 else None)
        plots.scatter(axes, points, labels, self.class_names)
        axes.set_xlabel("component 1")
        axes.set_ylabel("component 2" if dims > 1 else "")
        if dims == 3:
            axes.set_zlabel("component 3")
        axes.set_title(f"PCA, {split} rows on {dims} of {kept} components")
        figures = {f"projection_{split}": figure}
        if stage == "fit":
            ratios = self.pca.explained_variance_ratio()[self.pca.singular_values > 0]  # the rows' rank
            figure, axes = plots.new_figure()
            positions = torch.arange(1, len(ratios) + 1)
            axes.bar(positions, ratios.cpu(), label="component")
            axes.plot(positions, ratios.cumsum(0).cpu(), color="C1", label="cumulative")
            axes.axvline(kept + 0.5, color="C3", linestyle="--", label=f"{kept} kept")
            axes.set(xlabel="component", ylabel="share of the variance", title="Explained variance")
            axes.legend(fontsize="small")
            figures["explained_variance"] = figure
        return figures
