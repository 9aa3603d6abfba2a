"""Advanced Deep Learning with Python's first RNN (ch. 7), written in NumPy there to count the ones of a binary
sequence: two scalar weights and no non-linearity, so its gradients through time grow or shrink as W^t."""

import torch
from torch import nn

from dlbook.errors import IncompatibleDataError
from dlbook.nets.sequence.regressor import SequenceRegressor


class LinearRNN(SequenceRegressor):
    """s_t = x_t U + s_{t-1} W from s_0 = 0, the output the last state (the output weight V fixed at 1); U and W
    start at `init_u` and `init_w`, the book's (-2, 0). U = W = 1 counts exactly."""

    def __init__(self, input_shape: tuple[int, int], num_outputs: int, init_u: float = -2.0, init_w: float = 0.0):
        super().__init__(input_shape, num_outputs)
        if self.num_series != 1 or num_outputs != 1:
            raise IncompatibleDataError(f"its scalar weights read one input a step and give one output; the data "
                                        f"has {self.num_series} series and {num_outputs} targets")
        self.u = nn.Parameter(torch.tensor(float(init_u)))
        self.w = nn.Parameter(torch.tensor(float(init_w)))

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        state = sequences.new_zeros(len(sequences))
        for step in range(sequences.shape[1]):
            state = sequences[:, step, 0] * self.u + state * self.w
        return state.unsqueeze(1)
