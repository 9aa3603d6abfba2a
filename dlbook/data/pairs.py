"""Pairs of token sequences for sequence-to-sequence models: sentences and their translations from a tab-separated
file (data=translation_pairs, the Tatoeba layout of manythings.org's fra.txt) or from line-aligned files
(data=parallel_text, tensorflow/nmt's IWSLT'15 layout), or generated sequences and their copies, reversals or sorted
forms (data=sequence_pairs). Every pair is held in memory as two post-padded id
tensors; a batch is cut to its longest source and target, and training batches group pairs of similar length."""

import logging
import re
import unicodedata
from collections import Counter
from pathlib import Path

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.batches import TensorsDataset
from dlbook.data.cache import cache_key, cached
from dlbook.data.download import download_archive, download_file
from dlbook.data.spec import PairSpec
from dlbook.data.text import read_text
from dlbook.errors import DlbookError, check_count, check_number

log = logging.getLogger("dlbook")

PAD, START, END, UNKNOWN = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<sos>", "<eos>", "<unk>")
TASKS = ("copy", "reverse", "sort")
FRA_ENG_URL = "https://www.manythings.org/anki/fra-eng.zip"
IWSLT15_URL = "https://nlp.stanford.edu/projects/nmt/data/iwslt15.en-vi/"  # tensorflow/nmt's download_iwslt15.sh
TOKENIZER_VERSION = 1  # part of the cache key: a change to tokenize() makes new cache entries

WORD_OR_MARK = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")  # words (with inner apostrophes: don't, j'ai) and marks


def tokenize(text: str) -> list[str]:
    """A sentence's words and punctuation marks, lower-cased: "Va-t'en !" -> ["va", "-", "t'en", "!"]."""
    return WORD_OR_MARK.findall(unicodedata.normalize("NFKC", text).lower().replace("\u202f", " "))


class PairDataset(TensorsDataset):
    """Sources (N, S) and targets (N, T) of ids post-padded with PAD, the targets framed by <sos> and <eos>. A batch
    is gathered in one indexing op and cut to its longest source and target (their lengths are kept on the host,
    so the cut reads no device tensor)."""

    def __init__(self, sources: torch.Tensor, targets: torch.Tensor):
        super().__init__(sources, targets)
        self.source_lengths = (sources != PAD).sum(dim=1).cpu()
        self.target_lengths = (targets != PAD).sum(dim=1).cpu()

    def __getitems__(self, indices: list[int]):
        sources, targets = super().__getitems__(indices)
        index = torch.tensor(indices)
        return (sources[:, :int(self.source_lengths[index].max())],
                targets[:, :int(self.target_lengths[index].max())])


def framed(sequences: list[list[int]], width: int | None = None, frame: bool = False) -> torch.Tensor:
    """(N, width) int64 ids, post-padded; with `frame`, each sequence between <sos> and <eos>."""
    rows = [[START, *ids, END] if frame else list(ids) for ids in sequences]
    width = width or max((len(row) for row in rows), default=1)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return ids


class SequencePairDataModule(DataModule):
    """The base of the pair corpora: subclasses give `read_pairs()`, every split's (sources, targets) and the two
    vocabularies. A test split is part of what read_pairs gives; the base holds out validation pairs from the
    training ones. The vocabularies travel in checkpoints (state_dict), so a checkpoint translates new text without
    the data."""

    spec_type = PairSpec
    dataset_type = PairDataset
    separator = " "  # what joins decoded tokens

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.vocabularies: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._widths: tuple[int, int] | None = None  # the longest source and target: what nets are sized for
        self._pairs: dict | None = None

    def read_pairs(self) -> dict:
        """{"train": (sources, targets), "test": (sources, targets), "vocabularies": (source, target)}."""
        raise NotImplementedError

    @property
    def spec(self) -> PairSpec:
        if self.vocabularies is None:
            self._read()
        source, target = self.vocabularies
        return PairSpec(len(source), len(target), *self._widths, PAD, START, END, source, target, self.separator)

    def _read(self) -> dict:
        if self._pairs is None:
            self._pairs = self.read_pairs()
            self.vocabularies = tuple(tuple(words) for words in self._pairs["vocabularies"])
            splits = [split for split in self._pairs if split != "vocabularies"]
            self._widths = tuple(max(self._pairs[split][side].shape[1] for split in splits) for side in (0, 1))
        return self._pairs

    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        sources, targets = self._read()[split]
        if split == "test" and not len(sources):
            raise DlbookError(f"data={self.name} holds no pairs out for testing (data.test_fraction=0): set "
                              f"data.test_fraction above 0, or test=false.")
        return sources, targets

    def bucket_lengths(self, dataset: PairDataset) -> torch.Tensor:
        return dataset.source_lengths

    def encode_sources(self, texts: list[str]) -> torch.Tensor:
        """Raw source texts as the model's input, (N, S) ids post-padded, tokenised as the training sources were;
        words the vocabulary lacks become <unk>."""
        tokens = [self.tokenize(text) for text in texts]
        if not all(tokens):
            raise DlbookError(f"A text to translate holds no token: {texts[[bool(t) for t in tokens].index(False)]!r}.")
        return framed(as_ids(tokens, self.spec.source_vocabulary))

    def tokenize(self, text: str) -> list[str]:
        return text.split()

    def state_dict(self):
        return {"vocabularies": self.vocabularies, "widths": self._widths}

    def load_state_dict(self, state):
        self.vocabularies = tuple(tuple(words) for words in state["vocabularies"])
        self._widths = tuple(state["widths"])

    def missing_files(self, split):
        return []

    def download(self):
        pass


