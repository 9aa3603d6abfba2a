"""LeNet-5 (LeCun et al. 1998): 32x32 input, C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84, output.

Smaller inputs of at least 28x28 are zero-padded to 32x32, as is usual for MNIST. The RBF output layer
of the paper is replaced by a linear layer trained with cross-entropy.
"""

from torch import nn
from torch.nn import functional as F

from dlbook.errors import IncompatibleDataError
from dlbook.nets.classification.mlp import activation_layer

INPUT_SIZE = 32
MIN_INPUT_SIZE = 28


class LeNet5(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, activation: str = "tanh"):
        super().__init__()
        in_channels, height, width = input_shape
        if not (MIN_INPUT_SIZE <= height <= INPUT_SIZE and MIN_INPUT_SIZE <= width <= INPUT_SIZE):
            raise IncompatibleDataError(
                f"LeNet-5 takes images of {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} to {INPUT_SIZE}x{INPUT_SIZE} pixels, "
                f"the data gives {height}x{width}")
        left, top = (INPUT_SIZE - width) // 2, (INPUT_SIZE - height) // 2
        self.padding = (left, INPUT_SIZE - width - left, top, INPUT_SIZE - height - top)
        act = activation_layer(activation)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), act(), nn.AvgPool2d(2),  # C1, S2: 6@14x14
            nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),  # C3, S4: 16@5x5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(F.pad(x, self.padding)))
