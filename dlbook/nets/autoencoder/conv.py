"""Convolutional autoencoder (Hands-On ch. 10; TF 1.x Cookbook ch. 8): 3x3 convolutions with ReLU, each followed by
2x2 max pooling, down to a small map of `channels[-1]`; the decoder enlarges it back through the same sizes
(`upsample`: resize-convolutions or transposed convolutions) and a last 3x3 convolution gives pixel logits.
Pooling rounds down (28 -> 14 -> 7 -> 3), so the decoder can reach each size exactly."""

import torch
from torch import nn

from dlbook.errors import check_sizes
from dlbook.nets.autoencoder.layers import Upsample, halved_sizes


class ConvAutoencoder(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], channels: tuple[int, ...] = (16, 8, 8),
                 upsample: str = "resize", batch_norm: bool = False):
        super().__init__()
        check_sizes("model.net.channels", channels)
        in_channels, height, width = input_shape
        self.sizes = halved_sizes(height, width, len(channels), "The convolutional autoencoder")
        layers, previous = [], in_channels
        for out in channels:
            layers += [nn.Conv2d(previous, out, 3, padding=1), *([nn.BatchNorm2d(out)] if batch_norm else []),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            previous = out
        self.encoder = nn.Sequential(*layers)
        # Decoder level i enlarges channels[i]'s pooled map back to sizes[i], with channels[i - 1] (channels[0] at
        # the top, which the output convolution maps to the image's channels).
        self.upsamples = nn.ModuleList(Upsample(channels[i], channels[max(i - 1, 0)], upsample)
                                       for i in reversed(range(len(channels))))
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels[max(i - 1, 0)]) if batch_norm else nn.Identity()
                                   for i in reversed(range(len(channels))))
        self.output = nn.Conv2d(channels[0], in_channels, 3, padding=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = code
        for upsample, norm, size in zip(self.upsamples, self.norms, reversed(self.sizes)):
            h = torch.relu(norm(upsample(h, size)))
        return self.output(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
