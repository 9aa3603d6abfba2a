"""A convolution over the steps feeding a recurrent regressor: the DL Workshop's hybrid Conv1D(5, 3) ->
SimpleRNN(32) -> Dense(1) (ch. 5, Ex. 5.05; 1,269 parameters), with dropout after the RNN in Activity 5.01."""

import torch
from torch import nn

from dlbook.errors import IncompatibleDataError
from dlbook.nets.sequence.recurrent_regressor import RecurrentRegressor
from dlbook.nets.sequence.regressor import SequenceRegressor


class ConvRecurrentRegressor(SequenceRegressor):
    """Conv1d(`filters`, `kernel_size`, no padding) -> ReLU -> a RecurrentRegressor over the convolved steps, built
    with the other options (cell, hidden_size, dropout before its output layer, ...). The convolution picks up
    local patterns, the recurrent layer keeps their order."""

    def __init__(self, input_shape: tuple[int, int], num_outputs: int, filters: int = 5, kernel_size: int = 3,
                 **recurrent_options):
        super().__init__(input_shape, num_outputs)
        convolved_steps = self.steps - kernel_size + 1
        if convolved_steps < 1:
            raise IncompatibleDataError(f"its convolution over {kernel_size} steps needs windows of at least "
                                        f"{kernel_size} steps; the data gives {self.steps}")
        self.conv = nn.Conv1d(self.num_series, filters, kernel_size)
        self.recurrent = RecurrentRegressor((convolved_steps, filters), num_outputs, **recurrent_options)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(windows.transpose(1, 2)))  # (batch, filters, convolved steps)
        return self.recurrent(features.transpose(1, 2))
