"""The IMDB movie reviews of Maas et al. (2011) from the Stanford release: <data_dir>/aclImdb/{train,test}/{pos,neg}/
<id>_<rating>.txt, one review a file. The reviews are tokenised once (lower case, `<br />` removed, words by a
regular expression), mapped to ids of a vocabulary built from the training reviews, cut or padded to a fixed
length and cached as int64 tensors in paths.cache_dir; later runs read the tensors."""

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.cache import cache_key, cached
from dlbook.data.download import download_archive
from dlbook.data.spec import TokenSpec
from dlbook.errors import DlbookError, check_count, check_number

log = logging.getLogger("dlbook")

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
CLASSES = ("neg", "pos")  # label 0 and 1, as Keras' and TFLearn's copies number them
PAD, UNKNOWN = 0, 1
SPECIAL_TOKENS = ("<pad>", "<unk>")
TRUNCATIONS = ("pre", "post")
TEST_SPLITS = ("auto", "files", "held_out")
TOKENIZER_VERSION = 1  # part of the cache key: a change to tokenize() makes new cache entries

LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)  # the reviews' HTML line breaks
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters and digits, with inner apostrophes: don't, critics'


def tokenize(text: str) -> list[str]:
    """The review's words, lower-cased, punctuation and `<br />` dropped."""
    return WORD.findall(LINE_BREAK.sub(" ", text.lower()))


def review_files(folder: Path) -> list[Path]:
    """The reviews of one class folder, sorted; an empty folder is an error."""
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DlbookError(f"{folder} holds no reviews (*.txt files). data=imdb reads the Stanford layout, "
                          f"aclImdb/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt; extract {URL.rsplit('/', 1)[1]} "
                          f"again, or point paths.data_dir at a folder that holds it.")
    return files


