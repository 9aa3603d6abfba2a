"""A text corpus for word (and document) vectors: data=text_corpus reads any text file, lower-cases it and cuts it
into documents, sentences and word tokens. The whole text is one tensor of word ids, with parallel tensors of
sentence and document ids; a batch is a set of center positions whose context windows are gathered with one
indexing op (nanoGPT's get_batch, for windows around words), masked where a window crosses a sentence's edge.
Frequent words are subsampled afresh each epoch (Mikolov et al. 2013), seeded by the epoch."""

import logging
import re
from collections import Counter
from pathlib import Path

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.batches import TensorsDataset, batch_loader
from dlbook.data.cache import cache_key, cached
from dlbook.data.download import download_file, warn_unless_published
from dlbook.data.spec import CorpusSpec
from dlbook.data.text import PTB_FILES, PTB_MD5, PTB_URL, UNKNOWN, read_text
from dlbook.errors import DlbookError, check_count, check_number

log = logging.getLogger("dlbook")

TOKENIZERS = ("words", "whitespace")
SENTENCES = ("lines", "periods", "documents")
DOCUMENTS = ("lines", "paragraphs")
RARE_WORDS = ("drop", "unk")
EXAMPLES = ("positions", "pairs")
TOKENIZER_VERSION = 1  # part of the cache key: a change to tokenize() makes new cache entries
# Letters and digits with inner apostrophes or hyphens (don't, 2-1), and tags such as PTB's <unk>.
WORD = re.compile(r"<[^\s<>]+>|[^\W_]+(?:['’-][^\W_]+)*")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
LABEL_WORDS = 6  # words of a document that make its label


def tokenize(text: str, tokenizer: str) -> list[str]:
    """Lower-cased tokens: `words` keeps letters and digits (punctuation dropped), `whitespace` splits on white
    space only, so punctuation stays on its word ("neuron," is not "neuron"), as Pro DL's listings do."""
    text = text.lower()
    return WORD.findall(text) if tokenizer == "words" else text.split()


def split_text(text: str, documents: str, sentences: str, tokenizer: str) -> list[list[list[str]]]:
    """The text's documents (lines, or paragraphs between blank lines), each a list of sentences (its lines, its
    pieces between periods, or the whole document), each a list of tokens; empty ones left out."""
    parts = text.splitlines() if documents == "lines" else PARAGRAPH_BREAK.split(text)
    corpus = []
    for part in parts:
        pieces = part.splitlines() if sentences == "lines" else part.split(".") if sentences == "periods" else [part]
        document = [tokens for tokens in (tokenize(piece, tokenizer) for piece in pieces) if tokens]
        if document:
            corpus.append(document)
    return corpus


def build_vocabulary(counts: Counter, min_count: int, max_vocab: int | None, rare_words: str) -> set[str]:
    """The words kept: those seen min_count times or more, at most max_vocab of the most frequent (ties by the word,
    the same on every machine); with rare_words=unk one of the max_vocab ids is <unk>'s."""
    ranked = [word for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
              if count >= min_count]
    if max_vocab and len(ranked) > max_vocab:
        unknown_needed = rare_words == "unk" and UNKNOWN not in ranked[:max_vocab]
        ranked = ranked[:max_vocab - unknown_needed]
    return set(ranked)


def document_label(index: int, document: list[list[str]]) -> str:
    """"<id>: <its first words>", how exported and plotted document vectors are named."""
    return f"{index}: {' '.join([word for sentence in document for word in sentence][:LABEL_WORDS])}"


