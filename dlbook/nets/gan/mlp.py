"""Fully connected GAN (Goodfellow et al. 2014): works on images of any shape, flattened.

Generator: latent -> hidden... -> prod(input_shape), tanh. Discriminator: image -> hidden... -> 1 logit.
LeakyReLU(0.2) between layers (Hands-On Deep Learning Algorithms, ch. 8). With num_classes > 0 both nets
also see the label, embedded as a vector as wide as a one-hot label (conditional GAN, Mirza & Osindero 2014).
The discriminator's `features` (its last hidden layer) feed InfoGAN's Q head; `score` finishes the forward pass.
"""

import math

import torch
from torch import nn

from dlbook.nets.gan.conditioning import LabelEmbedding


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
        widths = [math.prod(input_shape) + self.label.width, *hidden_sizes]
        self.feature_dim = widths[-1]
        self.layers = mlp([*widths, 1])

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # score(features(x)) without slicing the Sequential, which builds a new module on every call
        return self.layers(self.label(images.flatten(1), labels)).squeeze(1)  # one logit (or score) per image

    def features(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, feature_dim): the activations the last linear layer reads."""
        return self.layers[:-1](self.label(images.flatten(1), labels))

    def score(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers[-1](features).squeeze(1)