def read_reviews(files: list[Path]) -> list[str]:
    texts = []
    for path in files:
        try:
            texts.append(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as error:
            raise DlbookError(f"{path} is not UTF-8 text (byte {error.start}: {error.reason}). data=imdb reads "
                              f"each review as a UTF-8 .txt file, as the Stanford release stores them: convert "
                              f"the file to UTF-8 or remove it.") from None
    return texts


def build_vocabulary(reviews: list[list[str]], size: int) -> list[str]:
    """The pad and unknown tokens, then the size - 2 most frequent words (ties by the word, so it is the same on
    every machine)."""
    counts = Counter()
    for words in reviews:
        counts.update(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [*SPECIAL_TOKENS, *(word for word, _ in ranked[:size - len(SPECIAL_TOKENS)])]


def encode(reviews: list[list[str]], vocabulary: list[str], max_length: int, truncation: str) -> torch.Tensor:
    """(N, max_length) int64 ids, post-padded with PAD; longer reviews keep their last max_length words
    (truncation="pre", Keras' pad_sequences default) or their first ("post")."""
    index = {word: i for i, word in enumerate(vocabulary)}
    ids = np.full((len(reviews), max_length), PAD, dtype=np.int64)
    for row, words in enumerate(reviews):
        kept = words[-max_length:] if truncation == "pre" else words[:max_length]
        ids[row, :len(kept)] = [index.get(word, UNKNOWN) for word in kept]
    return torch.from_numpy(ids)


def balanced_holdout(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out) row indices, sorted: `fraction` of each class's rows held out, drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for label in range(len(CLASSES)):
        rows = (labels == label).nonzero()[:, 0]
        held_out.append(rows[torch.randperm(len(rows), generator=generator)[:round(len(rows) * fraction)]])
    test = torch.cat(held_out).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[test] = False
    return keep.nonzero()[:, 0], test


class IMDBDataModule(DataModule):
    """Reviews as (max_length,) int64 ids and labels 0 (negative) and 1 (positive).

    `vocab_size` counts every id, pad (0) and unknown (1) included: the vocab_size - 2 most frequent words of the
    training reviews get their own. `truncation`: which end of a longer review is cut (pre keeps its end).
    `test_split`: `files` tests on aclImdb/test; `held_out` holds out `test_fraction` of each class of
    aclImdb/train (seeded by split_seed) as the test set; `auto` uses test/ when the folder is there, else holds
    out. The vocabulary never sees the test reviews. `cache_dir`: where the tensors are kept (null: no cache).
    """

    name = "imdb"
    layout = f"aclImdb/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt ({URL.rsplit('/', 1)[1]}, extracted)"
    spec_type = TokenSpec

    def __init__(self, vocab_size: int = 8000, max_length: int = 200, truncation: str = "pre",
                 test_split: str = "auto", test_fraction: float = 0.2, cache_dir: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        check_count("data.vocab_size", vocab_size, least=len(SPECIAL_TOKENS) + 1,
                    note=": the pad and unknown tokens take two ids, and a word needs one")
        check_count("data.max_length", max_length, note=" (words)")
        if truncation not in TRUNCATIONS:
            raise DlbookError(f"data.truncation={truncation!r} is not one of {', '.join(TRUNCATIONS)}.")
        if test_split not in TEST_SPLITS:
            raise DlbookError(f"data.test_split={test_split!r} is not one of {', '.join(TEST_SPLITS)}.")
        check_number("data.test_fraction", test_fraction, least=0, below=1)
        self.vocab_size, self.max_length, self.truncation = vocab_size, max_length, truncation
        self.test_split, self.test_fraction = test_split, test_fraction
        self.cache_dir = cache_dir
        self.root = self.data_dir / "aclImdb"
        self.vocabulary: list[str] | None = None  # id -> word, once set up (or restored from a checkpoint)
        # split -> the review file of each row of load_split(split), relative to data_dir (data_train and data_val
        # are a seeded shuffle of the training rows)
        self.files: dict[str, list[str]] = {}
        self._splits = None

    @property
    def spec(self) -> TokenSpec:
        if self.vocabulary is None:  # the words, for pretrained vectors: from the cache after the first run
            self.setup("fit")
        return TokenSpec(self.vocab_size, self.max_length, PAD, len(CLASSES), vocabulary=tuple(self.vocabulary),
                         separator=" ", class_names=CLASSES)

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TokenSpec:
        return TokenSpec(data_cfg.vocab_size, data_cfg.max_length, PAD, len(CLASSES), class_names=CLASSES)

    @property
    def holds_out_test(self) -> bool:
        return self.test_split == "held_out" or (self.test_split == "auto" and not (self.root / "test").is_dir())

    def missing_files(self, split):
        if split == "test" and self.holds_out_test:
            return []
        return [self.root / split / name for name in CLASSES if not (self.root / split / name).is_dir()]

    def download(self):
        download_archive(URL, self.data_dir, MD5)

    def load_split(self, split):
        if self._splits is None:
            self._splits = self._tokenized()
            self.vocabulary = self._splits["vocabulary"]
            self.files = {name: self._splits[f"{name}_files"] for name in ("train", "test")}
        tokens, labels = self._splits[f"{split}_tokens"], self._splits[f"{split}_labels"]
        if split == "test" and not len(labels):
            raise DlbookError(f"data.test_fraction=0 holds no training reviews out for testing and "
                              f"{self.root / 'test'} is not used (data.test_split={self.test_split}): set "
                              f"data.test_fraction above 0, or test=false.")
        return tokens, labels

    def _labelled_files(self, split: str) -> tuple[list[Path], torch.Tensor]:
        files, labels = [], []
        for label, name in enumerate(CLASSES):
            found = review_files(self.root / split / name)
            files += found
            labels += [label] * len(found)
        return files, torch.tensor(labels)

    def _tokenized(self) -> dict:
        """Every split's ids, labels and files, and the vocabulary: from the cache when it holds this setting of
        these files, else read, tokenised and cached."""
        train_files, train_labels = self._labelled_files("train")
        test_files, test_labels = ([], None) if self.holds_out_test else self._labelled_files("test")
        settings = {"vocab_size": self.vocab_size, "max_length": self.max_length, "truncation": self.truncation,
                    "tokenizer": TOKENIZER_VERSION,
                    "held_out": [self.test_fraction, self.split_seed] if self.holds_out_test else None}

        def build() -> dict:
            log.info(f"data=imdb: tokenising {len(train_files) + len(test_files)} reviews of {self.root}")
            train = [tokenize(text) for text in read_reviews(train_files)]
            files, labels = train_files, train_labels
            if self.holds_out_test:
                kept, held_out = balanced_holdout(labels, self.test_fraction, self.split_seed)
                test = [train[i] for i in held_out]
                test_split = [files[i] for i in held_out], labels[held_out]
                train = [train[i] for i in kept]
                files, labels = [files[i] for i in kept], labels[kept]
            else:
                test = [tokenize(text) for text in read_reviews(test_files)]
                test_split = test_files, test_labels
            vocabulary = build_vocabulary(train, self.vocab_size)
            return {"vocabulary": vocabulary,
                    "train_tokens": encode(train, vocabulary, self.max_length, self.truncation),
                    "train_labels": labels, "train_files": self._relative(files),
                    "test_tokens": encode(test, vocabulary, self.max_length, self.truncation),
                    "test_labels": test_split[1], "test_files": self._relative(test_split[0])}

        if self.cache_dir is None:
            return build()
        key = cache_key([*train_files, *test_files], **settings)
        return cached(self.cache_dir, "imdb", key, build)

    def _relative(self, files: list[Path]) -> list[str]:
        return [str(path.relative_to(self.data_dir)) for path in files]

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Raw reviews as the model's input, (N, max_length) ids, tokenised as the training reviews were."""
        return encode([tokenize(text) for text in texts], self._vocabulary(), self.max_length, self.truncation)

    def decode(self, ids: torch.Tensor) -> list[str]:
        """The words of one row of ids, padding left out."""
        vocabulary = self._vocabulary()
        return [vocabulary[i] for i in ids.tolist() if i != PAD]

    def _vocabulary(self) -> list[str]:
        if self.vocabulary is None:
            raise DlbookError("The IMDB vocabulary is not known yet: call setup() first, or restore the datamodule "
                              "from a checkpoint (load_state_dict), which carries it.")
        return self.vocabulary

    def state_dict(self):
        return {"vocabulary": self.vocabulary}  # so a checkpoint can read raw text without the data

    def load_state_dict(self, state):
        self.vocabulary = state["vocabulary"]
