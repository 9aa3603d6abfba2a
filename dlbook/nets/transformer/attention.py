"""Attention, as "Attention Is All You Need" defines it: scaled dot-product attention written out, multi-head
attention over it or over PyTorch's fused kernel, and the two masks a transformer needs (padding, look-ahead).
A mask is boolean and broadcasts to (batch, heads, queries, keys); True marks a key the query may attend to."""

import math

import torch
from torch import nn

from dlbook.errors import DlbookError

IMPLEMENTATIONS = ("sdpa", "manual")


def padding_mask(tokens: torch.Tensor, pad_index: int | None) -> torch.Tensor | None:
    """(B, L) token ids -> (B, 1, 1, L): every query may attend to the real tokens, none to the padding. None
    where the data has no padding."""
    if pad_index is None:
        return None
    return (tokens != pad_index)[:, None, None, :]


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """(L, L) look-ahead mask: position i attends to positions 0..i, never to a later one."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 mask: torch.Tensor | None = None,
                                 dropout: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V over the last two dimensions (..., L, d_k): the output and the attention
    weights (..., Lq, Lk). Masked-out keys score -inf, so they get exactly zero weight."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ value, weights


class MultiHeadAttention(nn.Module):
    """Concat(head_1, ..., head_h) W_O with head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i): four d_model x d_model
    linear layers with biases (as both books), `heads` heads of d_model / heads each, dropout on the attention
    weights. `implementation`: sdpa runs torch's fused scaled_dot_product_attention (flash or memory-efficient
    kernels on GPUs); manual runs the hand-written one above, which also gives the weights."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, implementation: str = "sdpa"):
        super().__init__()
        if d_model % heads:
            raise DlbookError(f"model.net.d_model={d_model} must split evenly into model.net.heads={heads} heads.")
        if implementation not in IMPLEMENTATIONS:
            raise DlbookError(f"model.net.implementation={implementation!r} is not one of "
                              f"{', '.join(IMPLEMENTATIONS)}.")
        self.heads = heads
        self.implementation = implementation
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.output = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, d_model) -> (B, heads, L, d_model / heads)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None,
                causal: bool = False, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, Lq, d_model) queries over (B, Lk, d_model) keys and values -> (B, Lq, d_model) and, with the
        manual implementation or `need_weights` (which takes the manual path), the weights (B, heads, Lq, Lk).
        `causal` adds the look-ahead mask (self-attention, Lq == Lk); sdpa alone then runs its causal kernels,
        which need no mask tensor (flash attention on GPUs)."""
        q, k, v = (self.split_heads(project(x)) for project, x in
                   ((self.query, query), (self.key, key), (self.value, value)))
        manual = self.implementation == "manual" or need_weights
        if causal and (manual or mask is not None):
            look_ahead = causal_mask(q.shape[-2], q.device)
            mask, causal = (look_ahead if mask is None else mask & look_ahead), False
        if manual:
            attended, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout)
        else:
            attended = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout.p if self.training else 0.0, is_causal=causal)
            weights = None
        return self.output(attended.transpose(1, 2).flatten(2)), weights
