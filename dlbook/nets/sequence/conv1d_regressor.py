"""A one-dimensional convolution over the steps, max-pooled and flattened into one linear layer: the DL
Workshop's Conv1D stock regressor (ch. 5, Ex. 5.04; 36 parameters on windows of 10)."""

import torch
from torch import nn

from dlbook.errors import IncompatibleDataError, check_count
from dlbook.nets.sequence.regressor import SequenceRegressor


class Conv1dRegressor(SequenceRegressor):
    """Conv1d(`filters`, `kernel_size`, no padding) -> ReLU -> MaxPool1d(`pool_size`) -> Flatten ->
    Linear(num_outputs). The pooled features lose the order of the steps, which the book's over-smoothed
    predictions show."""

    def __init__(self, input_shape: tuple[int, int], num_outputs: int, filters: int = 5, kernel_size: int = 5,
                 pool_size: int = 5):
        super().__init__(input_shape, num_outputs)
        for key, count in (("filters", filters), ("kernel_size", kernel_size), ("pool_size", pool_size)):
            check_count(f"model.net.{key}", count)
        pooled_steps = (self.steps - kernel_size + 1) // pool_size
        if pooled_steps < 1:
            raise IncompatibleDataError(f"its convolution over {kernel_size} steps and pooling of {pool_size} need "
                                        f"windows of at least {kernel_size + pool_size - 1} steps; the data gives "
                                        f"{self.steps}")
        self.features = nn.Sequential(nn.Conv1d(self.num_series, filters, kernel_size), nn.ReLU(),
                                      nn.MaxPool1d(pool_size), nn.Flatten())
        self.head = nn.Linear(filters * pooled_steps, num_outputs)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(windows.transpose(1, 2)))  # Conv1d wants (batch, channels, steps)