def target_tokens(ids, spec: PairSpec) -> list[str]:
    """The target tokens of a row of ids, up to its <eos>, without <sos> and padding."""
    tokens = []
    for i in (int(i) for i in ids):
        if i == spec.end_index:
            break
        if i not in (spec.pad_index, spec.start_index):
            tokens.append(spec.target_vocabulary[i])
    return tokens


def source_tokens(ids, spec: PairSpec) -> list[str]:
    """The source tokens of a row of ids, without padding."""
    return [spec.source_vocabulary[int(i)] for i in ids if int(i) != spec.pad_index]


def build_vocabulary(sentences: list[list[str]], min_count: int, max_size: int | None) -> list[str]:
    """The special tokens, then the words seen at least min_count times, most frequent first (ties by the word, so
    it is the same on every machine), at most max_size ids in all."""
    counts = Counter(word for words in sentences for word in words)
    ranked = [word for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
              if count >= min_count]
    words = [*SPECIAL_TOKENS, *ranked]
    return words[:max_size] if max_size else words


def as_ids(sentences: list[list[str]], vocabulary) -> list[list[int]]:
    """Each sentence's words as ids of the vocabulary; words it lacks as <unk>."""
    index = {word: i for i, word in enumerate(vocabulary)}
    return [[index.get(word, UNKNOWN) for word in words] for words in sentences]


def pair_tensors(sources: list[list[str]], targets: list[list[str]], vocabularies) -> tuple[torch.Tensor, torch.Tensor]:
    """Source ids post-padded, and target ids framed by <sos> and <eos> and post-padded."""
    return framed(as_ids(sources, vocabularies[0])), framed(as_ids(targets, vocabularies[1]), frame=True)


