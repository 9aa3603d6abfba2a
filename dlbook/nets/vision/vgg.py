"""VGG (Simonyan & Zisserman 2014): five stages of 3x3 convolutions (stride 1, padding 1) at 64, 128, 256, 512, 512
channels, each closed by a 2x2 max-pool, then FC-4096, FC-4096 and the classifier with dropout 0.5.

`depth` 11, 13, 16 or 19 picks the convolutions per stage (configurations A, B, D and E). The first FC layer takes the
whole last feature map: 7x7x512 at 224 px (VGG16: 138,357,544 parameters with 1000 classes), 1x1x512 at 32 px.
`width` (64) and `classifier_width` (4096) shrink the net; `batch_norm` adds BatchNorm after each convolution.
"""

from torch import nn

from dlbook.nets.vision.layers import he_init, choice, image_size

CONVS_PER_STAGE = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
STAGE_WIDTHS = (1, 2, 4, 8, 8)  # times `width`
MIN_INPUT_SIZE = 32  # five 2x2 poolings


class VGG(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int = 16, width: int = 64,
                 classifier_width: int = 4096, dropout: float = 0.5, batch_norm: bool = False):
        super().__init__()
        convs_per_stage = choice("model.net.depth", depth, CONVS_PER_STAGE)
        channels, height, image_width = image_size(f"VGG{depth}", input_shape, MIN_INPUT_SIZE)
        layers: list[nn.Module] = []
        for convs, stage_width in zip(convs_per_stage, STAGE_WIDTHS):
            for _ in range(convs):
                out_channels = stage_width * width
                layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ReLU(inplace=True))
                channels = out_channels
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * (height // 32) * (image_width // 32), classifier_width), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(classifier_width, classifier_width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(classifier_width, num_classes),
        )

        he_init(self)

    def forward(self, x):
        return self.classifier(self.features(x))
