"""One linear layer: linear regression as a single neuron (Pro Deep Learning with TensorFlow 2, ch. 2)."""

from torch import nn


class Linear(nn.Module):
    def __init__(self, num_features: int, num_outputs: int):
        super().__init__()
        self.layer = nn.Linear(num_features, num_outputs)

    def forward(self, x):
        return self.layer(x)
