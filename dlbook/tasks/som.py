"""A self-organising map (TF 1.x Deep Learning Cookbook, ch. 7: a 30x30 map of colours), trained by the online
Kohonen rule with a learning rate and a neighbourhood radius that shrink over the run."""

from collections.abc import Callable

import torch

from dlbook import plots
from dlbook.data.spec import DataSpec
from dlbook.errors import DlbookError, check_count, check_number
from dlbook.nets.unsupervised.som import SelfOrganizingMap
from dlbook.tasks.unsupervised import SelfUpdatingTask


class SOMTask(SelfUpdatingTask):
    """`rows` x `columns` units. At epoch it of N = `iterations` (null: trainer.max_epochs), the Cookbook's
    "iteration", every training row is presented once, in its batch order, with eta = learning_rate (1 - it/N) and
    sigma = radius (1 - it/N) (radius null: half the lattice's longer side, the Cookbook's default).

    `train/quantization_error` is each row's distance to its winner before its update; `val/` and `test/` give it
    for the trained map, and `topographic_error`, the share of rows whose two nearest units are not neighbours on
    the lattice (diagonals count as neighbours)."""

    summary_metrics = (("test/quantization_error", "Test quantisation error"),)

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None,
                 init_seed: int = 0, rows: int = 30, columns: int = 30, learning_rate: float = 0.5,
                 radius: float | None = None, iterations: int | None = None):
        super().__init__(data_spec, optimizer, scheduler, init_seed)
        check_count("model.rows", rows)
        check_count("model.columns", columns)
        if rows * columns < 2:
            raise DlbookError(f"model.rows={rows} and model.columns={columns}: a map needs two units or more.")
        check_number("model.learning_rate", learning_rate, above=0)
        if radius is not None:
            check_number("model.radius", radius, above=0)
        self.som = SelfOrganizingMap(self.num_features, rows, columns, self.generator())
        self.learning_rate = learning_rate
        self.radius = max(rows, columns) / 2 if radius is None else radius
        self.iterations = iterations

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Each row's (or image's) winning unit, numbered row by row."""
        return self.som(rows.flatten(1))

    def on_train_start(self) -> None:
        super().on_train_start()
        epochs = self.trainer.max_epochs
        if self.iterations is None and (epochs is None or epochs < 1):
            raise DlbookError(f"model=som shrinks its rate and radius over model.iterations epochs, which defaults "
                              f"to trainer.max_epochs; this run has neither (max_epochs={epochs}). Set one.")
        if self.iterations is not None and epochs is not None and epochs > self.iterations:
            raise DlbookError(f"trainer.max_epochs={epochs} exceeds model.iterations={self.iterations}: the rate "
                              f"and radius would be 0 or negative after {self.iterations} epochs.")

    def learn(self, rows: torch.Tensor) -> None:
        left = 1 - self.current_epoch / (self.iterations or self.trainer.max_epochs)
        errors = self.som.learn(rows, self.learning_rate * left, self.radius * left)
        self.log_epoch_sum("train/quantization_error", errors.sum(), len(errors))

    def _evaluate(self, batch, stage: str) -> None:
        rows = self.rows(batch)[0]
        self.log_epoch_mean(f"{stage}/quantization_error", self.som.quantization_errors(rows).mean(), len(rows))
        self.log_epoch_mean(f"{stage}/topographic_error", self.som.topographic_errors(rows).mean(), len(rows))

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        """The map when training ends: the units' weights as colours for data of three features (clipped to
        [0, 1]), else the U-matrix; each class's name at the unit its mean training row wins."""
        if stage != "fit":
            return {}
        figure, axes = plots.new_figure(5.5, 5.0)
        if self.num_features == 3:
            axes.imshow(self.som.weights.view(*self.som.shape, 3).clamp(0, 1).cpu())
            title = "Self-organising map: the units' weights as colours"
        else:
            image = axes.imshow(self.som.u_matrix().cpu(), cmap="bone_r")
            figure.colorbar(image, ax=axes, label="mean distance to the neighbouring units")
            title = "Self-organising map: U-matrix"
        rows, labels = self.split_rows("train")
        if labels is not None:
            for label in labels.unique().tolist():
                mean = rows[labels == label].mean(dim=0, keepdim=True)
                row, column = self.som.locations[self.som(mean)[0]].tolist()
                axes.text(column, row, self.class_names[label], ha="center", va="center", fontsize="small",
                          bbox={"facecolor": "white", "alpha": 0.6, "linewidth": 0})
        axes.set_title(title, fontsize="medium")
        return {"map": figure}
