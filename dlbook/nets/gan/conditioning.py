"""Label conditioning shared by the GAN nets: a learned embedding of the class appended to the input."""

import math

import torch
from torch import nn


class LabelEmbedding(nn.Module):
    """Appends an embedding of each label, shaped `shape`, to x along dim 1 (features, or channels of an image).

    With num_classes=0 the net is unconditional and x passes through unchanged.
    """

    def __init__(self, num_classes: int, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)
        self.embedding = nn.Embedding(num_classes, math.prod(shape)) if num_classes else None

    @property
    def width(self) -> int:
        """How much dim 1 grows."""
        return self.shape[0] if self.embedding is not None else 0

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.embedding is None:
            return x
        return torch.cat([x, self.embedding(labels).view(len(x), *self.shape)], dim=1)
