"""ResNet-9 of Myrtle.ai's DAWNBench CIFAR-10 entry (David Page, "How to train your ResNet", 2018).

prep conv(64) -> layer1: conv(128), max-pool, residual of two conv(128) -> layer2: conv(256), max-pool ->
layer3: conv(512), max-pool, residual of two conv(512) -> global max-pool -> linear, logits x 0.125.
Every conv is 3x3, no bias, then BatchNorm and ReLU. Widths scale with `width` (64 in the original).
"""

from torch import nn

from dlbook.errors import IncompatibleDataError
from dlbook.nets.layers import conv_bn_relu

MIN_INPUT_SIZE = 8  # three 2x2 poolings leave at least one pixel


class Residual(nn.Module):
    """x + two conv-BN-ReLU blocks of x."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv_bn_relu(channels, channels)
        self.conv2 = conv_bn_relu(channels, channels)

    def forward(self, x):
        return x + self.conv2(self.conv1(x))


class ResNet9(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: int = 64,
                 output_scale: float = 0.125):
        super().__init__()
        in_channels, height, image_width = input_shape
        if min(height, image_width) < MIN_INPUT_SIZE:
            raise IncompatibleDataError(f"ResNet-9 pools three times and takes images of at least {MIN_INPUT_SIZE}x"
                                        f"{MIN_INPUT_SIZE} pixels, the data gives {height}x{image_width}")
        self.prep = conv_bn_relu(in_channels, width)
        self.layer1 = nn.Sequential(conv_bn_relu(width, 2 * width), nn.MaxPool2d(2), Residual(2 * width))
        self.layer2 = nn.Sequential(conv_bn_relu(2 * width, 4 * width), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn_relu(4 * width, 8 * width), nn.MaxPool2d(2), Residual(8 * width))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(8 * width, num_classes, bias=False)
        self.output_scale = output_scale  # keeps the initial logits small, as the original does

    def forward(self, x):
        x = self.prep(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.pool(x).flatten(1)
        return self.fc(x) * self.output_scale
