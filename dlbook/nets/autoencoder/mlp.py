"""Fully connected autoencoder: Linear layers down to the code and mirrored Linear layers back to pixel logits (the
task's loss applies the sigmoid). One hidden size is the books' undercomplete (784-32-784, Hands-On ch. 10;
784-256-784, TF 1.x Cookbook ch. 8) or overcomplete (784-1024-784, sparse) autoencoder; several make a stacked
one, which `tied` decodes with the encoder's transposed weights (TF 1.x Cookbook ch. 8) and the task can pretrain
greedily, a layer at a time (layer_reconstruction)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlbook.errors import DlbookError, check_sizes
from dlbook.nets.classification.mlp import activation_layer


class MLPAutoencoder(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], hidden_sizes: tuple[int, ...] = (32,),
                 activation: str = "relu", tied: bool = False):
        super().__init__()
        activation_class = activation_layer(activation)
        if not hidden_sizes:
            raise DlbookError("model.net.hidden_sizes is empty; an autoencoder needs at least its code layer.")
        check_sizes("model.net.hidden_sizes", hidden_sizes)
        self.input_shape = tuple(input_shape)
        widths = [math.prod(input_shape), *hidden_sizes]
        self.encoder = nn.ModuleList(nn.Linear(wide, narrow) for wide, narrow in zip(widths, widths[1:]))
        self.tied = tied
        if tied:  # decoder layer i is encoder layer i's weight transposed, with a bias of its own
            self.decoder_biases = nn.ParameterList(nn.Parameter(torch.zeros(wide)) for wide in widths[:-1])
        else:
            self.decoder = nn.ModuleList(nn.Linear(narrow, wide) for wide, narrow in zip(widths, widths[1:]))
        self.activation = activation_class()

    @property
    def depth(self) -> int:
        return len(self.encoder)

    def encode_layer(self, index: int, h: torch.Tensor) -> torch.Tensor:
        return self.activation(self.encoder[index](h))

    def decode_layer(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """Layer `index`'s decoder, before its activation."""
        if self.tied:
            return F.linear(h, self.encoder[index].weight.t(), self.decoder_biases[index])
        return self.decoder[index](h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for index in range(self.depth):
            h = self.encode_layer(index, h)
        return h

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Pixel logits, shaped as the input."""
        h = code
        for index in reversed(range(self.depth)):
            h = self.decode_layer(index, h)
            if index:
                h = self.activation(h)
        return h.view(-1, *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def layer_reconstruction(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """Layer `index` alone, as greedy pretraining trains it: h (the outputs of the layers below, or the images
        for the first) encoded and decoded; pixel logits for the first layer, activations for the others."""
        out = self.decode_layer(index, self.encode_layer(index, h.flatten(1)))
        return out.view(-1, *self.input_shape) if index == 0 else self.activation(out)
