"""Word and document vectors learnt from a text corpus (word2vec, doc2vec). The net says which words each hidden
vector predicts; the task scores them against the output vectors by a full softmax (small vocabularies) or by
negative sampling (large ones). That the vectors mean something shows in `cooccurrence_margin`: the mean cosine
similarity of word pairs that co-occur in a window of the held-out text, minus that of random pairs."""

import inspect
import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MinMetric

from dlbook.data.spec import CorpusSpec, DataSpec
from dlbook.errors import DlbookError, check_count
from dlbook.plots import new_figure, principal_plane
from dlbook.tasks.base import LossTask

log = logging.getLogger("dlbook")

LOSSES = ("softmax", "negative_sampling")
BOOK_LOSSES = ("batch_means", "batch_sums")
KINDS = ("words", "documents")
PROBES = 5  # default probe words: the most frequent of PROBE_LETTERS letters or more
PROBE_LETTERS = 4


def nearest_neighbours(vectors: torch.Tensor, queries: torch.Tensor, k: int,
                       exclude: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k rows of `vectors` (N, D) of highest cosine similarity to each query (Q, D), the rows in `exclude[q]`
    left out: (scores (Q, k), indices (Q, k))."""
    similarity = F.normalize(queries.float(), dim=1) @ F.normalize(vectors.float(), dim=1).T
    for row, excluded in enumerate(exclude or []):
        similarity[row, excluded] = -float("inf")
    return similarity.topk(min(k, len(vectors)), dim=1)


def default_probe_words(vocabulary: tuple[str, ...]) -> list[str]:
    """The most frequent words of four letters or more: few stop words are that long."""
    return [word for word in vocabulary if word.isalpha() and len(word) >= PROBE_LETTERS][:PROBES]


class EmbeddingTask(LossTask):
    """`loss`: softmax (cross-entropy over the whole vocabulary) or negative_sampling (each target against
    `negatives` words drawn from the training counts ** `noise_power`, Mikolov's unigram^0.75). Logs
    `<stage>/loss` (the batches' mean loss per predicted word) and, on held-out text, `cooccurrence_margin`.
    `book_loss`: also log `train/book_loss`, an epoch's sum of the batches' mean (batch_means) or summed
    (batch_sums) losses divided by the epoch's rows, as Pro DL ch. 4 prints it. `probe_words`: whose nearest
    neighbours are written to `<run_dir>/neighbours.txt` when training ends (default: the most frequent words of
    four letters or more). The figure: a 2-D PCA of the `plot_words` most frequent words (and documents)."""

    accepts = (CorpusSpec,)
    summary_metrics = (("test/cooccurrence_margin", "Test co-occurrence margin"),
                       ("val/cooccurrence_margin", "Validation co-occurrence margin"))

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, loss: str = "negative_sampling", negatives: int = 5,
                 noise_power: float = 0.75, book_loss: str | None = None, probe_words: list[str] | None = None,
                 neighbours: int = 8, plot_words: int = 60):
        super().__init__(data_spec, optimizer, scheduler)
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r} is not one of {', '.join(LOSSES)}.")
        if loss == "negative_sampling":
            check_count("model.negatives", negatives, note=" (noise words per target)")
        if book_loss not in (None, *BOOK_LOSSES):
            raise DlbookError(f"model.book_loss={book_loss!r} is not one of {', '.join(BOOK_LOSSES)}, or null.")
        vocabulary = data_spec.vocabulary
        probe_words = list(probe_words) if probe_words else default_probe_words(vocabulary)
        unknown = [word for word in probe_words if word not in vocabulary]
        if unknown:
            raise DlbookError(f"model.probe_words has words the vocabulary lacks: {unknown}; its most frequent "
                              f"words are {list(vocabulary[:10])}.")
        sizes = {"vocab_size": data_spec.vocab_size}
        if "num_documents" in inspect.signature(net).parameters:
            sizes["num_documents"] = data_spec.num_documents
        self.net = net(**sizes)
        self.loss, self.negatives, self.book_loss = loss, negatives, book_loss
        self.probe_words, self.neighbours, self.plot_words = probe_words, neighbours, plot_words
        counts = torch.tensor(data_spec.counts or [1] * data_spec.vocab_size, dtype=torch.float)
        self.register_buffer("noise", counts ** noise_power / (counts ** noise_power).sum(), persistent=False)
        self.val_loss_best = self.best_of_run(MinMetric)
        # Per evaluated stage, reset when its epoch starts: the same noise words and random pairs every time.
        self._eval_generators: dict[str, torch.Generator] = {}
        self._pair_generators: dict[str, torch.Generator] = {}

    def forward(self, centers, contexts, mask, documents):
        return self.net(centers, contexts, mask, documents)

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        centers, contexts, mask, documents = batch
        hidden, targets, target_mask = self(centers, contexts, mask, documents)
        losses = self.target_losses(hidden, targets, stage) * target_mask
        loss = losses.sum() / target_mask.sum().clamp(min=1)
        self.log_epoch_mean(f"{stage}/loss", loss, len(centers))
        if stage == "train" and self.book_loss:
            # A count of rows / batches per batch: the epoch's counts add up to its rows, the book's divisor.
            rows_per_batch = len(self.trainer.datamodule.data_train) / self.trainer.num_training_batches
            self.log_epoch_sum("train/book_loss", loss if self.book_loss == "batch_means" else losses.sum(),
                               rows_per_batch)
        if stage != "train":
            self.log_cooccurrence_margin(centers, contexts, mask, stage)
        return loss

    def target_losses(self, hidden: torch.Tensor, targets: torch.Tensor, stage: str) -> torch.Tensor:
        """(B, T) losses of predicting each target word from its row's hidden vector."""
        if self.loss == "softmax":
            return -self.net.logits(hidden).log_softmax(dim=1).gather(1, targets)
        generator = None if stage == "train" else self._eval_generators[stage]
        noise = torch.multinomial(self.noise, targets.numel() * self.negatives, replacement=True,
                                  generator=generator).view(*targets.shape, self.negatives)
        positive = self.net.scores(hidden, targets)
        negative = self.net.scores(hidden, noise.flatten(1)).view_as(noise)
        return -F.logsigmoid(positive) - F.logsigmoid(-negative).sum(dim=2)

    def log_cooccurrence_margin(self, centers, contexts, mask, stage: str) -> None:
        """Mean cosine similarity of each (center, context word) pair of the batch, minus that of the centers
        paired with the context words shuffled (random pairs of the same word frequencies)."""
        pair_centers, pair_contexts = centers[:, None].expand_as(contexts)[mask], contexts[mask]
        if not len(pair_centers):
            return
        vectors = F.normalize(self.net.word_vectors().detach().float(), dim=1)
        shuffled = pair_contexts[torch.randperm(len(pair_contexts), generator=self._pair_generators[stage])
                                 .to(pair_contexts.device)]
        center_vectors = vectors[pair_centers]
        margin = (center_vectors * (vectors[pair_contexts] - vectors[shuffled])).sum()
        self.log_epoch_sum(f"{stage}/cooccurrence_margin", margin, len(pair_centers))

    # Every evaluation of a split draws the same noise words and random pairs: eval.py reproduces the test metrics.
    def start_evaluation(self, stage: str) -> None:
        self._eval_generators[stage] = torch.Generator(device=self.device).manual_seed(0)
        self._pair_generators[stage] = torch.Generator().manual_seed(0)

    def on_validation_epoch_start(self) -> None:
        self.start_evaluation("val")

    def on_test_epoch_start(self) -> None:
        self.start_evaluation("test")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if "val/loss" in self.epoch_means:
            self.log_best("val/loss", self.epoch_means["val/loss"], self.val_loss_best)

    # -- what the vectors show -------------------------------------------------------------------------
    def embeddings(self, kind: str = "words", limit: int | None = None, datamodule=None) -> tuple[torch.Tensor,
                                                                                                  list[str]]:
        """(vectors (N, D), labels): the word vectors by id, most frequent first, or the document vectors (their
        labels the documents' first words); the first `limit` of them."""
        if kind not in KINDS:
            raise DlbookError(f"kind={kind!r} is not one of {', '.join(KINDS)}.")
        if kind == "documents":
            if not hasattr(self.net, "document_vectors"):
                raise DlbookError(f"{type(self.net).__name__} learns no document vectors; kind=words gives its word "
                                  f"vectors (document vectors: model=doc2vec).")
            vectors, labels = self.net.document_vectors(), list(self.data_spec.document_labels)
        else:
            vectors, labels = self.net.word_vectors(), list(self.data_spec.vocabulary)
        return vectors.detach().float().cpu()[:limit], labels[:limit]

    def neighbours_text(self, words: list[str]) -> str:
        """Each word and its nearest neighbours by cosine similarity, with the scores."""
        vectors, vocabulary = self.embeddings("words")
        ids = [vocabulary.index(word) for word in words]
        scores, indices = nearest_neighbours(vectors, vectors[ids], self.neighbours, [[i] for i in ids])
        return "".join(f"{word}: " + ", ".join(f"{vocabulary[i]} {score:.3f}" for score, i in
                                               zip(row_scores.tolist(), row_indices.tolist())) + "\n"
                       for word, row_scores, row_indices in zip(words, scores, indices))

    def on_fit_end(self) -> None:
        if self.trainer.is_global_zero and self.probe_words:
            path = Path(self.trainer.default_root_dir) / "neighbours.txt"
            path.write_text(self.neighbours_text(self.probe_words), encoding="utf-8")
            log.info(f"Nearest neighbours of {', '.join(self.probe_words)} written to {path}")

    def figures(self, stage: str) -> dict:
        """A 2-D PCA of the most frequent words' vectors (and of the first documents'), each point labelled."""
        kinds = ["words", "documents"] if hasattr(self.net, "document_vectors") else ["words"]
        figures = {}
        for kind in kinds:
            vectors, labels = self.embeddings(kind, self.plot_words)
            if len(vectors) < 2:
                continue
            points = principal_plane(vectors)
            figure, axes = new_figure(8, 8)
            axes.scatter(*points.T, s=6)
            for (x, y), label in zip(points.tolist(), labels):
                axes.annotate(label, (x, y), fontsize=7)
            axes.set(title=f"{kind.capitalize()}: the first two principal components", xlabel="PC 1",
                     ylabel="PC 2")
            figures[f"{kind}_pca"] = figure
        return figures
