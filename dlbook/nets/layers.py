"""Building blocks shared by several nets."""

from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution without bias (the BatchNorm after it has one), padded to keep the size at stride 1, then
    BatchNorm and ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
