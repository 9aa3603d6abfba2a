"""One linear layer: linear regression as a single neuron (Pro Deep Learning with TensorFlow 2, ch. 2)."""

from torch import nn

from dlbook.errors import DlbookError
from dlbook.nets.classification.mlp import INITS


class Linear(nn.Module):
    def __init__(self, num_features: int, num_outputs: int, init: str = "default"):
        super().__init__()
        if init not in INITS:
            raise DlbookError(f"model.net.init={init!r} is not one of {', '.join(INITS)}.")
        self.layer = nn.Linear(num_features, num_outputs)
        if INITS[init] is not None:
            INITS[init](self.layer)

    def forward(self, x):
        return self.layer(x)
