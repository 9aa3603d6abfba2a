"""The transformer's layers: the position-wise feed-forward net, the encoder layer (self-attention, feed-forward)
and the decoder layer (masked self-attention, attention over the encoder's output, feed-forward), each sublayer
inside a residual connection with layer normalisation, and stacks of them.

`norm_first`: pre-norm, x + dropout(sublayer(norm(x))), the annotated transformer's (Advanced DL ch. 8) and GPT's,
with a last LayerNorm after the stack; false: post-norm, norm(x + dropout(sublayer(x))), the paper's and Pro DL
ch. 4's, with none. Pre-norm trains deep stacks without a learning-rate warm-up; post-norm usually needs one."""

import torch
from torch import nn

from dlbook.nets.classification.mlp import activation_layer
from dlbook.nets.transformer.attention import MultiHeadAttention

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}
LAYER_NORM_EPS = 1e-6  # both books' (Keras' LayerNormalization(epsilon=1e-6), the annotated transformer's)


class FeedForward(nn.Sequential):
    """Linear(d_model, d_ff) -> activation -> dropout -> Linear(d_ff, d_model), applied at every position."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__(nn.Linear(d_model, d_ff), activation_layer(activation, choices=ACTIVATIONS)(),
                         nn.Dropout(dropout),
                         nn.Linear(d_ff, d_model))


class ResidualLayer(nn.Module):
    """What encoder and decoder layers share: residual connections around sublayers, normalised before or after.
    A sublayer reads `sublayer_input(x, norm)` and its output is added back with `add(x, output, norm)`."""

    def __init__(self, dropout: float, norm_first: bool):
        super().__init__()
        self.norm_first = norm_first
        self.dropout = nn.Dropout(dropout)

    def sublayer_input(self, x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
        return norm(x) if self.norm_first else x

    def add(self, x: torch.Tensor, output: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
        x = x + self.dropout(output)
        return x if self.norm_first else norm(x)


class EncoderLayer(ResidualLayer):
    """Self-attention, then the feed-forward net. `causal` (the look-ahead mask) makes it a GPT block."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = True, implementation: str = "sdpa"):
        super().__init__(dropout, norm_first)
        self.self_attention = MultiHeadAttention(d_model, heads, dropout, implementation)
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm_attention = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm_feed_forward = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        h = self.sublayer_input(x, self.norm_attention)
        x = self.add(x, self.self_attention(h, h, h, mask, causal)[0], self.norm_attention)
        h = self.sublayer_input(x, self.norm_feed_forward)
        return self.add(x, self.feed_forward(h), self.norm_feed_forward)


class DecoderLayer(ResidualLayer):
    """Self-attention over the target so far (the look-ahead mask), attention over the encoder's output
    (`memory`), then the feed-forward net. Returns the output and, with `need_weights`, the cross-attention
    weights (B, heads, T, S)."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = True, implementation: str = "sdpa"):
        super().__init__(dropout, norm_first)
        self.self_attention = MultiHeadAttention(d_model, heads, dropout, implementation)
        self.cross_attention = MultiHeadAttention(d_model, heads, dropout, implementation)
        self.feed_forward = FeedForward(d_model, d_ff, dropout, activation)
        self.norm_self_attention = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm_cross_attention = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.norm_feed_forward = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None,
                need_weights: bool = False):
        h = self.sublayer_input(x, self.norm_self_attention)
        x = self.add(x, self.self_attention(h, h, h, causal=True)[0], self.norm_self_attention)
        h = self.sublayer_input(x, self.norm_cross_attention)
        attended, weights = self.cross_attention(h, memory, memory, memory_mask, need_weights=need_weights)
        x = self.add(x, attended, self.norm_cross_attention)
        h = self.sublayer_input(x, self.norm_feed_forward)
        return self.add(x, self.feed_forward(h), self.norm_feed_forward), weights


class Encoder(nn.Module):
    """`num_layers` encoder layers, and with pre-norm a last LayerNorm (the residual stream is never normalised
    on the way through)."""

    def __init__(self, num_layers: int, d_model: int, norm_first: bool = True, **layer):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, norm_first=norm_first, **layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask, causal)
        return self.norm(x)


class Decoder(nn.Module):
    """`num_layers` decoder layers over the encoder's output, and with pre-norm a last LayerNorm. Returns the
    output and, with `need_weights`, the last layer's cross-attention weights."""

    def __init__(self, num_layers: int, d_model: int, norm_first: bool = True, **layer):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(d_model, norm_first=norm_first, **layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None,
                need_weights: bool = False):
        weights = None
        for index, layer in enumerate(self.layers):
            last = index == len(self.layers) - 1
            x, weights = layer(x, memory, memory_mask, need_weights and last)
        return self.norm(x), weights
