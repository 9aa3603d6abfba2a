"""A recurrent layer's last hidden state, then one linear layer: the DL Workshop's SimpleRNN(32) -> Dense(1) stock
regressor (ch. 5, Ex. 5.03) and Advanced Deep Learning with Python's LSTM(20) -> Linear(1) that counts ones
(ch. 7)."""

import torch
from torch import nn

from dlbook.nets.sequence.recurrent import RecurrentLayer
from dlbook.nets.sequence.regressor import SequenceRegressor


class RecurrentRegressor(SequenceRegressor):
    """RecurrentLayer of `cell` units (rnn, lstm, gru) over the window -> the top layer's final hidden state ->
    dropout -> Linear(num_outputs). `implementation` torch (fused) or scratch (the hand-written cells);
    `hidden_bias=false` (scratch) keeps one bias a gate, Keras' parameter count. `init_range` starts every weight
    and bias of the recurrent layer uniform in [-init_range, init_range] (Advanced DL with Python's LSTM cell:
    sqrt(3 / hidden_size)); null keeps the implementation's own start."""

    def __init__(self, input_shape: tuple[int, int], num_outputs: int, cell: str = "rnn", hidden_size: int = 32,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 implementation: str = "torch", hidden_bias: bool = True, init_range: float | None = None):
        super().__init__(input_shape, num_outputs)
        self.recurrent = RecurrentLayer(cell, self.num_series, hidden_size, num_layers=num_layers,
                                        bidirectional=bidirectional, implementation=implementation,
                                        hidden_bias=hidden_bias)
        if init_range is not None:
            for parameter in self.recurrent.parameters():
                nn.init.uniform_(parameter, -init_range, init_range)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.recurrent.output_size, num_outputs)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        _, state = self.recurrent(windows)
        return self.head(self.dropout(self.recurrent.last_hidden(state)))
