"""The two-block MNIST CNN of Hands-On Deep Learning Algorithms (ch. 6), sized from the input."""

from torch import nn


class MNISTCNN(nn.Module):
    """conv5x5(32) -> pool -> conv5x5(64) -> pool -> FC(1024) -> dropout -> FC(num_classes)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, channels: tuple[int, int] = (32, 64),
                 hidden_size: int = 1024, dropout: float = 0.5):
        super().__init__()
        in_channels, height, width = input_shape
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * (height // 4) * (width // 4), hidden_size), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
