"""Pretrained word vectors from a user's file (GloVe's `word v1 ... vD` lines, or word2vec's text format, whose
first line is `count dim`) copied into a model's embedding layer for the words of the data's vocabulary:
`model.embedding.pretrained=<file>`. Only the vocabulary's rows are read and cached (a 400,000-word GloVe file
is parsed once), keyed on the file and the vocabulary."""

import gzip
import hashlib
import logging
import zlib
from contextlib import closing
from pathlib import Path

import torch
from torch import nn

from dlbook.data.cache import cache_key, cached
from dlbook.data.parsing import finite_number
from dlbook.data.spec import TokenSpec
from dlbook.errors import DlbookError

log = logging.getLogger("dlbook")
GLOVE_URL = "https://nlp.stanford.edu/projects/glove/"


def read_vectors(path: str | Path, vocabulary: tuple[str, ...], cache_dir: str | Path | None = None,
                 lowercase: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(vectors (V, D) float32, found (V,) bool): the file's vector of each vocabulary word, zeros where the file
    lacks it. `lowercase`: a word the file lacks as it is takes the vector of another case of it (GloVe's words
    are lower case, word2vec's GoogleNews vectors cased)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DlbookError(f"model.embedding.pretrained={path} does not exist. Give a word-vector text file: "
                          f"GloVe's glove.6B.100d.txt ({GLOVE_URL}, unzipped) or word2vec's text format (a "
                          f"`count dim` line, then `word v1 ... vD` per line), or set model.embedding.pretrained="
                          f"null to learn the embedding from scratch.")
    vocabulary_digest = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest()[:16]
    # reader 2 refuses values that are not finite: a cache the first reader built may hold them
    key = cache_key([path], vocabulary=vocabulary_digest, lowercase=lowercase, reader=2)
    result = cached(cache_dir, "vectors", key, lambda: parse(path, vocabulary, lowercase))
    return result["vectors"], result["found"]


def parse(path: Path, vocabulary: tuple[str, ...], lowercase: bool) -> dict:
    exact, folded = {}, {}  # word -> its rows; lower-cased word -> the rows of every case of it
    for index, word in enumerate(vocabulary):
        exact.setdefault(word, []).append(index)
        folded.setdefault(word.lower(), []).append(index)
    vectors, dim = None, None
    found = torch.zeros(len(vocabulary), dtype=torch.bool)
    matched_exactly = torch.zeros(len(vocabulary), dtype=torch.bool)
    with closing(read_lines(path)) as lines:  # closed, the file with it, when a line is refused
        for number, line in lines:
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                continue  # word2vec's header
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise DlbookError(f"{path}, line 1, is not `word v1 ... vD`: {line[:80]!r}.")
                vectors = torch.zeros(len(vocabulary), dim)
            word = parts[0]
            rows = exact.get(word, [])
            # "film" takes the vector of "Film" when the file has no "film"; the first case found wins
            rows_by_case = [row for row in folded.get(word.lower(), []) if not found[row]] if lowercase else []
            if not rows and not rows_by_case:
                continue
            if len(parts) - 1 != dim:
                raise DlbookError(f"{path}, line {number}, has {len(parts) - 1} numbers after its word, the file's "
                                  f"first vector {dim}: the file is damaged or not a word-vector text file.")
            values = [finite_number(value) for value in parts[1:]]
            if None in values:
                raise DlbookError(f"{path}, line {number}, holds {parts[1 + values.index(None)]!r}, which is no "
                                  f"finite number, in the vector of {word!r}: the file is damaged or not a "
                                  f"word-vector text file.")
            vector = torch.tensor(values)
            for row in {*rows, *rows_by_case}:
                if not matched_exactly[row]:
                    vectors[row], found[row] = vector, True
            matched_exactly[rows] = True
    if vectors is None:
        raise DlbookError(f"model.embedding.pretrained={path} holds no vectors.")
    return {"vectors": vectors, "found": found}


def read_lines(path: Path):
    """(number, text) of each line of the file, gunzipped when its name ends in .gz. Text that is not UTF-8 and a
    damaged or cut-short .gz are refused, naming the file (and line): decoding with replacement characters would
    leave the words holding them unmatched, silently."""
    opener = gzip.open if path.suffix == ".gz" else open
    number = 0
    try:
        with opener(path, "rb") as file:  # bytes, decoded line by line to name the line that is not UTF-8
            for number, line in enumerate(file, 1):
                yield number, line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DlbookError(f"{path}, line {number}, holds the byte {error.object[error.start]:#04x}, which is not "
                          f"UTF-8 ({error.reason}): GloVe and word2vec text files are UTF-8; convert this one to "
                          f"UTF-8 from its encoding (such as latin-1).") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        after = f", after line {number}" if number else ""
        raise DlbookError(f"{path} is a damaged or cut-short gzip file ({type(error).__name__}: {error}{after}): "
                          f"fetch it again, or give the unzipped text file.") from None


def use_pretrained_vectors(net: nn.Module, spec: TokenSpec, pretrained: str | None = None, freeze: bool = False,
                           cache_dir: str | None = None, lowercase: bool = True) -> None:
    """Copy the file's vectors into the net's word embedding (its one nn.Embedding of spec.vocab_size rows) for
    the words of spec.vocabulary it has; the others keep their initialisation. `freeze` stops the embedding
    training."""
    if pretrained is None:
        return
    vocabulary = spec.vocabulary
    if not vocabulary:
        raise DlbookError("model.embedding.pretrained needs the data's words, and this data gives only token ids; "
                          "pretrained vectors fit word data (imdb, ptb).")
    embeddings = [module for module in net.modules()
                  if isinstance(module, nn.Embedding) and module.num_embeddings == spec.vocab_size]
    if len(embeddings) != 1:
        raise DlbookError(f"model.embedding.pretrained needs a net with one word embedding of {spec.vocab_size} "
                          f"rows; {type(net).__name__} has {len(embeddings)} (a one-hot model learns none: set "
                          f"model.net.one_hot=false).")
    (embedding,) = embeddings
    vectors, found = read_vectors(pretrained, vocabulary, cache_dir, lowercase)
    if vectors.shape[1] != embedding.embedding_dim:
        raise DlbookError(f"model.embedding.pretrained={pretrained} holds {vectors.shape[1]}-dimensional vectors "
                          f"and the net's embedding has {embedding.embedding_dim}: set model.net.embed_dim="
                          f"{vectors.shape[1]}.")
    if embedding.padding_idx is not None:
        found[embedding.padding_idx] = False  # the padding row stays zero
    with torch.no_grad():  # a capped vocabulary may have fewer words than rows: the first rows are its words
        embedding.weight[:len(vocabulary)][found] = vectors[found].to(embedding.weight.dtype)
    embedding.weight.requires_grad_(not freeze)
    log.info(f"Pretrained vectors from {pretrained} for {int(found.sum())} of the {len(vocabulary)} words"
             f"{', frozen' if freeze else ''}; the others keep their initialisation.")
