"""Distributions for the samplers to draw from, as plain modules holding their constants as buffers."""

import torch
from torch import nn

from dlbook.errors import DlbookError


class Gaussian(nn.Module):
    """A multivariate Gaussian N(mean, covariance): its unnormalised log density (what Metropolis needs) and the
    conditional of one coordinate given the others (what Gibbs sampling draws from)."""

    def __init__(self, mean: list[float], covariance: list[list[float]]):
        super().__init__()
        mean = torch.tensor(mean, dtype=torch.float64)
        covariance = torch.tensor(covariance, dtype=torch.float64)
        if covariance.shape != (len(mean), len(mean)) or not torch.allclose(covariance, covariance.T):
            raise DlbookError(f"The target's covariance {covariance.tolist()} must be a symmetric "
                              f"{len(mean)}x{len(mean)} matrix, one row per mean entry.")
        if torch.linalg.eigvalsh(covariance).min() <= 0:
            raise DlbookError(f"The target's covariance {covariance.tolist()} is not positive definite.")
        # Constants, rebuilt from the config: not saved in checkpoints.
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("covariance", covariance, persistent=False)
        self.register_buffer("precision", torch.linalg.inv(covariance), persistent=False)

    @property
    def dims(self) -> int:
        return len(self.mean)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) up to a constant, for points (..., dims): -(x - mean)^T precision (x - mean) / 2."""
        centred = x - self.mean
        return -0.5 * ((centred @ self.precision) * centred).sum(dim=-1)

    def conditional(self, x: torch.Tensor, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (...,) and standard deviation of coordinate j given the others of x (..., dims): from the
        precision P, N(mean_j - sum_{k != j} P_jk (x_k - mean_k) / P_jj, 1 / P_jj). For the books' unit
        variances and correlation rho, N(rho x_other, 1 - rho^2)."""
        weights = self.precision[j] / self.precision[j, j]
        centred = x - self.mean
        shift = centred @ weights - centred[..., j]  # the sum without k = j
        return self.mean[j] - shift, self.precision[j, j].rsqrt()
