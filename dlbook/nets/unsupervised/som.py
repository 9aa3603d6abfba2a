"""A self-organising map (Kohonen): units on a 2-D lattice, each with a weight vector in the data's space, trained
by the online rule of the TF 1.x Deep Learning Cookbook (ch. 7): the winner is the unit nearest a row, and every
unit moves towards the row by dW = eta * Lambda * (x - W), Lambda a Gaussian of its lattice distance to the
winner."""

import torch
from torch import nn


class SelfOrganizingMap(nn.Module):
    """`rows` x `columns` units, numbered row by row, their weights drawn from N(0, 1) with `generator` (the
    Cookbook's tf.random_normal, seed 0)."""

    def __init__(self, num_features: int, rows: int = 30, columns: int = 30, generator: torch.Generator | None = None):
        super().__init__()
        self.shape = (rows, columns)
        self.register_buffer("weights", torch.randn(rows * columns, num_features, generator=generator))
        grid = torch.cartesian_prod(torch.arange(rows), torch.arange(columns)).float()
        self.register_buffer("locations", grid, persistent=False)  # (units, 2): each unit's (row, column)

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """(N, units) Euclidean distances of rows to the units' weights."""
        return torch.cdist(x, self.weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each row's winning unit."""
        return self.distances(x).argmin(dim=1)

    @torch.no_grad()
    def learn(self, x: torch.Tensor, eta: float, sigma: float) -> torch.Tensor:
        """The online rule for each row of x in turn, with Lambda = exp(-d^2 / (2 sigma^2)); returns each row's
        distance to its winner before its update (its quantisation error)."""
        errors = torch.empty(len(x), device=x.device)
        for i, row in enumerate(x):
            distances = (self.weights - row).norm(dim=1)
            winner = distances.argmin()
            errors[i] = distances[winner]
            lattice = (self.locations - self.locations[winner]).square().sum(dim=1)
            neighbourhood = torch.exp(-lattice / (2 * sigma ** 2))
            self.weights += eta * neighbourhood.unsqueeze(1) * (row - self.weights)
        return errors

    def quantization_errors(self, x: torch.Tensor) -> torch.Tensor:
        """Each row's distance to its winner."""
        return self.distances(x).min(dim=1).values

    def topographic_errors(self, x: torch.Tensor) -> torch.Tensor:
        """1 for each row whose nearest two units are not lattice neighbours (diagonals included), else 0."""
        best_two = self.distances(x).topk(2, dim=1, largest=False).indices
        apart = (self.locations[best_two[:, 0]] - self.locations[best_two[:, 1]]).abs().amax(dim=1)
        return (apart > 1).float()

    def u_matrix(self) -> torch.Tensor:
        """(rows, columns): each unit's mean weight distance to its lattice neighbours above, below, left and
        right; high values mark borders between regions of the map."""
        weights = self.weights.view(*self.shape, -1)
        total = torch.zeros(self.shape, device=weights.device)
        count = torch.zeros(self.shape, device=weights.device)
        vertical = (weights[1:] - weights[:-1]).norm(dim=2)
        horizontal = (weights[:, 1:] - weights[:, :-1]).norm(dim=2)
        total[1:] += vertical
        total[:-1] += vertical
        total[:, 1:] += horizontal
        total[:, :-1] += horizontal
        count[1:] += 1
        count[:-1] += 1
        count[:, 1:] += 1
        count[:, :-1] += 1
        return total / count
