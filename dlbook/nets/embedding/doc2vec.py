"""Paragraph vectors (Le and Mikolov 2014): word2vec with a vector per document. PV-DM predicts the center word
from the mean of the document's vector and its context words' vectors; PV-DBOW predicts the document's words from
its vector alone."""

import torch
from torch import nn

from dlbook.errors import DlbookError
from dlbook.nets.embedding.word2vec import Word2Vec, masked_mean


class Doc2Vec(Word2Vec):
    """`mode`: dm (PV-DM: the mean of the document vector and the context word vectors, gensim's dm_mean) or dbow
    (PV-DBOW, which reads no input word vectors: its word vectors are the output ones). Document vectors start
    uniform in +-0.5/embed_dim, as gensim's."""

    modes = ("dm", "dbow")

    def __init__(self, vocab_size: int, num_documents: int, embed_dim: int = 100, mode: str = "dm",
                 bias: bool = False, init: str = "word2vec"):
        if num_documents < 1:
            raise DlbookError("doc2vec learns a vector per document; the data has none.")
        super().__init__(vocab_size, embed_dim, mode, bias, init)
        self.documents = nn.Embedding(num_documents, embed_dim)
        nn.init.uniform_(self.documents.weight, -0.5 / embed_dim, 0.5 / embed_dim)
        if mode == "dbow":
            self.input = None

    def forward(self, centers: torch.Tensor, contexts: torch.Tensor, mask: torch.Tensor,
                documents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Windows -> (hidden (B, D), the center as target (B, 1), its mask (B, 1)); a row whose window has no
        context word left (its center dropped by subsampling) predicts nothing."""
        document = self.documents(documents)
        if self.mode == "dm":
            vectors = torch.cat([document[:, None], self.input(contexts)], dim=1)
            hidden = masked_mean(vectors, torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1))
        else:
            hidden = document
        return self.with_bias(hidden), centers[:, None], mask.any(dim=1, keepdim=True)

    def word_vectors(self) -> torch.Tensor:
        return self.input.weight if self.input is not None else self.output.weight

    def document_vectors(self) -> torch.Tensor:
        return self.documents.weight
