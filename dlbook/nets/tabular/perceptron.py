"""Rosenblatt's perceptron: a threshold unit, 1 where the weighted sum of its inputs is >= 0, else 0 (the TF 1.x
Cookbook's threshold; Pro DL puts a sum of exactly 0 in class 0, which random starting weights never give). Its
weights are not trained by gradients (the step has none) but by the perceptron rule, in dlbook/tasks/perceptron.py."""

import torch
from torch import nn


class ThresholdUnit(nn.Module):
    """One weight per feature and, last, the bias as the weight of an input fixed at 1 (the TF 1.x Cookbook's
    layout), drawn from N(0, init_std^2): the Cookbook's tf.random_normal(stddev=2)."""

    def __init__(self, num_features: int, init_std: float = 2.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_features + 1) * init_std, requires_grad=False)

    @staticmethod
    def with_bias_input(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.new_ones(len(x), 1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """0. or 1. for each row of x."""
        return (self.with_bias_input(x) @ self.weight >= 0).to(x.dtype)