class TranslationPairsDataModule(SequencePairDataModule):
    """Sentence pairs of a tab-separated UTF-8 file, one pair a line, `source<TAB>target[<TAB>attribution]`: the
    Tatoeba exports of manythings.org (fra.txt: English, then French). `path` names the file (default
    <data_dir>/fra-eng/fra.txt, downloaded); `reverse` translates the second column into the first.

    Sentences are lower-cased and cut into words and punctuation marks. `max_pairs` keeps the file's first pairs (the
    files run from the shortest sentences to the longest), `max_length` drops pairs with a side of more words.
    Each side's vocabulary comes from the training pairs: words seen `min_count` times or more, at most `max_vocab`
    ids; the others read as <unk>. `test_fraction` of the pairs, drawn with split_seed, are the test set. The ids
    are cached in `cache_dir`, never beside the data."""

    name = "translation_pairs"
    layout = "fra-eng/fra.txt (or data.path=<file>), lines of source<TAB>target[<TAB>attribution]"

    def __init__(self, path: str | None = None, reverse: bool = False, max_pairs: int | None = None,
                 max_length: int | None = None, min_count: int = 1, max_vocab: int | None = None,
                 test_fraction: float = 0.1, encoding: str = "utf-8", cache_dir: str | None = None, **kwargs):
        super().__init__(**kwargs)
        for option, value in (("max_pairs", max_pairs), ("max_length", max_length), ("min_count", min_count)):
            if value is not None:
                check_count(f"data.{option}", value, note=", or null for no limit")
        if max_vocab is not None:
            check_count("data.max_vocab", max_vocab, least=len(SPECIAL_TOKENS) + 1,
                        note=f", or null: {', '.join(SPECIAL_TOKENS)} take {len(SPECIAL_TOKENS)} ids, and a word "
                             f"needs one")
        check_number("data.test_fraction", test_fraction, least=0, below=1)
        self.path = Path(path).expanduser() if path else self.data_dir / "fra-eng" / "fra.txt"
        self.reverse, self.max_pairs, self.max_length = reverse, max_pairs, max_length
        self.min_count, self.max_vocab, self.test_fraction = min_count, max_vocab, test_fraction
        self.encoding, self.cache_dir = encoding, cache_dir
        self.default_file = path is None

    def missing_files(self, split):
        return [] if self.path.is_file() else [self.path]

    def download(self):
        if not self.default_file:
            raise DlbookError(f"data.path={self.path} is not a file (only the default fra-eng file is downloaded)")
        download_archive(FRA_ENG_URL, self.path.parent, None)  # manythings.org publishes no checksum

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)

    def read_pairs(self) -> dict:
        settings = {"reverse": self.reverse, "max_pairs": self.max_pairs, "max_length": self.max_length,
                    "min_count": self.min_count, "max_vocab": self.max_vocab, "encoding": self.encoding,
                    "test": [self.test_fraction, self.split_seed], "tokenizer": TOKENIZER_VERSION}
        if self.cache_dir is None:
            return self._build()
        return cached(self.cache_dir, "translation_pairs", cache_key([self.path], **settings), self._build)

    def _build(self) -> dict:
        sources, targets = self._sentences()
        order = torch.randperm(len(sources), generator=torch.Generator().manual_seed(self.split_seed))
        n_test = round(len(sources) * self.test_fraction)
        splits = {"test": order[:n_test].sort().values.tolist(), "train": order[n_test:].sort().values.tolist()}
        vocabularies = [build_vocabulary([side[i] for i in splits["train"]], self.min_count, self.max_vocab)
                        for side in (sources, targets)]
        pairs = {"vocabularies": vocabularies}
        for split, rows in splits.items():
            pairs[split] = pair_tensors([sources[i] for i in rows], [targets[i] for i in rows], vocabularies)
        log.info(f"data=translation_pairs: {len(sources)} pairs of {self.path}, vocabularies "
                 f"{len(vocabularies[0])} -> {len(vocabularies[1])}")
        return pairs

    def _sentences(self) -> tuple[list[list[str]], list[list[str]]]:
        """Both sides' tokens of the kept pairs, in the file's order."""
        sources, targets = [], []
        lines = read_text(self.path, self.encoding, "data.path").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
                raise DlbookError(f"Line {number} of {self.path} is not a sentence pair: {line[:80]!r}. "
                                  f"data=translation_pairs reads one pair a line, source<TAB>target, optionally "
                                  f"followed by <TAB>attribution (the Tatoeba layout of manythings.org).")
            pair = [tokenize(columns[0]), tokenize(columns[1])]
            source, target = pair[::-1] if self.reverse else pair
            if self.max_length and max(len(source), len(target)) > self.max_length:
                continue
            sources.append(source)
            targets.append(target)
            if self.max_pairs and len(sources) == self.max_pairs:
                break
        if not sources:
            raise DlbookError(f"{self.path} has no pair of at most data.max_length={self.max_length} words a side; "
                              f"raise it (or set it to null).")
        return sources, targets


