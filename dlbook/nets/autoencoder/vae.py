"""Variational autoencoder (Kingma & Welling 2014; Hands-On ch. 10, Pro DL ch. 5, TF 1.x Cookbook ch. 11, Advanced DL
ch. 5): the encoder gives the mean and log-variance of a Gaussian q(z|x), the decoder pixel logits from a code z.
The encoder is an MLP (`hidden_sizes`) or, with `conv_channels`, stride-2 4x4 convolutions with BatchNorm and
LeakyReLU (Pro DL's encoder); the decoder mirrors it, Linear layers or a Linear to the smallest map then stride-2
transposed convolutions. `num_classes` > 0 conditions both on the label (a CVAE): its one-hot vector is joined to
the encoder's features and to z."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlbook.errors import DlbookError, check_count, check_sizes
from dlbook.nets.autoencoder.layers import Upsample, halved_sizes
from dlbook.nets.classification.mlp import activation_layer


class VAE(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], latent_dim: int = 2, hidden_sizes: tuple[int, ...] = (512,),
                 conv_channels: tuple[int, ...] = (), num_classes: int = 0, activation: str = "relu"):
        super().__init__()
        activation_class = activation_layer(activation)
        if not conv_channels and not hidden_sizes:
            raise DlbookError("model.net.hidden_sizes and model.net.conv_channels are both empty; the encoder needs "
                              "one of them.")
        check_count("model.net.latent_dim", latent_dim)
        check_sizes("model.net.hidden_sizes", hidden_sizes)
        check_sizes("model.net.conv_channels", conv_channels)
        self.input_shape, self.latent_dim, self.num_classes = tuple(input_shape), latent_dim, num_classes
        channels, height, width = input_shape
        if conv_channels:
            self.sizes = halved_sizes(height, width, len(conv_channels), "The VAE's convolutional encoder")
            layers, previous = [], channels
            for out in conv_channels:
                layers += [nn.Conv2d(previous, out, 4, stride=2, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
                previous = out
            self.encoder = nn.Sequential(*layers, nn.Flatten())
            smallest = (height >> len(conv_channels), width >> len(conv_channels))
            self.map_shape = (previous, *smallest)
            features = math.prod(self.map_shape)
            self.decoder_input = nn.Linear(latent_dim + num_classes, features)
            # Level i enlarges to sizes[i] with conv_channels[i - 1], the image's channels at the top (logits).
            outs = [*conv_channels[:-1]][::-1] + [channels]
            self.upsamples = nn.ModuleList(Upsample(conv_channels[i], out, "transposed")
                                           for i, out in zip(reversed(range(len(conv_channels))), outs))
            self.norms = nn.ModuleList([nn.BatchNorm2d(out) for out in outs[:-1]])
        else:
            widths = [math.prod(input_shape), *hidden_sizes]
            self.encoder = nn.Sequential(nn.Flatten(), *[module for wide, narrow in zip(widths, widths[1:])
                                                         for module in (nn.Linear(wide, narrow),
                                                                        activation_class())])
            features = hidden_sizes[-1]
            back = [latent_dim + num_classes, *reversed(hidden_sizes)]
            self.decoder = nn.Sequential(*[module for wide, narrow in zip(back, back[1:])
                                           for module in (nn.Linear(wide, narrow), activation_class())],
                                         nn.Linear(back[-1], widths[0]))
        self.mean = nn.Linear(features + num_classes, latent_dim)
        self.log_var = nn.Linear(features + num_classes, latent_dim)

    def conditioned(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not self.num_classes:
            return h
        if labels is None:
            raise DlbookError("This VAE is conditioned on classes (model.conditional=true): it needs the labels.")
        return torch.cat([h, F.one_hot(labels, self.num_classes).to(h.dtype)], dim=1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and log-variance of q(z|x), each (N, latent_dim)."""
        h = self.conditioned(self.encoder(x), labels)
        return self.mean(h), self.log_var(h)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel logits, (N, channels, height, width)."""
        z = self.conditioned(z, labels)
        if not hasattr(self, "upsamples"):
            return self.decoder(z).view(-1, *self.input_shape)
        h = self.decoder_input(z).view(-1, *self.map_shape)
        levels = len(self.upsamples)
        for level, (upsample, size) in enumerate(zip(self.upsamples, reversed(self.sizes))):
            h = upsample(h, size)
            if level < levels - 1:
                h = F.leaky_relu(self.norms[level](h), 0.2)
        return h

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The reconstruction's pixel logits from the mean code: what the VAE gives without drawing."""
        return self.decode(self.encode(x, labels)[0], labels)
