"""The books' plain CNNs as one configurable net: conv blocks, then dense layers.

Each block is one convolution (standard, or depthwise-separable as Keras' SeparableConv2D) and its activation,
optionally followed by max-pooling and dropout. `padding` "valid" (Keras' default) shrinks each side by kernel-1,
"same" keeps it; pooling rounds down after valid convs and up after same ones, as Keras' and TF's pools of the same
padding do. Net-level `kernel`, `padding` and `separable` are the defaults a block may override. `init`
"xavier_uniform" starts every layer as Keras does (glorot-uniform weights, zero biases); "default" is PyTorch's.
"""

from collections.abc import Mapping, Sequence

from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.classification.mlp import ACTIVATIONS, INITS
from dlbook.nets.vision.layers import SeparableConv2d, choice

BLOCK_KEYS = ("channels", "kernel", "padding", "separable", "pool", "dropout")
PADDINGS = ("valid", "same")


class PlainCNN(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, conv_blocks: Sequence[Mapping],
                 hidden_sizes: Sequence[int] = (), dropout: float = 0.0, activation: str = "relu", kernel: int = 3,
                 padding: str = "valid", separable: bool = False, init: str = "default"):
        super().__init__()
        if len(input_shape) != 3:
            raise IncompatibleDataError(f"PlainCNN takes images (channels, height, width), the data gives shape "
                                        f"{tuple(input_shape)}")
        act = choice("model.net.activation", activation, ACTIVATIONS)
        initialise = choice("model.net.init", init, INITS)
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for index, block in enumerate(conv_blocks):
            unknown = set(block) - set(BLOCK_KEYS)
            if unknown or "channels" not in block:
                raise DlbookError(f"model.net.conv_blocks[{index}]={dict(block)} needs `channels` and takes only "
                                  f"{', '.join(BLOCK_KEYS)}.")
            settings = {"kernel": kernel, "padding": padding, "separable": separable, "pool": None, "dropout": 0.0,
                        **block}
            same = choice(f"model.net.conv_blocks[{index}].padding", settings["padding"], PADDINGS) == "same"
            size = settings["kernel"]
            conv = SeparableConv2d if settings["separable"] else nn.Conv2d
            layers += [conv(channels, settings["channels"], size, padding=(size - 1) // 2 if same else 0), act()]
            channels = settings["channels"]
            if not same:
                height, width = height - size + 1, width - size + 1
            if settings["pool"]:
                pool = settings["pool"]
                layers.append(nn.MaxPool2d(pool, ceil_mode=same))
                height, width = (-(-height // pool), -(-width // pool)) if same else (height // pool, width // pool)
            if min(height, width) < 1:
                raise IncompatibleDataError(f"PlainCNN's conv block {index} leaves no pixels of the data's "
                                            f"{input_shape[1]}x{input_shape[2]} images; use larger images or fewer "
                                            f"valid convolutions and poolings")
            if settings["dropout"]:
                layers.append(nn.Dropout(settings["dropout"]))
        self.features = nn.Sequential(*layers)
        dense: list[nn.Module] = [nn.Flatten()]
        features = channels * height * width
        for hidden in hidden_sizes:
            dense += [nn.Linear(features, hidden), act()]
            if dropout:
                dense.append(nn.Dropout(dropout))
            features = hidden
        dense.append(nn.Linear(features, num_classes))
        self.classifier = nn.Sequential(*dense)
        if initialise is not None:
            for layer in self.modules():
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    initialise(layer)

    def forward(self, x):
        return self.classifier(self.features(x))
