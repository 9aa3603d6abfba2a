"""A recurrent language model: tokens -> next-token logits at every step. char_rnn (characters, the books'
one-hot inputs) and word_lm (Penn Treebank words, Zaremba et al. 2014 with optional tied weights) are its
configurations."""

import torch
from torch import nn

from dlbook.errors import DlbookError, check_number
from dlbook.nets.sequence.recurrent import RecurrentLayer


class RNNLanguageModel(nn.Module):
    """Embedding (or `one_hot` inputs) -> dropout -> `num_layers` recurrent layers of `cell` with dropout between
    them -> dropout -> a linear decoder over the vocabulary. `tie_weights` makes the decoder's weight the embedding
    matrix (Press and Wolf 2017), which needs embed_dim == hidden_size. `init_range`: every weight and bias drawn
    uniformly in ±init_range (Zaremba et al.'s 0.1 for the small model), instead of torch's defaults (embeddings
    from N(0, 1)). `recurrent` options (implementation, peephole, ...) go to the recurrent layer."""

    def __init__(self, vocab_size: int, cell: str = "lstm", hidden_size: int = 256, num_layers: int = 1,
                 embed_dim: int = 128, one_hot: bool = False, dropout: float = 0.0, tie_weights: bool = False,
                 init_range: float | None = None, **recurrent):
        super().__init__()
        if init_range is not None:
            check_number("model.net.init_range", init_range, above=0, note=", or null for torch's initialisation")
        if tie_weights and (one_hot or embed_dim != hidden_size):
            raise DlbookError(f"model.net.tie_weights=true shares the embedding with the decoder, so it needs "
                              f"learned embeddings as wide as the hidden state: embed_dim={embed_dim}, "
                              f"hidden_size={hidden_size}, one_hot={one_hot}.")
        if recurrent.get("bidirectional"):
            raise DlbookError("model.net.bidirectional=true would let the model read the token it predicts: a "
                              "language model reads left to right only.")
        self.vocab_size = vocab_size
        self.embedding = None if one_hot else nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.recurrent = RecurrentLayer(cell, vocab_size if one_hot else embed_dim, hidden_size, num_layers,
                                        dropout=dropout, **recurrent)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        if init_range is not None:
            for parameter in self.parameters():
                nn.init.uniform_(parameter, -init_range, init_range)

    def forward(self, tokens: torch.Tensor, state=None):
        """tokens (B, T) -> logits (B, T, vocab_size) and the state after the last step."""
        if self.embedding is None:
            inputs = nn.functional.one_hot(tokens, self.vocab_size).float()
        else:
            inputs = self.embedding(tokens)
        outputs, state = self.recurrent(self.dropout(inputs), state)
        return self.decoder(self.dropout(outputs)), state
