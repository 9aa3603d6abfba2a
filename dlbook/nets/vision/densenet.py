"""DenseNet-BC (Huang et al. 2017): dense blocks in which each layer (BN-ReLU-1x1 conv to 4k channels, BN-ReLU-3x3
conv to k) takes the concatenation of all the block's earlier outputs, and transitions between them (BN-ReLU-1x1 conv
keeping half the channels, 2x2 average pool).

`depth` 121, 169, 201 or 264 picks the layers per block; `growth_rate` is k (32 in the paper's ImageNet nets). The
ImageNet stem is a 7x7 stride-2 convolution to 2k channels and a 3x3 stride-2 max-pool (224 px -> 7x7 at the end); the
CIFAR stem a 3x3 convolution to 2k channels (32 px -> 4x4). The net ends in BN-ReLU, a global average pool and one
linear layer.
"""

import torch
from torch import nn

from dlbook.nets.vision.layers import bn_relu_conv, choice, conv_bn, stem_for

LAYERS_PER_BLOCK = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32), 264: (6, 12, 64, 48)}
BOTTLENECK_WIDTH = 4  # the 1x1 convolution's channels, times the growth rate
COMPRESSION = 0.5  # the channels a transition keeps


class DenseBlock(nn.Module):
    def __init__(self, in_channels: int, layers: int, growth_rate: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(bn_relu_conv(in_channels + index * growth_rate, BOTTLENECK_WIDTH * growth_rate, 1),
                          bn_relu_conv(BOTTLENECK_WIDTH * growth_rate, growth_rate, 3))
            for index in range(layers))
        self.out_channels = in_channels + layers * growth_rate

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class DenseNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int = 121, growth_rate: int = 32,
                 stem: str = "auto"):
        super().__init__()
        layers_per_block = choice("model.net.depth", depth, LAYERS_PER_BLOCK)
        stem = stem_for(f"DenseNet-{depth}", stem, input_shape, cifar_minimum=8, imagenet_minimum=32)
        channels = 2 * growth_rate
        if stem == "imagenet":
            layers = [conv_bn(input_shape[0], channels, 7, 2), nn.MaxPool2d(3, 2, 1)]
        else:
            layers = [nn.Conv2d(input_shape[0], channels, 3, padding=1, bias=False)]
        for index, count in enumerate(layers_per_block):
            block = DenseBlock(channels, count, growth_rate)
            layers.append(block)
            channels = block.out_channels
            if index < len(layers_per_block) - 1:
                layers += [bn_relu_conv(channels, int(channels * COMPRESSION), 1), nn.AvgPool2d(2)]
                channels = int(channels * COMPRESSION)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
