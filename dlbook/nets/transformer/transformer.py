"""The encoder-decoder transformer of "Attention Is All You Need" (Vaswani et al. 2017), as Advanced DL ch. 8
builds it after the annotated transformer (pre-norm, N=6, d_model 512, 8 heads, d_ff 2048) and Pro DL ch. 4 in
Keras (post-norm, N=3). A sequence-to-sequence net for Seq2SeqTask: teacher-forced `forward`, and `start`/`step`
for greedy and beam decoding."""

import torch
from torch import nn

from dlbook.nets.transformer.attention import padding_mask
from dlbook.nets.transformer.layers import Decoder, Encoder
from dlbook.nets.transformer.positional import TokenEmbedding


class Transformer(nn.Module):
    """Source tokens -> TokenEmbedding (x sqrt(d_model) + positions, dropout) -> `num_layers` encoder layers over
    the real tokens (padding mask) -> memory. Target tokens -> TokenEmbedding -> `num_layers` decoder layers, each
    attending to the targets before it (look-ahead mask) and to the memory -> Linear to target-vocabulary logits.

    Padded targets need no mask of their own: they come after the real ones, which the look-ahead mask already
    hides them from. `tie_output` makes the output layer's weight the target embedding (Press and Wolf 2017).
    Weights start Xavier-uniform, as in the annotated transformer. `implementation` (sdpa or manual) and
    `activation` (relu or gelu) go to every layer."""

    def __init__(self, source_vocab_size: int, target_vocab_size: int, pad_index: int, max_source_length: int,
                 max_target_length: int, num_layers: int = 6, d_model: int = 512, heads: int = 8, d_ff: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", norm_first: bool = True, tie_output: bool = False,
                 positions: str = "sinusoidal", implementation: str = "sdpa"):
        super().__init__()
        self.pad_index = pad_index
        self.source_embedding = TokenEmbedding(source_vocab_size, d_model, max_source_length, positions, dropout)
        self.target_embedding = TokenEmbedding(target_vocab_size, d_model, max_target_length, positions, dropout)
        layer = dict(d_model=d_model, heads=heads, d_ff=d_ff, dropout=dropout, activation=activation,
                     norm_first=norm_first, implementation=implementation)
        self.encoder = Encoder(num_layers, **layer)
        self.decoder = Decoder(num_layers, **layer)
        self.output = nn.Linear(d_model, target_vocab_size)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        if tie_output:
            self.output.weight = self.target_embedding.tokens.weight

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) ids -> memory (B, S, d_model) and its padding mask (B, 1, 1, S)."""
        source_mask = padding_mask(source, self.pad_index)
        return self.encoder(self.source_embedding(source), source_mask), source_mask

    def decode(self, target_inputs: torch.Tensor, memory: torch.Tensor, source_mask: torch.Tensor,
               need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) ids -> logits (B, T, target_vocab) and, with need_weights, the last decoder layer's
        cross-attention weights (B, heads, T, S)."""
        hidden, weights = self.decoder(self.target_embedding(target_inputs), memory, source_mask, need_weights)
        return self.output(hidden), weights

    def forward(self, source: torch.Tensor, target_inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: every target position predicted at once from the ones before it."""
        memory, source_mask = self.encode(source)
        return self.decode(target_inputs, memory, source_mask)[0]

    def start(self, source: torch.Tensor) -> dict[str, torch.Tensor]:
        """The decoding state, every tensor batch-first: the memory, its mask and the target tokens so far."""
        memory, source_mask = self.encode(source)
        return {"memory": memory, "source_mask": source_mask,
                "tokens": source.new_empty((len(source), 0))}

    def step(self, tokens: torch.Tensor, state: dict[str, torch.Tensor]):
        """One decoding step from the previous tokens (B,): the decoder runs again over all target tokens so far
        (no key-value cache: targets are short, and the recomputation keeps the step the forward pass).
        Returns the next token's logits (B, target_vocab), the new state and the last layer's cross-attention
        of this step averaged over the heads (B, S)."""
        so_far = torch.cat([state["tokens"], tokens[:, None]], dim=1)
        logits, weights = self.decode(so_far, state["memory"], state["source_mask"], need_weights=True)
        return logits[:, -1], {**state, "tokens": so_far}, weights[:, :, -1].mean(dim=1)
