"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), on one device: conv 96@11x11 stride 4, 256@5x5, 384@3x3, 384@3x3,
256@3x3, local response normalisation after the first two, overlapping 3x3 stride-2 max-pools after the first,
second and fifth, then FC-4096, FC-4096 with dropout 0.5 and the classifier.

The ImageNet stem is the paper's first convolution (224 px -> 55, padded by 2); the CIFAR stem a 3x3 stride-1
convolution, so that 32 px images keep enough pixels for the three poolings (32 -> 3). `width` scales every
convolution's channels (1.0 is the paper's), `classifier_width` the FC layers.
"""

from torch import nn

from dlbook.nets.vision.layers import check_multiplier, flattened_size, he_init, scaled, stem_for

CONV_CHANNELS = (96, 256, 384, 384, 256)


def lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)  # the paper's n, alpha, beta, k


class AlexNet(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, stem: str = "auto", width: float = 1.0,
                 classifier_width: int = 4096, dropout: float = 0.5):
        super().__init__()
        check_multiplier("model.net.width", width)
        stem = stem_for("AlexNet", stem, input_shape, cifar_minimum=15, imagenet_minimum=63)
        c1, c2, c3, c4, c5 = (scaled(channels, width) for channels in CONV_CHANNELS)
        first = nn.Conv2d(input_shape[0], c1, 11, stride=4, padding=2) if stem == "imagenet" else \
            nn.Conv2d(input_shape[0], c1, 3, padding=1)
        self.features = nn.Sequential(
            first, nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(flattened_size(self.features, input_shape), classifier_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(classifier_width, classifier_width), nn.ReLU(inplace=True),
            nn.Linear(classifier_width, num_classes),
        )

        he_init(self)

    def forward(self, x):
        return self.classifier(self.features(x))
