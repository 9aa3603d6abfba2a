"""Building blocks shared by several nets."""

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution without bias (the BatchNorm after it has one), padded to keep the size at stride 1, then
    BatchNorm and ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class PixelsIn(nn.Module):
    """A net behind its data's normalisation, pixels * scale + shift per channel: an exported image model that
    takes images as they are decoded, values 0-255."""

    def __init__(self, net: nn.Module, shift: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels * self.scale + self.shift)
