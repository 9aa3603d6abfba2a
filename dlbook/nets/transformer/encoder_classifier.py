"""An encoder-only transformer classifier of token sequences (a review's sentiment): the transformer's encoder
over the tokens, one vector per sequence, a linear output. BERT's shape, trained from scratch."""

import torch
from torch import nn

from dlbook.errors import DlbookError
from dlbook.nets.transformer.layers import Encoder
from dlbook.nets.transformer.positional import TokenEmbedding

POOLINGS = ("mean", "cls")


class TransformerClassifier(nn.Module):
    """TokenEmbedding (x sqrt(d_model) + positions, dropout) -> `num_layers` encoder layers over the real tokens
    (padding mask) -> one vector per sequence -> dropout -> Linear to num_classes logits.

    `pooling`: mean averages the encoder's outputs over the real tokens; cls prepends a [CLS] token of its own (id
    vocab_size, a learned embedding) to every sequence and classifies from its output (BERT), which attends to all
    the tokens. Sized by the data: `max_length` positions (one more for [CLS])."""

    def __init__(self, vocab_size: int, num_classes: int, pad_index: int | None = 0, max_length: int = 512,
                 num_layers: int = 2, d_model: int = 64, heads: int = 4, d_ff: int = 256, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = True, pooling: str = "mean",
                 positions: str = "sinusoidal", implementation: str = "sdpa"):
        super().__init__()
        if pooling not in POOLINGS:
            raise DlbookError(f"model.net.pooling={pooling!r} is not one of {', '.join(POOLINGS)}.")
        self.pad_index = pad_index
        self.cls_index = vocab_size if pooling == "cls" else None
        extra = int(pooling == "cls")
        self.embedding = TokenEmbedding(vocab_size + extra, d_model, max_length + extra, positions, dropout)
        self.encoder = Encoder(num_layers, d_model, norm_first, heads=heads, d_ff=d_ff, dropout=dropout,
                               activation=activation, implementation=implementation)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(d_model, num_classes)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, L) int64, post-padded with pad_index -> logits (B, num_classes)."""
        if self.cls_index is not None:
            tokens = torch.cat([tokens.new_full((len(tokens), 1), self.cls_index), tokens], dim=1)
        real = tokens != self.pad_index if self.pad_index is not None else torch.ones_like(tokens, dtype=torch.bool)
        real = real | ~real.any(dim=1, keepdim=True)  # a review of no word at all attends to its padding
        x = self.encoder(self.embedding(tokens), real[:, None, None, :])
        if self.cls_index is not None:
            pooled = x[:, 0]
        else:
            weights = real[..., None].to(x.dtype)
            pooled = (x * weights).sum(dim=1) / weights.sum(dim=1)
        return self.output(self.dropout(pooled))
