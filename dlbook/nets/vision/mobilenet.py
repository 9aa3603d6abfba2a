"""MobileNets: `version` 1 (Howard et al. 2017), thirteen depthwise-separable blocks (3x3 depthwise then 1x1
pointwise convolution, each with BatchNorm and ReLU), or 2 (Sandler et al. 2018; Advanced Deep Learning with Python,
ch. 3), seventeen inverted residual blocks: a 1x1 expansion by t with ReLU6, a 3x3 depthwise convolution with ReLU6 and
a linear 1x1 projection, added to the input where the shape stays.

The ImageNet stem is a 3x3 stride-2 convolution (224 px -> 7x7 at the end); the CIFAR stem the same at stride 1
(32 px -> 2x2). `width_multiplier` is the paper's alpha: it scales every layer's channels. The net ends in a global
average pool and one linear layer (dropout 0.2 before it in version 2).
"""

from torch import nn

from dlbook.nets.vision.layers import check_multiplier, choice, conv_bn, scaled, stem_for

# Version 1: (output channels, stride) of each depthwise-separable block after the 32-channel stem.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5, (1024, 2), (1024, 1))
# Version 2: (expansion t, output channels c, repeats n, first stride s), the paper's table 2.
V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))
V2_LAST_CHANNELS = 1280


def separable_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Version 1's unit: depthwise 3x3 (stride) and pointwise 1x1, each with BatchNorm and ReLU."""
    return nn.Sequential(conv_bn(in_channels, in_channels, 3, stride, groups=in_channels),
                         conv_bn(in_channels, out_channels, 1))


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        expand = [conv_bn(in_channels, hidden, 1, activation=nn.ReLU6)] if expansion != 1 else []
        self.layers = nn.Sequential(*expand, conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
                                    conv_bn(hidden, out_channels, 1, activation=None))  # linear bottleneck
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        return x + self.layers(x) if self.residual else self.layers(x)


class MobileNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, version: int = 2, stem: str = "auto",
                 width_multiplier: float = 1.0, dropout: float = 0.2):
        super().__init__()
        choice("model.net.version", version, (1, 2))
        check_multiplier("model.net.width_multiplier", width_multiplier)
        stem = stem_for(f"MobileNet v{version}", stem, input_shape, cifar_minimum=16, imagenet_minimum=32)
        channels = scaled(32, width_multiplier)
        activation = nn.ReLU if version == 1 else nn.ReLU6
        layers = [conv_bn(input_shape[0], channels, 3, 2 if stem == "imagenet" else 1, activation=activation)]
        if version == 1:
            for out_channels, stride in V1_BLOCKS:
                layers.append(separable_block(channels, scaled(out_channels, width_multiplier), stride))
                channels = scaled(out_channels, width_multiplier)
        else:
            for expansion, out_channels, repeats, first_stride in V2_BLOCKS:
                for index in range(repeats):
                    layers.append(InvertedResidual(channels, scaled(out_channels, width_multiplier),
                                                   first_stride if index == 0 else 1, expansion))
                    channels = scaled(out_channels, width_multiplier)
            layers.append(conv_bn(channels, scaled(V2_LAST_CHANNELS, width_multiplier), 1, activation=nn.ReLU6))
            channels = scaled(V2_LAST_CHANNELS, width_multiplier)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  *([nn.Dropout(dropout)] if version == 2 and dropout else []),
                                  nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
