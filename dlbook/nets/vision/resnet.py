"""Residual networks (He et al. 2015), and with `preact` the pre-activation ones (He et al. 2016, "Identity
Mappings in Deep Residual Networks"; Advanced Deep Learning with Python, ch. 3).

`depth` 18, 34, 50, 101 or 152: the ImageNet ResNets, four stages of 64, 128, 256, 512 channels (times 4 at the output
of the bottleneck blocks of 50 and deeper), the first at stride 1, the others halving the size in their first block.
Their ImageNet stem is a 7x7 stride-2 convolution and a 3x3 stride-2 max-pool (224 px -> 56); the CIFAR stem one 3x3
convolution (32 px stays 32), as the book's pre-activation ResNet-34 on CIFAR-10 has.
`depth` 20, 32, 44, 56 or 110: the CIFAR ResNets of the paper's section 4.2, three stages of (depth - 2) / 6 basic
blocks at 16, 32, 64 channels after one 3x3 convolution. Their shortcuts that change the shape are 1x1 projections
(the paper's option B) rather than its zero-padded identities (option A): ResNet-20 has 272,474 parameters
(0.27M in the paper).

Every net ends in a global average pool and one linear layer. `width` scales the channels (64 for the ImageNet
ResNets, 16 for the CIFAR ones).
"""

from torch import nn

from dlbook.errors import DlbookError
from dlbook.nets.vision.layers import bn_relu_conv, conv_bn, stem_for

IMAGENET_BLOCKS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def shortcut(in_channels: int, out_channels: int, stride: int, batch_norm: bool = True) -> nn.Module:
    """Identity where the shape stays; else a strided 1x1 projection (with BatchNorm in the original blocks)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
    return nn.Sequential(projection, nn.BatchNorm2d(out_channels)) if batch_norm else projection


class BasicBlock(nn.Module):
    """ReLU(x + BN(conv3x3(ReLU(BN(conv3x3(x))))))."""
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.residual = nn.Sequential(conv_bn(in_channels, channels, 3, stride), conv_bn(channels, channels,
                                                                                         activation=None))
        self.shortcut = shortcut(in_channels, channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ReLU(x + 1x1 expansion(3x3(1x1 reduction(x)))), the 3x3 carrying the stride."""
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.residual = nn.Sequential(conv_bn(in_channels, channels, 1), conv_bn(channels, channels, 3, stride),
                                      conv_bn(channels, out_channels, 1, activation=None))
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.residual(x) + self.shortcut(x))


class PreActBlock(nn.Module):
    """x + conv3x3(ReLU(BN(conv3x3(ReLU(BN(x)))))): nothing after the addition, so the identity path is clean.
    A projection shortcut takes the block's first activation, as the paper's does."""
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.preactivation = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.residual = self.residual_layers(in_channels, channels, stride)
        self.projection = None if stride == 1 and in_channels == out_channels else \
            shortcut(in_channels, out_channels, stride, batch_norm=False)

    @staticmethod
    def residual_layers(in_channels: int, channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False),
                             bn_relu_conv(channels, channels, 3))

    def forward(self, x):
        activated = self.preactivation(x)
        return self.residual(activated) + (x if self.projection is None else self.projection(activated))


class PreActBottleneck(PreActBlock):
    """The pre-activation bottleneck: 1x1 reduction, 3x3 (strided), 1x1 expansion, each after BN and ReLU."""
    expansion = 4

    @staticmethod
    def residual_layers(in_channels: int, channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False),
                             bn_relu_conv(channels, channels, 3, stride),
                             bn_relu_conv(channels, channels * PreActBottleneck.expansion, 1))


BLOCKS = {(False, "basic"): BasicBlock, (False, "bottleneck"): Bottleneck,
          (True, "basic"): PreActBlock, (True, "bottleneck"): PreActBottleneck}


class ResNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int = 18, stem: str = "auto",
                 preact: bool = False, width: int | None = None):
        super().__init__()
        if depth in IMAGENET_BLOCKS:
            kind, blocks_per_stage = IMAGENET_BLOCKS[depth]
            width = width or 64
            stem = stem_for(f"ResNet-{depth}", stem, input_shape, cifar_minimum=8, imagenet_minimum=32)
        elif depth in CIFAR_DEPTHS:
            if stem == "imagenet":
                raise DlbookError(f"model.net.stem=imagenet: the CIFAR ResNet-{depth} has only its own 3x3 stem; "
                                  f"use stem=cifar (or auto), or depth 18, 34, 50, 101 or 152 for the ImageNet stem.")
            kind, blocks_per_stage = "basic", ((depth - 2) // 6,) * 3
            width = width or 16
            stem = stem_for(f"ResNet-{depth}", "cifar", input_shape, cifar_minimum=4, imagenet_minimum=4)
        else:
            raise DlbookError(f"model.net.depth={depth} is not one of {', '.join(map(str, IMAGENET_BLOCKS))} "
                              f"(ImageNet ResNets) or {', '.join(map(str, CIFAR_DEPTHS))} (CIFAR ResNets).")
        block = BLOCKS[preact, kind]
        if stem == "imagenet":
            self.stem = nn.Sequential(conv_bn(input_shape[0], width, 7, 2), nn.MaxPool2d(3, 2, 1))
        elif preact:  # the block that follows normalises and activates
            self.stem = nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False)
        else:
            self.stem = conv_bn(input_shape[0], width)
        stages, channels = [], width
        for index, blocks in enumerate(blocks_per_stage):
            stage_channels = width * 2 ** index
            layers = []
            for position in range(blocks):
                layers.append(block(channels, stage_channels, 2 if position == 0 and index > 0 else 1))
                channels = stage_channels * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        # A pre-activation net's last block ends in an addition: normalise and activate before pooling.
        self.head = nn.Sequential(*([nn.BatchNorm2d(channels), nn.ReLU(inplace=True)] if preact else []),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))
