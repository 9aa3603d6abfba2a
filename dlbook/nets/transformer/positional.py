"""Token embeddings with the position of each token added: the original transformer's fixed sinusoids, or a learned
vector per position (GPT). Attention alone is blind to order; these give it."""

import math

import torch
from torch import nn

from dlbook.errors import DlbookError

POSITIONS = ("sinusoidal", "learned")


def sinusoids(max_length: int, d_model: int) -> torch.Tensor:
    """(max_length, d_model): PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    positions = torch.arange(max_length, dtype=torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_length, d_model)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies)[:, :d_model // 2]
    return table


class TokenEmbedding(nn.Module):
    """Token ids (B, L) -> embeddings (B, L, d_model), each multiplied by sqrt(d_model) with `scale` (Vaswani et
    al., so that the unit-scale embeddings are not drowned by the positions), plus the positions' encoding, then
    dropout. `positions`: sinusoidal (a fixed table, not a parameter, as in Keras' and the annotated transformer's
    code) or learned (an embedding of each position, GPT's). Up to `max_length` positions."""

    def __init__(self, vocab_size: int, d_model: int, max_length: int, positions: str = "sinusoidal",
                 dropout: float = 0.0, scale: bool = True):
        super().__init__()
        if positions not in POSITIONS:
            raise DlbookError(f"model.net.positions={positions!r} is not one of {', '.join(POSITIONS)}.")
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.scale = math.sqrt(d_model) if scale else 1.0
        self.max_length = max_length
        if positions == "learned":
            self.positions = nn.Embedding(max_length, d_model)
        else:
            self.positions = None
            self.register_buffer("sinusoids", sinusoids(max_length, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def position_table(self, length: int) -> torch.Tensor:
        if length > self.max_length:
            raise DlbookError(f"A sequence of {length} tokens is longer than the {self.max_length} positions the "
                              f"net encodes (the data's longest sequence, or model.net.block_size).")
        return self.sinusoids[:length] if self.positions is None else self.positions.weight[:length]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.tokens(tokens) * self.scale + self.position_table(tokens.shape[1]))
