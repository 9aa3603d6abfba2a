"""Images read as sequences: each pixel row is one time step (sequential MNIST), the recurrent layer's last state
is classified (Pro Deep Learning with TensorFlow 2, ch. 4: LSTM(64) over MNIST's 28 rows)."""

import torch
from torch import nn

from dlbook.nets.sequence.recurrent import RecurrentLayer


class RowRecurrentClassifier(nn.Module):
    """(N, C, H, W) images -> H steps of C*W values -> `cell` layer(s) -> the last hidden state -> Linear logits.
    `recurrent` options (implementation, bidirectional, num_layers, ...) go to the recurrent layer."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, cell: str = "lstm",
                 hidden_size: int = 64, **recurrent):
        super().__init__()
        channels, _, width = input_shape
        self.recurrent = RecurrentLayer(cell, channels * width, hidden_size, **recurrent)
        self.classifier = nn.Linear(self.recurrent.output_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows = images.permute(0, 2, 1, 3).flatten(2)  # (N, H, C*W): row t of every channel is step t
        _, state = self.recurrent(rows)
        return self.classifier(self.recurrent.last_hidden(state))
