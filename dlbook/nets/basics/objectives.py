"""Objectives of their own parameters, for model=minimize: forward() takes nothing and returns the value."""

import torch
from torch import nn


class Quadratic(nn.Module):
    """a x^2 + b x + c, or its absolute value, of a parameter x starting at `init` (a list: one x per element, the
    values summed). a=1, b=0, c=0 is x^2. Evaluated in this order, as the books' `abs(x**2 - 10*x + 25)` is, so
    float32 rounds it as they do."""

    def __init__(self, a: float = 1.0, b: float = 0.0, c: float = 0.0, absolute: bool = False,
                 init: float | list[float] = 0.0):
        super().__init__()
        self.a, self.b, self.c = a, b, c
        self.absolute = absolute
        self.x = nn.Parameter(torch.tensor(init, dtype=torch.get_default_dtype()))

    def forward(self) -> torch.Tensor:
        value = self.a * self.x ** 2 + self.b * self.x + self.c
        return (value.abs() if self.absolute else value).sum()