class TextCorpusDataModule(DataModule):
    """The word tokens of one text file (`path`; default Penn Treebank's training text, downloaded).

    Text: `tokenizer` (words|whitespace, see tokenize), `documents` (lines|paragraphs), `sentences`
    (lines|periods|documents: where windows stop). `val_fraction` and `test_fraction` of the sentences, drawn with
    `split_seed`, are held out (both 0: validation and test read the training text, as a book that only trains
    does; test_fraction 0: the test reads the validation text). Vocabulary from the training sentences: words seen
    `min_count` times or more, at most `max_vocab`, most frequent first; the others are dropped from the text or
    read as <unk> (`rare_words`). Windows: `window` words on the left of each center and `right_window` (default
    `window`) on the right, within its sentence; `skip_center_word` leaves out context words equal to the center.
    `subsample`: t of Mikolov's p_drop = 1 - sqrt(t / f) for a word of training frequency f, redrawn each training
    epoch (null: every word kept); a dropped word is masked out of the windows around it, and a dropped center's
    row predicts nothing. `examples`: one per center position, or one per (center, context word) pair. Token ids
    are cached in `cache_dir`, never beside the text.
    """

    name = "text_corpus"
    spec_type = CorpusSpec

    def __init__(self, path: str | None = None, encoding: str = "utf-8", tokenizer: str = "words",
                 documents: str = "lines", sentences: str = "lines", min_count: int = 5, max_vocab: int | None = None,
                 rare_words: str = "drop", window: int = 5, right_window: int | None = None,
                 skip_center_word: bool = False, subsample: float | None = 1e-5, examples: str = "positions",
                 test_fraction: float = 0.05, drop_last: bool = False, cache_dir: str | None = None,
                 missing_hint: str | None = None, **kwargs):
        super().__init__(**kwargs)
        for option, value, valid in (("tokenizer", tokenizer, TOKENIZERS), ("documents", documents, DOCUMENTS),
                                     ("sentences", sentences, SENTENCES), ("rare_words", rare_words, RARE_WORDS),
                                     ("examples", examples, EXAMPLES)):
            if value not in valid:
                raise DlbookError(f"data.{option}={value!r} is not one of {', '.join(valid)}.")
        right_window = window if right_window is None else right_window
        check_count("data.window", window, note=" (context words on each side)")
        check_count("data.right_window", right_window, least=0, note=" (context words on the right)")
        check_count("data.min_count", min_count)
        if max_vocab is not None:
            check_count("data.max_vocab", max_vocab, note=" (words), or null for all")
        if subsample is not None:
            check_number("data.subsample", subsample, above=0, note=" (Mikolov's t, e.g. 1e-5), or null")
        check_number("data.test_fraction", test_fraction, least=0, below=round(1 - self.val_fraction, 12),
                     note=" (1 - data.val_fraction)")
        self.default_path = self.data_dir / "PTB" / PTB_FILES["train"]
        self.path = Path(path).expanduser() if path else self.default_path
        self.layout = str(self.path.relative_to(self.data_dir) if self.path.is_relative_to(self.data_dir)
                          else self.path)
        self.encoding, self.tokenizer, self.documents, self.sentences = encoding, tokenizer, documents, sentences
        self.min_count, self.max_vocab, self.rare_words = min_count, max_vocab, rare_words
        self.subsample, self.examples, self.test_fraction = subsample, examples, test_fraction
        self.skip_center_word, self.drop_last = skip_center_word, drop_last
        self.cache_dir, self.missing_hint = cache_dir, missing_hint
        self.offsets = torch.tensor([*range(-window, 0), *range(1, right_window + 1)])
        self.vocabulary: tuple[str, ...] | None = None
        self.counts: tuple[int, ...] = ()
        self.document_labels: tuple[str, ...] = ()
        self.corpus: dict[str, torch.Tensor] | None = None  # ids, sentences, documents: one entry per token
        self._on_device: dict = {}  # (device, epoch) -> the corpus tensors there and the epoch's kept tokens

    @property
    def spec(self) -> CorpusSpec:
        if self.vocabulary is None:
            self.setup("fit")
        return CorpusSpec(vocab_size=len(self.vocabulary), vocabulary=self.vocabulary,
                          num_documents=len(self.document_labels), counts=self.counts,
                          document_labels=self.document_labels)

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> CorpusSpec | None:
        return None  # the vocabulary is the file's

    def missing_files(self, split: str) -> list[Path]:
        return [] if self.path.is_file() else [self.path]

    def download(self) -> None:
        if self.path != self.default_path:
            raise DlbookError(f"data.path={self.path} does not exist; only the default, Penn Treebank's training "
                              f"text, is downloaded. {self.missing_hint or ''}".strip())
        download_file(PTB_URL.format(name=self.path.name), self.path, PTB_MD5[self.path.name])

    def raise_missing(self, missing: list[Path], reason: str):
        try:
            super().raise_missing(missing, reason)
        except DlbookError as error:
            if not self.missing_hint:
                raise
            raise type(error)(f"{error} {self.missing_hint}") from None

    # -- the text as tensors ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.corpus is None:
            missing = self.missing_files("train")
            if missing:
                self.raise_missing(missing, "it was not downloaded")
            result = self._tokenized()
            self.corpus = {name: result[name] for name in ("ids", "sentences", "documents")}
            self.vocabulary, self.counts = tuple(result["vocabulary"]), tuple(result["counts"])
            self.document_labels = tuple(result["document_labels"])
            splits = {split: self._examples(result[split]) for split in ("train", "val", "test")}
            # Nothing held out: validate (and test) on the training text; no test text: test on the validation text.
            splits["val"] = splits["val"] if len(splits["val"]) else splits["train"]
            splits["test"] = splits["test"] if len(splits["test"]) else splits["val"]
            self.data_train, self.data_val, self.data_test = (TensorsDataset(splits[split])
                                                              for split in ("train", "val", "test"))

    def _tokenized(self) -> dict:
        if self.path == self.default_path:
            warn_unless_published(self.path, PTB_MD5[self.path.name])
        settings = {"encoding": self.encoding, "tokenizer": self.tokenizer, "documents": self.documents,
                    "sentences": self.sentences, "min_count": self.min_count, "max_vocab": self.max_vocab,
                    "rare_words": self.rare_words, "held_out": [self.val_fraction, self.test_fraction],
                    "split_seed": self.split_seed, "version": TOKENIZER_VERSION}
        return cached(self.cache_dir, "corpus", cache_key([self.path], **settings), self._tokenize)

    def _tokenize(self) -> dict:
        if not self.path.read_bytes().strip():
            raise DlbookError(f"data.path={self.path} is empty: word vectors need text to learn from.")
        log.info(f"data=text_corpus: tokenising {self.path}")
        documents = split_text(read_text(self.path, self.encoding, "data.path"), self.documents, self.sentences,
                               self.tokenizer)
        sentences = [(index, sentence) for index, document in enumerate(documents) for sentence in document]
        if not sentences:
            raise DlbookError(f"data.path={self.path} holds no words (data.tokenizer={self.tokenizer}).")
        # Whole sentences are held out, drawn with split_seed; the vocabulary is the training sentences'.
        order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        n_val, n_test = round(len(sentences) * self.val_fraction), round(len(sentences) * self.test_fraction)
        split_of = {index: "val" for index in order[:n_val]} | {index: "test" for index in order[n_val:n_val + n_test]}
        if len(split_of) == len(sentences):
            raise DlbookError(f"data.path={self.path} has {len(sentences)} sentences: none is left to train on "
                              f"after holding out data.val_fraction={self.val_fraction} and "
                              f"data.test_fraction={self.test_fraction}; lower them or give more text.")
        counts = Counter(word for index, (_, words) in enumerate(sentences) if index not in split_of
                         for word in words)
        kept = build_vocabulary(counts, self.min_count, self.max_vocab, self.rare_words)
        if not kept:
            raise DlbookError(f"No word of data.path={self.path} is seen data.min_count={self.min_count} times in "
                              f"the training text (the most frequent, {counts.most_common(1)[0][0]!r}, is seen "
                              f"{counts.most_common(1)[0][1]} times): lower data.min_count.")

        def read(word: str) -> str | None:
            return word if word in kept else UNKNOWN if self.rare_words == "unk" else None

        rows = []  # (word, sentence, document, split) of each token kept
        for sentence, (document, words) in enumerate(sentences):
            split = split_of.get(sentence, "train")
            rows += [(word, sentence, document, split) for word in map(read, words) if word]
        final = Counter(word for word, _, _, split in rows if split == "train")
        vocabulary = sorted(final, key=lambda word: (-final[word], word))
        index = {word: i for i, word in enumerate(vocabulary)}
        rows = [row for row in rows if row[0] in index]  # <unk> of held-out text where training had none
        return {"ids": torch.tensor([index[row[0]] for row in rows], dtype=torch.int32),
                "sentences": torch.tensor([row[1] for row in rows], dtype=torch.int32),
                "documents": torch.tensor([row[2] for row in rows], dtype=torch.int32),
                **{split: torch.tensor([i for i, row in enumerate(rows) if row[3] == split], dtype=torch.long)
                   for split in ("train", "val", "test")},
                "vocabulary": vocabulary, "counts": [final[word] for word in vocabulary],
                "document_labels": [document_label(i, document) for i, document in enumerate(documents)]}

    def _examples(self, positions: torch.Tensor) -> torch.Tensor:
        """A split's rows: its center positions, or with examples=pairs each valid (center, context) pair as
        position * window width + the context's place in the window."""
        if self.examples == "positions":
            return positions
        pairs = []
        offsets = self._corpus_on(positions.device)["offsets"]
        for chunk in positions.split(65536):
            _, _, mask, _ = self._gather(chunk, chunk[:, None] + offsets)
            rows, places = mask.nonzero(as_tuple=True)
            pairs.append(chunk[rows] * len(self.offsets) + places)
        return torch.cat(pairs)

    # -- batches ------------------------------------------------------------------------------------
    def train_dataloader(self):
        return batch_loader(self.data_train, self.batch_size, shuffle=True, seed=self.shuffle_seed,
                            drop_last=self.drop_last, pin_memory=self.pin_memory)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        (rows,) = batch
        training = self.trainer is not None and self.trainer.training
        return self.windows(rows, epoch=self.trainer.current_epoch if training else None)

    def windows(self, rows: torch.Tensor, epoch: int | None = None) -> tuple[torch.Tensor, ...]:
        """(centers (B,), contexts (B, C), mask (B, C), documents (B,)): each row's center word, the words
        around it (C = window + right_window, or 1 for pairs), which of them are context (inside its sentence,
        and, for a training epoch, kept by its subsampling), and the center's document."""
        offsets = self._corpus_on(rows.device)["offsets"]
        if self.examples == "pairs":
            positions, places = rows.div(len(offsets), rounding_mode="floor"), rows.remainder(len(offsets))
            return self._gather(positions, positions[:, None] + offsets[places][:, None], epoch)
        return self._gather(rows, rows[:, None] + offsets, epoch)

    def _gather(self, positions: torch.Tensor, around: torch.Tensor, epoch: int | None = None):
        """windows() of centers at `positions` (B,) and the positions `around` them (B, C)."""
        corpus = self._corpus_on(positions.device)
        inside = (around >= 0) & (around < len(corpus["ids"]))
        around = around.clamp(0, len(corpus["ids"]) - 1)
        contexts = corpus["ids"].index_select(0, around.flatten()).view_as(around).long()
        sentences = corpus["sentences"].index_select(0, around.flatten()).view_as(around)
        centers = corpus["ids"].index_select(0, positions).long()
        mask = inside & (sentences == corpus["sentences"].index_select(0, positions)[:, None])
        if self.skip_center_word:
            mask &= contexts != centers[:, None]
        if epoch is not None and self.subsample:
            kept = self._kept(positions.device, epoch)
            mask &= kept.index_select(0, around.flatten()).view_as(around) & kept.index_select(0, positions)[:, None]
        return centers, contexts, mask, corpus["documents"].index_select(0, positions).long()

    def _corpus_on(self, device: torch.device) -> dict[str, torch.Tensor]:
        # Moved once per device: the whole text lives where the batches are gathered.
        if device not in self._on_device:
            self._on_device[device] = {**{name: tensor.to(device) for name, tensor in self.corpus.items()},
                                       "offsets": self.offsets.to(device)}
        return self._on_device[device]

    def _kept(self, device: torch.device, epoch: int) -> torch.Tensor:
        """This epoch's kept tokens: token i of word w is kept with probability min(1, sqrt(t / f_w)), drawn from
        a generator seeded by shuffle_seed and the epoch, so a resumed run keeps the same ones."""
        key = ("kept", device)
        if self._on_device.get(key, (None,))[0] != epoch:
            counts = torch.tensor(self.counts, dtype=torch.float64)
            keep = (self.subsample / (counts / counts.sum())).sqrt().clamp(max=1.0)
            generator = torch.Generator().manual_seed(self.shuffle_seed * 1_000_003 + epoch)
            draws = torch.rand(len(self.corpus["ids"]), generator=generator, dtype=torch.float64)
            self._on_device[key] = (epoch, (draws < keep[self.corpus["ids"].long()]).to(device))
        return self._on_device[key][1]

    def state_dict(self) -> dict:
        # In checkpoints: eval.py and scripts/embed.py rebuild the model and name its vectors without the text.
        return {"vocabulary": list(self.vocabulary or ()), "counts": list(self.counts),
                "document_labels": list(self.document_labels)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("vocabulary"):
            self.vocabulary = tuple(state["vocabulary"])
            self.counts, self.document_labels = tuple(state["counts"]), tuple(state["document_labels"])
