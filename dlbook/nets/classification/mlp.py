"""Multilayer perceptron on flattened images or table rows; with no hidden layers it is softmax (or, with one
output, logistic) regression."""

import math

from torch import nn

from dlbook.errors import DlbookError

# "identity" keeps the hidden layers linear: the books' ablation of a net that cannot learn XOR.
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "identity": nn.Identity}


def activation_layer(name: str, key: str = "model.net.activation", choices: dict = ACTIVATIONS) -> type[nn.Module]:
    """The activation layer class called `name` among `choices`; another name is refused, naming setting and choices."""
    if name not in choices:
        raise DlbookError(f"{key}={name!r} is not one of {', '.join(choices)}.")
    return choices[name]


def xavier_uniform(layer: nn.Linear) -> None:
    """Keras' default for Dense layers (glorot_uniform weights, zero biases), which the TensorFlow books get."""
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


def zeros(layer: nn.Linear) -> None:
    """The Workshop's tf.zeros weights and biases; a net with hidden layers would keep its hidden units equal."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


INITS = {"default": None, "xavier_uniform": xavier_uniform, "zeros": zeros}  # default: PyTorch's own


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden_sizes: tuple[int, ...] = (),
                 activation: str = "relu", dropout: float = 0.0, init: str = "default"):
        super().__init__()
        activation_class = activation_layer(activation)
        if init not in INITS:
            raise DlbookError(f"model.net.init={init!r} is not one of {', '.join(INITS)}.")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), activation_class()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))  # logits: the loss applies the softmax (or the sigmoid)
        self.layers = nn.Sequential(*layers)
        if INITS[init] is not None:
            for layer in self.layers:
                if isinstance(layer, nn.Linear):
                    INITS[init](layer)

    def forward(self, x):
        return self.layers(x)
