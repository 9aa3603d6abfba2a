"""Fully connected GAN (Goodfellow et al. 2014): works on images of any shape, flattened.

Generator: latent -> hidden... -> prod(input_shape), tanh. Discriminator: image -> hidden... -> 1 logit.
LeakyReLU(0.2) between layers (Hands-On Deep Learning Algorithms, ch. 8). With num_classes > 0 both nets
also see the label, embedded as a vector as wide as a one-hot label (conditional GAN, Mirza & Osindero 2014).
"""

import math

import torch
from torch import nn

from dlbook.nets.conditioning import LabelEmbedding


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers of the given widths with LeakyReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths, widths[1:])):
        if i:
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, latent_dim: int,
                 hidden_sizes: tuple[int, ...] = (128, 128)):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.label = LabelEmbedding(num_classes, (num_classes,))
        self.layers = mlp([latent_dim + self.label.width, *hidden_sizes, math.prod(input_shape)])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.layers(self.label(z, labels))).view(len(z), *self.input_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hidden_sizes: tuple[int, ...] = (128, 128)):
        super().__init__()
        self.label = LabelEmbedding(num_classes, (num_classes,))
        self.layers = mlp([math.prod(input_shape) + self.label.width, *hidden_sizes, 1])

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers(self.label(images.flatten(1), labels)).squeeze(1)  # one logit (or score) per image
