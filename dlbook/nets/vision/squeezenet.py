"""SqueezeNet (Iandola et al. 2016): Fire modules, a 1x1 "squeeze" convolution to few channels and an "expand" layer
of 1x1 and 3x3 convolutions side by side, concatenated; no fully connected layer: a 1x1 convolution to the classes,
ReLU and a global average pool give the logits.

`version` "1.0" is the paper's (7x7 stride-2 first convolution to 96 channels, pools after it, fire4 and fire8);
"1.1" the lighter one of the authors' repository (3x3 stride-2 to 64 channels, pools earlier). The ImageNet stem is
that stride-2 first convolution (224 px -> 13x13 at the end); the CIFAR stem a 3x3 stride-1 convolution of the same
width (32 px -> 4x4). Max-pools round up, as the original Caffe ones do.
"""

import torch
from torch import nn

from dlbook.nets.vision.layers import he_init, choice, stem_for

# Per version: the first convolution's channels and kernel, then "pool" or a Fire module's (squeeze, expand) channels
# (each of its two expand convolutions has `expand`).
LAYOUTS = {
    "1.0": ((96, 7), ("pool", (16, 64), (16, 64), (32, 128), "pool", (32, 128), (48, 192), (48, 192), (64, 256),
                      "pool", (64, 256))),
    "1.1": ((64, 3), ("pool", (16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool", (48, 192), (48, 192),
                      (64, 256), (64, 256))),
}


class Fire(nn.Module):
    def __init__(self, in_channels: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_channels, squeeze, 1), nn.ReLU(inplace=True))
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=True))
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU(inplace=True))
        self.out_channels = 2 * expand

        he_init(self)

    def forward(self, x):
        squeezed = self.squeeze(x)
        return torch.cat([self.expand1x1(squeezed), self.expand3x3(squeezed)], dim=1)


class SqueezeNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, version: str = "1.1", stem: str = "auto",
                 dropout: float = 0.5):
        super().__init__()
        (channels, kernel), layout = choice("model.net.version", str(version), LAYOUTS)
        stem = stem_for(f"SqueezeNet {version}", stem, input_shape, cifar_minimum=8, imagenet_minimum=32)
        first = nn.Conv2d(input_shape[0], channels, kernel, stride=2) if stem == "imagenet" else \
            nn.Conv2d(input_shape[0], channels, 3, padding=1)
        layers: list[nn.Module] = [first, nn.ReLU(inplace=True)]
        for item in layout:
            if item == "pool":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                layers.append(Fire(channels, *item))
                channels = layers[-1].out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(channels, num_classes, 1), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.head(self.features(x))
