"""A softmax layer on an autoencoder's codes (Pro DL ch. 5): the autoencoder is first pretrained to reconstruct the
images (`pretrain_step`), then the layer learns the classes from its codes, the encoder frozen (`freeze`) or
trained with it."""

import torch
import torch.nn.functional as F
from torch import nn


class AutoencoderClassifier(nn.Module):
    pretrain_layers = 1  # the whole autoencoder at once

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, autoencoder, freeze: bool = True):
        super().__init__()
        self.autoencoder = autoencoder(input_shape=input_shape)
        with torch.no_grad():
            code_size = self.autoencoder.encode(torch.zeros(1, *input_shape)).flatten(1).shape[1]
        self.head = nn.Linear(code_size, num_classes)
        self.freeze = freeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.autoencoder.encode(x).flatten(1)
        return self.head(code.detach() if self.freeze else code)

    def pretrain_step(self, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The autoencoder's binary cross-entropy on the images in [0, 1], to minimise, and its mean squared
        error."""
        logits = self.autoencoder(x)
        return F.binary_cross_entropy_with_logits(logits, x), (torch.sigmoid(logits.detach()) - x).square().mean()
