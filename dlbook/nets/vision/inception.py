"""GoogLeNet, Inception v1 (Szegedy et al. 2014): nine Inception modules, each four parallel paths (1x1; 1x1 then
3x3; 1x1 then 5x5; 3x3 max-pool then 1x1) concatenated along the channels, the 1x1s reducing the channels first.

Two auxiliary classifiers, after modules 4a and 4d, feed gradient to the middle of the net: in training mode the net
returns (logits, aux1 logits, aux2 logits) and the task adds `aux_weight` (0.3, the paper's) times their losses; in
eval mode it returns the logits alone. The ImageNet stem is the paper's (7x7 stride-2 convolution, pool, 1x1 and 3x3
convolutions, pool: 224 px -> 28); the CIFAR stem one 3x3 convolution (32 px stays 32). Every convolution is followed
by BatchNorm (the paper, before batch normalisation, had local response normalisation in the stem). Each auxiliary
head averages its input over a 4x4 grid (the paper's 5x5 stride-3 pool of 14x14 maps at 224 px). `width` scales
every module's channels.
"""

import torch
from torch import nn

from dlbook.errors import check_number
from dlbook.nets.vision.layers import check_multiplier, conv_bn, scaled, stem_for

# (1x1, 3x3 reduction, 3x3, 5x5 reduction, 5x5, pool projection) of modules 3a-3b, 4a-4e and 5a-5b.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class InceptionModule(nn.Module):
    def __init__(self, in_channels: int, one: int, three_reduce: int, three: int, five_reduce: int, five: int,
                 pool_projection: int):
        super().__init__()
        self.paths = nn.ModuleList([
            conv_bn(in_channels, one, 1),
            nn.Sequential(conv_bn(in_channels, three_reduce, 1), conv_bn(three_reduce, three, 3)),
            nn.Sequential(conv_bn(in_channels, five_reduce, 1), conv_bn(five_reduce, five, 5)),
            nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(in_channels, pool_projection, 1)),
        ])
        self.out_channels = one + three + five + pool_projection

    def forward(self, x):
        return torch.cat([path(x) for path in self.paths], dim=1)


class AuxiliaryClassifier(nn.Sequential):
    """Average pool to 4x4, 1x1 conv to 128 channels, FC-1024, dropout 0.7, the classifier."""

    def __init__(self, in_channels: int, num_classes: int, channels: int, hidden: int):
        super().__init__(nn.AdaptiveAvgPool2d(4), conv_bn(in_channels, channels, 1), nn.Flatten(),
                         nn.Linear(16 * channels, hidden), nn.ReLU(inplace=True), nn.Dropout(0.7),
                         nn.Linear(hidden, num_classes))


class GoogLeNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, stem: str = "auto", width: float = 1.0,
                 aux_classifiers: bool = True, aux_weight: float = 0.3, dropout: float = 0.4):
        super().__init__()
        check_number("model.net.aux_weight", aux_weight, least=0, note=" (the auxiliary classifiers' losses' weight)")
        check_multiplier("model.net.width", width)
        stem = stem_for("GoogLeNet", stem, input_shape, cifar_minimum=8, imagenet_minimum=32)
        stem_channels = scaled(192, width)
        if stem == "imagenet":
            self.stem = nn.Sequential(conv_bn(input_shape[0], scaled(64, width), 7, 2), nn.MaxPool2d(3, 2, 1),
                                      conv_bn(scaled(64, width), scaled(64, width), 1),
                                      conv_bn(scaled(64, width), stem_channels, 3), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = conv_bn(input_shape[0], stem_channels, 3)
        channels, modules = stem_channels, {}
        for name, widths in MODULES.items():
            modules[name] = InceptionModule(channels, *(scaled(w, width) for w in widths))
            channels = modules[name].out_channels
        self.stage3 = nn.Sequential(modules["3a"], modules["3b"], nn.MaxPool2d(3, 2, 1))
        self.stage4a = modules["4a"]
        self.stage4bcd = nn.Sequential(modules["4b"], modules["4c"], modules["4d"])
        self.stage4e5 = nn.Sequential(modules["4e"], nn.MaxPool2d(3, 2, 1), modules["5a"], modules["5b"])
        self.aux_weight = aux_weight
        self.aux1 = self.aux2 = None
        if aux_classifiers:
            heads = scaled(128, width), scaled(1024, width)
            self.aux1 = AuxiliaryClassifier(modules["4a"].out_channels, num_classes, *heads)
            self.aux2 = AuxiliaryClassifier(modules["4d"].out_channels, num_classes, *heads)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, num_classes))

    def forward(self, x):
        after_4a = self.stage4a(self.stage3(self.stem(x)))
        after_4d = self.stage4bcd(after_4a)
        logits = self.head(self.stage4e5(after_4d))
        if self.training and self.aux1 is not None:
            return logits, self.aux1(after_4a), self.aux2(after_4d)
        return logits
