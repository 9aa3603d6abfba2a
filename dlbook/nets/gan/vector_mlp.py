"""Dense GAN nets for vectors (the DL Workshop, ch. 7, Ex. 7.02-7.04): a stack of linear layers, each with its own
activation, as the book's Keras Sequential(Dense(width, activation, kernel_initializer)) models.

Hidden layers start from Keras' he_uniform (U(+-sqrt(6 / fan_in))) and the output layer from its default,
glorot_uniform, as the book leaves the last Dense without a kernel_initializer; biases start at 0. The
discriminator ends in one logit: the book's sigmoid is inside the GAN task's loss (BCE on logits), and a logit
above 0 is the book's probability above 0.5.
"""

import torch
from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError

ACTIVATIONS = {"linear": nn.Identity, "relu": nn.ReLU, "elu": nn.ELU, "selu": nn.SELU, "tanh": nn.Tanh}


def dense_stack(widths: list[int], activations: list[str]) -> nn.Sequential:
    """Linear layers widths[0] -> widths[1] -> ..., layer i followed by activations[i]."""
    if len(activations) != len(widths) - 1:
        raise DlbookError(f"{len(widths) - 1} layers need as many activations, got {len(activations)}: "
                          f"{list(activations)}")
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths, widths[1:])):
        linear = nn.Linear(width_in, width_out)
        if i < len(widths) - 2:
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")  # he_uniform
        else:
            nn.init.xavier_uniform_(linear.weight)  # glorot_uniform
        nn.init.zeros_(linear.bias)
        if activations[i] not in ACTIVATIONS:
            raise DlbookError(f"activation {activations[i]!r} is not one of {', '.join(ACTIVATIONS)}")
        layers += [linear, ACTIVATIONS[activations[i]]()]
    return nn.Sequential(*layers)


def vector_width(input_shape: tuple[int, ...], num_classes: int, net: str) -> int:
    if len(input_shape) != 1:
        raise IncompatibleDataError(f"the dense {net} takes vectors, the data gives shape "
                                    f"{'x'.join(map(str, input_shape))}")
    if num_classes:
        raise DlbookError(f"the dense {net} has no label input: set model.conditional=false")
    return input_shape[0]


class DenseGenerator(nn.Module):
    """latent -> hidden_sizes (each with its activation) -> the data's width (output_activation)."""

    def __init__(self, input_shape: tuple[int], num_classes: int, latent_dim: int,
                 hidden_sizes: tuple[int, ...] = (32, 32, 64, 32, 32),
                 activations: tuple[str, ...] = ("linear", "relu", "elu", "elu", "selu"),
                 output_activation: str = "selu"):
        super().__init__()
        width = vector_width(input_shape, num_classes, "generator")
        self.layers = dense_stack([latent_dim, *hidden_sizes, width], [*activations, output_activation])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers(z)


class DenseDiscriminator(nn.Module):
    """the data's width -> hidden_sizes (each with its activation) -> 1 logit."""

    def __init__(self, input_shape: tuple[int], num_classes: int, hidden_sizes: tuple[int, ...] = (16, 16, 16),
                 activations: tuple[str, ...] = ("relu", "relu", "relu")):
        super().__init__()
        width = vector_width(input_shape, num_classes, "discriminator")
        self.layers = dense_stack([width, *hidden_sizes, 1], [*activations, "linear"])

    def forward(self, points: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers(points).squeeze(1)
