"""Principal component analysis by the singular value decomposition of the centred training rows, its state
(mean, principal axes, singular values, the number kept) in buffers."""

import torch
from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError, check_number

INFO_MEASURES = ("variance", "singular_values")


class PCA(nn.Module):
    """Keeps `n_components` principal axes, or as many as hold the fraction `keep_info` of the rows' information:
    `info` variance (squared singular values: the explained variance) or singular_values (the TF 1.x Cookbook's
    measure, the cumulated share of the singular values themselves). `center` false takes the SVD of the rows as
    they are (the Cookbook's tf.svd of the raw images), which is not PCA: the first axis then points at the mean.
    Every axis is kept in `components` (rows, by decreasing singular value, each signed so that its largest entry
    is positive, as scikit-learn's svd_flip), so the buffers' shapes do not depend on the fit."""

    def __init__(self, num_features: int, n_components: int | None = 2, keep_info: float | None = None,
                 center: bool = True, info: str = "variance"):
        super().__init__()
        if (n_components is None) == (keep_info is None):
            raise DlbookError(f"model.n_components={n_components} and model.keep_info={keep_info}: set exactly one "
                              f"of them (the other null), e.g. model.n_components=2 or model.keep_info=0.8.")
        if info not in INFO_MEASURES:
            raise DlbookError(f"model.info={info!r} is not one of {', '.join(INFO_MEASURES)}.")
        if keep_info is not None:
            check_number("model.keep_info", keep_info, above=0, most=1)
        if n_components is not None and not 1 <= n_components <= num_features:
            raise IncompatibleDataError(f"it keeps model.n_components={n_components} components, and the data has "
                                        f"{num_features} features")
        self.n_components, self.keep_info, self.center, self.info = n_components, keep_info, center, info
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("components", torch.zeros(num_features, num_features))
        self.register_buffer("singular_values", torch.zeros(num_features))
        self.register_buffer("kept", torch.zeros((), dtype=torch.long))  # 0: not fitted

    @torch.no_grad()
    def fit(self, rows: torch.Tensor) -> None:
        if self.n_components is not None and self.n_components > min(rows.shape):
            raise DlbookError(f"model.n_components={self.n_components} exceeds the rank the {len(rows)} training "
                              f"rows of {rows.shape[1]} features can have; keep at most {min(rows.shape)}.")
        mean = rows.mean(dim=0) if self.center else torch.zeros_like(self.mean)
        _, singular_values, axes = torch.linalg.svd(rows - mean, full_matrices=False)
        largest = axes.gather(1, axes.abs().argmax(dim=1, keepdim=True))
        axes = axes * torch.where(largest < 0, -1.0, 1.0)
        self.mean.copy_(mean)
        self.components.zero_()[:len(axes)] = axes
        self.singular_values.zero_()[:len(singular_values)] = singular_values
        if self.n_components is not None:
            self.kept.fill_(self.n_components)
        else:  # the first count whose cumulated share reaches keep_info
            share = self.information().cumsum(0)
            self.kept.fill_(int((share < self.keep_info - 1e-6).sum()) + 1)

    def information(self) -> torch.Tensor:
        """Each axis's share of the `info` measure."""
        values = self.singular_values.double() ** (2 if self.info == "variance" else 1)
        return values / values.sum()

    def explained_variance_ratio(self) -> torch.Tensor:
        """Each axis's share of the variance (of the mean square, uncentred)."""
        variance = self.singular_values.double().square()
        return variance / variance.sum()

    def transform(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, kept) coordinates along the kept axes."""
        return (rows - self.mean) @ self.components[:self.kept].T

    def inverse_transform(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Rows rebuilt from their coordinates on the kept axes."""
        return coordinates @ self.components[:coordinates.shape[1]] + self.mean

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.transform(rows)
