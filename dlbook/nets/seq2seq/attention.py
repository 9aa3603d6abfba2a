"""Attention of a recurrent decoder over its encoder's outputs: Bahdanau et al.'s additive score (2015) and Luong et
al.'s multiplicative ones (2015), dot and general. Each scores decoder states (B, T, Q) against every encoder output
(B, S, K), gives zero weight to padded positions and returns the contexts (B, T, K), the weighted sums of the
encoder outputs, with the weights (B, T, S)."""

import torch
from torch import nn

from dlbook.errors import DlbookError

KINDS = ("none", "bahdanau", "luong_dot", "luong_general")


class Attention(nn.Module):
    """The shared part: softmax over the scores of the real source positions, and the context they weigh. What a
    score reads of the keys is the same at every decoding step: `prepare` computes it once per source."""

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return keys

    def scores(self, query: torch.Tensor, prepared: torch.Tensor) -> torch.Tensor:
        """(B, T, Q), the prepared keys (B, S, .) -> (B, T, S)."""
        raise NotImplementedError

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                prepared: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`mask` (B, S) is True at real source positions."""
        scores = self.scores(query, self.prepare(keys) if prepared is None else prepared)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None], float("-inf"))
        weights = scores.softmax(dim=-1)
        return weights @ keys, weights


class AdditiveAttention(Attention):
    """score(s, h_j) = v^T tanh(W_s s + W_h h_j) (Bahdanau et al.), `size` units in the hidden layer."""

    def __init__(self, query_size: int, key_size: int, size: int):
        super().__init__()
        self.query_projection = nn.Linear(query_size, size, bias=False)
        self.key_projection = nn.Linear(key_size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_projection(keys)

    def scores(self, query: torch.Tensor, prepared: torch.Tensor) -> torch.Tensor:
        return self.v(torch.tanh(self.query_projection(query)[:, :, None] + prepared[:, None]))[..., 0]


class MultiplicativeAttention(Attention):
    """score(s, h_j) = s^T h_j (Luong's dot: the state and the outputs of one size) or s^T W h_j (general)."""

    def __init__(self, query_size: int, key_size: int, general: bool):
        super().__init__()
        if not general and query_size != key_size:
            raise DlbookError(f"Luong's dot attention scores a decoder state of {query_size} numbers against encoder "
                              f"outputs of {key_size}: they must be equal; use model.net.attention=luong_general.")
        self.weight = nn.Linear(key_size, query_size, bias=False) if general else None

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return keys if self.weight is None else self.weight(keys)

    def scores(self, query: torch.Tensor, prepared: torch.Tensor) -> torch.Tensor:
        return query @ prepared.transpose(1, 2)
