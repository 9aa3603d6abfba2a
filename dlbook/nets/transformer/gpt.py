"""A GPT-style language model (Radford et al. 2018; Karpathy's nanoGPT at character level): a stack of pre-norm
transformer blocks under a causal mask. The modern descendant of the books' character-level RNNs, for
LanguageModelTask."""

import torch
from torch import nn

from dlbook.errors import DlbookError, check_count
from dlbook.nets.transformer.layers import Encoder
from dlbook.nets.transformer.positional import TokenEmbedding

INIT_STD = 0.02  # GPT-2's normal initialisation


class GPT(nn.Module):
    """Token and learned position embeddings (unscaled, as GPT's), dropout -> `num_layers` pre-norm blocks of
    causal self-attention and a GELU feed-forward net (d_ff, default 4 d_model) -> LayerNorm -> Linear to the
    vocabulary, its weight the token embedding with `tie_weights`. Every position sees `block_size` tokens at
    most: itself and those before it.

    The state is the context, not a hidden vector: the last block_size - 1 tokens read, (B, <= block_size - 1).
    Called with a state, the model reads the new tokens after it (so generation feeds one token a step), and
    returns logits for the new tokens only."""

    def __init__(self, vocab_size: int, block_size: int = 128, num_layers: int = 4, d_model: int = 128,
                 heads: int = 4, d_ff: int | None = None, dropout: float = 0.1, tie_weights: bool = True,
                 implementation: str = "sdpa"):
        super().__init__()
        check_count("model.net.block_size", block_size, note=" (tokens)")
        self.block_size = block_size
        self.embedding = TokenEmbedding(vocab_size, d_model, block_size, "learned", dropout, scale=False)
        self.blocks = Encoder(num_layers, d_model, norm_first=True, heads=heads, d_ff=d_ff or 4 * d_model,
                              dropout=dropout, activation="gelu", implementation=implementation)
        self.output = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(self.init_weights)
        if tie_weights:
            self.output.weight = self.embedding.tokens.weight

    @staticmethod
    def init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=INIT_STD)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None):
        """tokens (B, L) -> logits (B, L, vocab_size) and the context to continue from."""
        new = tokens.shape[1]
        if new > self.block_size:
            raise DlbookError(f"{new} tokens at once exceed model.net.block_size={self.block_size}, the longest "
                              f"context the model reads: set data.seq_length to {self.block_size} or less, or "
                              f"give a shorter prompt.")
        context = tokens if state is None else torch.cat([state, tokens], dim=1)[:, -self.block_size:]
        hidden = self.blocks(self.embedding(context), causal=True)
        # The next call's context: a full block drops its oldest token, to make room for the next.
        return self.output(hidden[:, -new:]), context[:, 1:] if context.shape[1] == self.block_size else context
