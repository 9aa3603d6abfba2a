"""A recurrent classifier of token sequences (the DL Workshop's IMDB sentiment models, ch. 6): embedding, dropout of
whole embedding channels, a recurrent layer over each sequence's real tokens, dropout and a linear output."""

import torch
from torch import nn

from dlbook.errors import DlbookError
from dlbook.nets.sequence.recurrent import RecurrentLayer

INITS = ("torch", "keras")
KERAS_EMBEDDING_RANGE = 0.05  # Keras' Embedding draws from uniform(-0.05, 0.05)


class RNNClassifier(nn.Module):
    """Embedding(vocab_size, embed_dim, padding_idx=pad_index) -> Dropout1d(embedding_dropout) over the embedding
    channels (Keras' SpatialDropout1D: a dropped channel is zero at every step) -> RecurrentLayer (`cell`,
    `hidden_size`, `num_layers` stacked with `layer_dropout` between them, `bidirectional`, `implementation`,
    `hidden_bias`, `reset_after`) fed each sequence's length, its tokens before the padding -> the top layer's
    final state, directions side by side -> Dropout(dropout) -> Linear to num_classes logits.

    `init`: torch keeps PyTorch's initialisation (embedding N(0, 1), recurrent weights uniform(±1/sqrt(H)));
    keras is tf.keras' (embedding uniform(±0.05), Glorot-uniform input and output weights, orthogonal recurrent
    weights, zero biases, the LSTM's forget-gate bias 1). `max_length` is not needed: any length runs."""

    def __init__(self, vocab_size: int, num_classes: int, pad_index: int | None = 0, max_length: int | None = None,
                 embed_dim: int = 32, embedding_dropout: float = 0.0, cell: str = "lstm", hidden_size: int = 32,
                 num_layers: int = 1, bidirectional: bool = False, layer_dropout: float = 0.0, dropout: float = 0.0,
                 implementation: str = "torch", hidden_bias: bool = True, reset_after: bool = True,
                 init: str = "torch"):
        super().__init__()
        if init not in INITS:
            raise DlbookError(f"model.net.init={init!r} is not one of {', '.join(INITS)}.")
        self.pad_index = pad_index
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_index)
        self.embedding_dropout = nn.Dropout1d(embedding_dropout)
        self.recurrent = RecurrentLayer(cell, embed_dim, hidden_size, num_layers=num_layers,
                                        bidirectional=bidirectional, dropout=layer_dropout,
                                        implementation=implementation, hidden_bias=hidden_bias,
                                        reset_after=reset_after)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.recurrent.output_size, num_classes)
        if init == "keras":
            self.keras_init()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64, post-padded with pad_index -> logits (B, num_classes)."""
        embedded = self.embedding(tokens)  # (B, T, C)
        embedded = self.embedding_dropout(embedded.transpose(1, 2)).transpose(1, 2)  # channels dropped over all T
        lengths = None
        if self.pad_index is not None:
            # A review with no word at all still runs one (padding) step.
            lengths = (tokens != self.pad_index).sum(dim=1).clamp_min(1)
        _, state = self.recurrent(embedded, lengths=lengths)
        return self.output(self.dropout(self.recurrent.last_hidden(state)))

    def keras_init(self) -> None:
        nn.init.uniform_(self.embedding.weight, -KERAS_EMBEDDING_RANGE, KERAS_EMBEDDING_RANGE)
        if self.pad_index is not None:
            with torch.no_grad():
                self.embedding.weight[self.pad_index].zero_()
        hidden = self.recurrent.hidden_size
        for name, parameter in self.recurrent.named_parameters():
            if "weight_ih" in name:
                nn.init.xavier_uniform_(parameter)  # Keras' kernel (input, gates * H): the same fans
            elif "weight_hh" in name:
                nn.init.orthogonal_(parameter)
            elif "bias" in name:
                nn.init.zeros_(parameter)
                if self.recurrent.cell == "lstm" and "bias_ih" in name:
                    nn.init.ones_(parameter[hidden:2 * hidden])  # unit_forget_bias; gates i, f, g, o
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)
