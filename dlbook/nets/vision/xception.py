"""Xception (Chollet 2017; Advanced Deep Learning with Python, ch. 3): depthwise-separable convolutions throughout, in
an entry flow (two 3x3 convolutions, then three modules to 128, 256 and 728 channels that halve the size), a middle
flow (`middle_blocks`, 8 in the paper, modules of three 728-channel separable convolutions) and an exit flow (a module
to 1024 channels, separable convolutions to 1536 and 2048), then a global average pool and one linear layer.

Every module is ReLU-separable conv-BN units with a residual around it: the identity in the middle flow, a strided
1x1 convolution with BatchNorm where the module changes the shape (those end in a 3x3 stride-2 max-pool). The first
module starts without the ReLU, its input having just been activated. The ImageNet stem's first convolution has
stride 2 (224 px -> 7x7 at the end), the CIFAR stem's stride 1 (32 px -> 2x2). `width_multiplier` scales every
layer's channels.
"""

from torch import nn

from dlbook.nets.vision.layers import SeparableConv2d, check_multiplier, conv_bn, scaled, stem_for

ENTRY_MODULES = ((128, 128), (256, 256), (728, 728))  # the output channels of each module's separable convolutions
MIDDLE_MODULE = (728, 728, 728)
EXIT_MODULE = (728, 1024)
EXIT_CONVS = (1536, 2048)


def separable_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(SeparableConv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels))


class XceptionModule(nn.Module):
    def __init__(self, in_channels: int, channels: tuple[int, ...], stride: int, relu_first: bool = True):
        super().__init__()
        layers, width = [], in_channels
        for index, out_channels in enumerate(channels):
            if index or relu_first:
                layers.append(nn.ReLU())
            layers.append(separable_bn(width, out_channels))
            width = out_channels
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.layers = nn.Sequential(*layers)
        self.shortcut = nn.Identity() if stride == 1 and in_channels == width else \
            conv_bn(in_channels, width, 1, stride, activation=None)
        self.out_channels = width

    def forward(self, x):
        return self.layers(x) + self.shortcut(x)


class Xception(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, stem: str = "auto",
                 middle_blocks: int = 8, width_multiplier: float = 1.0):
        super().__init__()
        check_multiplier("model.net.width_multiplier", width_multiplier)
        stem = stem_for("Xception", stem, input_shape, cifar_minimum=16, imagenet_minimum=32)
        width = lambda *channels: tuple(scaled(c, width_multiplier) for c in channels)  # noqa: E731
        (c32, c64), modules = width(32, 64), []
        layers = [conv_bn(input_shape[0], c32, 3, 2 if stem == "imagenet" else 1), conv_bn(c32, c64, 3)]
        channels = c64
        for index, module_channels in enumerate(ENTRY_MODULES):
            modules.append(XceptionModule(channels, width(*module_channels), 2, relu_first=index > 0))
            channels = modules[-1].out_channels
        for _ in range(middle_blocks):
            modules.append(XceptionModule(channels, width(*MIDDLE_MODULE), 1))
        modules.append(XceptionModule(channels, width(*EXIT_MODULE), 2))
        channels = modules[-1].out_channels
        for out_channels in width(*EXIT_CONVS):
            modules += [separable_bn(channels, out_channels), nn.ReLU(inplace=True)]
            channels = out_channels
        self.features = nn.Sequential(*layers, *modules)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
