"""Documents as bag-of-words rows: the classical text representation (DL Workshop ch. 4, Pro DL ch. 4) that any
table model (logistic regression, an MLP) then classifies. scikit-learn's vectorizers do the counting and the
tf-idf weighting; the vocabulary and the idf are fitted on the training documents only."""

import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from dlbook.data.download import download_archive
from dlbook.data.imdb import MD5 as IMDB_MD5, URL as IMDB_URL
from dlbook.data.tabular import Table, TabularDataModule
from dlbook.errors import DlbookError, check_count

WEIGHTINGS = ("count", "binary", "tfidf")
TAG = re.compile(r"<[^>]+>")  # HTML tags such as the IMDB reviews' <br />


def vectorizer(weighting: str, max_features: int | None, ngrams: int = 1, strip_tags: bool = True):
    """scikit-learn's CountVectorizer (counts, or 0/1 with binary) or TfidfVectorizer (its smoothed idf,
    ln((1 + n) / (1 + df)) + 1, and rows scaled to unit length)."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if weighting not in WEIGHTINGS:
        raise DlbookError(f"data.weighting={weighting!r} is not one of {', '.join(WEIGHTINGS)}.")
    options = {"max_features": max_features, "ngram_range": (1, ngrams), "dtype": np.float32,
               "preprocessor": (lambda text: TAG.sub(" ", text).lower()) if strip_tags else None}
    if weighting == "tfidf":
        return TfidfVectorizer(**options)
    return CountVectorizer(binary=weighting == "binary", **options)


class BagOfWordsDataModule(TabularDataModule):
    """The documents of `root`/<class>/*.txt (the IMDB layout, aclImdb/train/{neg,pos}; 20 Newsgroups' too), one
    row each: the `max_features` most frequent words (and word n-grams up to `ngrams`) of the training documents,
    weighted by `weighting` (count, binary or tfidf). Classes are the folder names in sorted order. Rows are kept
    dense (documents x max_features floats), so max_features bounds the memory: 25,000 reviews x 2,000 words are
    200 MB."""

    name = "bag_of_words"

    def __init__(self, root: str, weighting: str = "tfidf", max_features: int | None = 2000, ngrams: int = 1,
                 strip_tags: bool = True, encoding: str = "utf-8", **kwargs):
        super().__init__(**kwargs)
        if max_features is not None:
            check_count("data.max_features", max_features, note=" (words), or null for every word of the training "
                                                                 "documents")
        check_count("data.ngrams", ngrams, note=": 1 (words) or more (word n-grams up to that length)")
        self.vectorizer = vectorizer(weighting, max_features, ngrams, strip_tags)
        self.root = Path(root).expanduser()
        self.encoding = encoding
        self.layout = f"{self.root}/<class>/<document>.txt"

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig):
        return None  # the vocabulary is the documents'

    def class_folders(self) -> list[Path]:
        return sorted(path for path in self.root.iterdir() if path.is_dir()) if self.root.is_dir() else []

    def missing_files(self, split):
        return [] if self.class_folders() else [self.root]

    def download(self):
        if self.root != self.data_dir / "aclImdb" / "train":
            raise DlbookError(f"data.root={self.root} holds no class folders; only the IMDB reviews "
                              f"({self.data_dir / 'aclImdb' / 'train'}) are downloaded.")
        download_archive(IMDB_URL, self.data_dir, IMDB_MD5)

    def read_table(self) -> Table:
        folders = self.class_folders()
        texts, labels = [], []
        for label, folder in enumerate(folders):
            files = sorted(folder.glob("*.txt"))
            if not files:
                raise DlbookError(f"{folder} holds no documents (*.txt files); data={self.name} reads "
                                  f"{self.layout}.")
            for path in files:
                try:
                    texts.append(path.read_text(encoding=self.encoding))
                except UnicodeDecodeError as error:
                    raise DlbookError(f"{path} is not {self.encoding} text ({error.reason} at byte {error.start}): "
                                      f"convert it, or name its encoding with data.encoding.") from None
            labels += [label] * len(files)
        if len(folders) < 2:
            raise DlbookError(f"data.root={self.root} has {len(folders)} class folder; a classifier needs two or "
                              f"more (<class>/<document>.txt).")
        # The vocabulary and the idf come from the documents that are not held out for testing.
        test_rows, other_rows = self.split_rows(len(texts))
        self.vectorizer.fit([texts[i] for i in other_rows])
        features = torch.from_numpy(self.vectorizer.transform(texts).toarray())
        return Table(features, torch.tensor(labels), tuple(self.vectorizer.get_feature_names_out()),
                     tuple(folder.name for folder in folders), num_classes=len(folders))