class ParallelTextDataModule(SequencePairDataModule):
    """Line-aligned files of sentences already tokenised (words separated by spaces), the source and target of each
    pair on the same line of <folder>/<prefix>.<language>: tensorflow/nmt's IWSLT'15 Vietnamese-English layout,
    train.{vi,en} (133,317 pairs), tst2012.* (1,553, validation) and tst2013.* (1,268, test), downloaded from
    Stanford's NMT page into <data_dir>/iwslt15_en_vi by default.

    `max_length` drops training pairs with a side of more words (tensorflow/nmt truncates them at 50); validation
    and test pairs are kept whole, so BLEU is over every one. The vocabularies are the folder's vocab.<language>
    files when `vocabulary_files` and they exist (tensorflow/nmt's), else the training words seen `min_count` times
    or more; `lowercase` folds case (tensorflow/nmt scores BLEU case-sensitively). Cached in `cache_dir`."""

    name = "parallel_text"
    layout = "iwslt15_en_vi/{train,tst2012,tst2013}.{vi,en} (data.folder=, data.source=, data.target=)"

    def __init__(self, folder: str = "iwslt15_en_vi", source: str = "vi", target: str = "en",
                 train_prefix: str = "train", val_prefix: str = "tst2012", test_prefix: str = "tst2013",
                 max_length: int | None = None, lowercase: bool = False, vocabulary_files: bool = True,
                 min_count: int = 1, max_vocab: int | None = None, encoding: str = "utf-8",
                 cache_dir: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.folder = self.data_dir / folder
        self.languages = (source, target)
        self.prefixes = {"train": train_prefix, "val": val_prefix, "test": test_prefix}
        self.max_length, self.lowercase, self.vocabulary_files = max_length, lowercase, vocabulary_files
        self.min_count, self.max_vocab, self.encoding, self.cache_dir = min_count, max_vocab, encoding, cache_dir
        self.default_folder = folder == "iwslt15_en_vi"

    def files(self, split: str) -> tuple[Path, Path]:
        return tuple(self.folder / f"{self.prefixes[split]}.{language}" for language in self.languages)

    def missing_files(self, split):
        splits = {"train": ("train", "val"), "val": ("val",), "test": ("test",)}[split]  # train: what fit reads
        return [path for name in splits for path in self.files(name) if not path.is_file()]

    def download(self):
        if not self.default_folder:
            raise DlbookError(f"{self.folder} lacks files, and only the default iwslt15_en_vi folder is downloaded")
        for name in [path.name for split in self.prefixes for path in self.files(split)] + ["vocab.vi", "vocab.en"]:
            if not (self.folder / name).is_file():  # the files there stay: they may be the user's own
                download_file(IWSLT15_URL + name, self.folder / name, None)  # Stanford publishes no checksums

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def read_pairs(self) -> dict:
        files = [path for split in self.prefixes for path in self.files(split)] + self.vocabulary_paths()
        settings = {"max_length": self.max_length, "lowercase": self.lowercase, "min_count": self.min_count,
                    "max_vocab": self.max_vocab, "encoding": self.encoding, "prefixes": self.prefixes,
                    "languages": self.languages}
        if self.cache_dir is None:
            return self._build()
        return cached(self.cache_dir, "parallel_text", cache_key(files, **settings), self._build)

    def vocabulary_paths(self) -> list[Path]:
        paths = [self.folder / f"vocab.{language}" for language in self.languages]
        return paths if self.vocabulary_files and all(path.is_file() for path in paths) else []

    def _build(self) -> dict:
        sentences = {split: self._sentences(split) for split in self.prefixes}
        vocabulary_paths = self.vocabulary_paths()
        if vocabulary_paths:  # tensorflow/nmt's files start with its own <unk>, <s>, </s>
            vocabularies = [[*SPECIAL_TOKENS, *(word for word in dict.fromkeys(
                self.tokenize(read_text(path, self.encoding, "data.folder"))) if word not in ("<unk>", "<s>", "</s>"))]
                for path in vocabulary_paths]
        else:
            vocabularies = [build_vocabulary(side, self.min_count, self.max_vocab) for side in sentences["train"]]
        pairs = {"vocabularies": vocabularies}
        for split, (sources, targets) in sentences.items():
            pairs[split] = pair_tensors(sources, targets, vocabularies)
        log.info(f"data=parallel_text: {', '.join(f'{len(pairs[split][0])} {split}' for split in self.prefixes)} pairs "
                 f"of {self.folder}, vocabularies {len(vocabularies[0])} -> {len(vocabularies[1])}")
        return pairs

    def _sentences(self, split: str) -> tuple[list[list[str]], list[list[str]]]:
        source_path, target_path = self.files(split)
        sides = [read_text(path, self.encoding, "data.folder").splitlines() for path in (source_path, target_path)]
        if len(sides[0]) != len(sides[1]):
            raise DlbookError(f"{source_path} has {len(sides[0])} lines and {target_path} {len(sides[1])}: "
                              f"data=parallel_text reads line-aligned files, the translation of line i of the "
                              f"source on line i of the target.")
        sources, targets = [], []
        for source, target in zip(*sides):
            source, target = self.tokenize(source), self.tokenize(target)
            if not source or not target:
                continue
            if split == "train" and self.max_length and max(len(source), len(target)) > self.max_length:
                continue
            sources.append(source)
            targets.append(target)
        return sources, targets

    def setup(self, stage: str | None = None) -> None:
        """The validation and test pairs are their own files, not held out of the training ones."""
        if stage in (None, "fit", "validate") and self.data_train is None:
            self.data_train, self.data_val = (PairDataset(*self._load_checked(split)) for split in ("train", "val"))
        if stage in (None, "test", "predict") and self.data_test is None:
            self.data_test = PairDataset(*self._load_checked("test"))


class SyntheticPairsDataModule(SequencePairDataModule):
    """Generated, seeded pairs: random sequences of `symbols` symbols ("0", "1", ...), `min_length` to `max_length`
    of them, and their `task`: copy (the same sequence), reverse (backwards) or sort (ascending). The toy tasks
    on which encoder-decoders are checked (Advanced DL ch. 8's copy task, Sutskever et al.'s reversal):
    `num_pairs` training and `test_pairs` test pairs, validation held out of the training ones. `target_symbols`
    (null: `symbols`) sizes the target vocabulary, which then holds symbols no target uses (Pro DL's untrained
    transformer maps 1,000 ids to 1,200). Nothing is downloaded."""

    name = "sequence_pairs"
    layout = "(none: the pairs are generated)"

    def __init__(self, task: str = "reverse", symbols: int = 10, min_length: int = 3, max_length: int = 10,
                 num_pairs: int = 10000, test_pairs: int = 1000, generation_seed: int = 0,
                 target_symbols: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if task not in TASKS:
            raise DlbookError(f"data.task={task!r} is not one of {', '.join(TASKS)}.")
        for option, value in (("min_length", min_length), ("max_length", max_length), ("symbols", symbols),
                              ("num_pairs", num_pairs), ("test_pairs", test_pairs)):
            check_count(f"data.{option}", value)
        if min_length > max_length:
            raise DlbookError(f"data.min_length={min_length} and data.max_length={max_length} must satisfy "
                              f"1 <= min_length <= max_length.")
        self.task, self.symbols, self.min_length, self.max_length = task, symbols, min_length, max_length
        if target_symbols is not None:
            check_count("data.target_symbols", target_symbols, note=", or null for data.symbols")
        if target_symbols is not None and target_symbols < symbols:
            raise DlbookError(f"data.target_symbols={target_symbols} must be at least data.symbols={symbols}: the "
                              f"targets are made of the sources' symbols.")
        self.num_pairs, self.test_pairs, self.generation_seed = num_pairs, test_pairs, generation_seed
        self.target_symbols = target_symbols or symbols

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> PairSpec:
        source = synthetic_vocabulary(data_cfg.symbols)
        target = synthetic_vocabulary(data_cfg.get("target_symbols") or data_cfg.symbols)
        return PairSpec(len(source), len(target), data_cfg.max_length, data_cfg.max_length + 2, PAD, START, END,
                        source, target)

    def read_pairs(self) -> dict:
        generator = torch.Generator().manual_seed(self.generation_seed)
        pairs = {"vocabularies": (synthetic_vocabulary(self.symbols), synthetic_vocabulary(self.target_symbols))}
        for split, count in (("train", self.num_pairs), ("test", self.test_pairs)):  # test follows train
            lengths = torch.randint(self.min_length, self.max_length + 1, (count,), generator=generator)
            symbols = torch.randint(len(SPECIAL_TOKENS), len(SPECIAL_TOKENS) + self.symbols,
                                    (count, self.max_length), generator=generator)
            sources = [row[:length].tolist() for row, length in zip(symbols, lengths)]
            targets = [{"copy": ids, "reverse": ids[::-1], "sort": sorted(ids)}[self.task] for ids in sources]
            pairs[split] = (framed(sources, self.max_length), framed(targets, self.max_length + 2, frame=True))
        return pairs


def synthetic_vocabulary(symbols: int) -> tuple[str, ...]:
    return (*SPECIAL_TOKENS, *(str(i) for i in range(symbols)))
