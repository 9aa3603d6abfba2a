"""word2vec (Mikolov et al. 2013): an input and an output vector per word. CBOW predicts the center word from the
mean of its context words' input vectors; skip-gram predicts each context word from the center's input vector.
The task scores a prediction against the output vectors, by a softmax over the vocabulary or by negative
sampling."""

import torch
from torch import nn

from dlbook.errors import DlbookError, check_count

MODES = ("cbow", "skipgram")
INITS = ("word2vec", "keras")


def masked_mean(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, D) vectors, (B, C) mask -> (B, D) mean of the masked-in ones (zero where there are none)."""
    weights = mask.to(vectors.dtype)
    return (vectors * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


class Word2Vec(nn.Module):
    """`mode`: cbow or skipgram. `bias`: a bias on the hidden vector and on each output score, as the Keras Dense
    layers of Pro DL's listings have. `init`: word2vec (input vectors uniform in +-0.5/embed_dim, output vectors
    zero, as word2vec.c) or keras (Glorot-uniform kernels, zero biases)."""

    modes = MODES

    def __init__(self, vocab_size: int, embed_dim: int = 100, mode: str = "skipgram", bias: bool = False,
                 init: str = "word2vec"):
        super().__init__()
        if mode not in self.modes:
            raise DlbookError(f"model.net.mode={mode!r} is not one of {', '.join(self.modes)}.")
        if init not in INITS:
            raise DlbookError(f"model.net.init={init!r} is not one of {', '.join(INITS)}.")
        check_count("model.net.embed_dim", embed_dim)  # word2vec's initial range is +-0.5 / embed_dim
        self.mode = mode
        self.input = nn.Embedding(vocab_size, embed_dim)
        self.hidden_bias = nn.Parameter(torch.zeros(embed_dim)) if bias else None
        self.output = nn.Linear(embed_dim, vocab_size, bias=bias)
        self.reset_parameters(init)

    def reset_parameters(self, init: str) -> None:
        if init == "keras":  # Dense kernels of (vocabulary x dim) and (dim x vocabulary)
            nn.init.xavier_uniform_(self.input.weight)
            nn.init.xavier_uniform_(self.output.weight)
        else:
            nn.init.uniform_(self.input.weight, -0.5 / self.input.embedding_dim, 0.5 / self.input.embedding_dim)
            nn.init.zeros_(self.output.weight)
        if self.output.bias is not None:
            nn.init.zeros_(self.output.bias)

    def forward(self, centers: torch.Tensor, contexts: torch.Tensor, mask: torch.Tensor,
                documents: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Windows -> (hidden (B, D), targets (B, T), target mask (B, T)): the words each hidden vector predicts.
        CBOW: one target, the center, where any context word is left; skip-gram: the context words."""
        if self.mode == "cbow":
            hidden = masked_mean(self.input(contexts), mask)
            targets, target_mask = centers[:, None], mask.any(dim=1, keepdim=True)
        else:
            hidden, targets, target_mask = self.input(centers), contexts, mask
        return self.with_bias(hidden), targets, target_mask

    def with_bias(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden if self.hidden_bias is None else hidden + self.hidden_bias

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, vocabulary) scores of every word: the full softmax's logits."""
        return self.output(hidden)

    def scores(self, hidden: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, K) word ids -> (B, K) scores of just those words (negative sampling's)."""
        scores = torch.einsum("bd,bkd->bk", hidden, self.output.weight[words])
        return scores if self.output.bias is None else scores + self.output.bias[words]

    def word_vectors(self) -> torch.Tensor:
        """(vocabulary, D): the input vectors, the ones word2vec hands out."""
        return self.input.weight
