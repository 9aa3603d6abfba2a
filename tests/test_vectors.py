"""Pretrained word vectors (model.embedding.pretrained=<file>) start a word model's embedding."""

import gzip
import hashlib

import pytest
import torch

from dlbook.assembly import build_datamodule, build_task, restore_task
from dlbook.data.cache import cache_key
from dlbook.data.vectors import read_vectors
from dlbook.errors import DlbookError
from dlbook.train import train
from tests.datasets import NEGATIVE, POSITIVE, write_ptb, write_reviews

DIM = 4


def write_glove(path, vectors: dict[str, list[float]], header: bool = False) -> None:
    lines = [f"{len(vectors)} {DIM}"] if header else []
    lines += [" ".join([word, *map(str, vector)]) for word, vector in vectors.items()]
    path.write_text("\n".join(lines) + "\n")


# Sentiment along the first axis: vectors a classifier can read the class from without learning them.
SENTIMENT = {**{word: [1.0, 0.5, 0.0, 0.0] for word in POSITIVE}, **{word: [-1.0, 0.5, 0.0, 0.0] for word in NEGATIVE},
             "Film": [0.0, 0.0, 2.0, 0.0], "unused": [9.0, 9.0, 9.0, 9.0]}


@pytest.fixture
def reviews(tmp_path):
    write_reviews(tmp_path / "data", per_class=48)
    write_glove(tmp_path / "vectors.txt", SENTIMENT)
    return ["data=imdb", "data.download=false", "data.max_length=24", "data.batch_size=8", "model=rnn_classifier",
            f"model.net.embed_dim={DIM}", f"model.embedding.pretrained={tmp_path / 'vectors.txt'}"]


def built(run_config, overrides):
    cfg = run_config(overrides)
    choices = {"model": cfg.model._target_, "data": "imdb"}
    return build_task(cfg, build_datamodule(cfg).spec, choices)


def test_the_file_s_vectors_start_the_embedding(run_config, reviews):
    task = built(run_config, reviews)
    vocabulary, weight = task.data_spec.vocabulary, task.net.embedding.weight
    for word in ("great", "dull"):
        assert weight[vocabulary.index(word)].tolist() == SENTIMENT[word]
    assert weight[vocabulary.index("film")].tolist() == SENTIMENT["Film"]  # found lower-cased in the vocabulary's case
    assert weight[vocabulary.index("plot")].abs().sum() > 0 and weight[vocabulary.index("plot")][0] != 1.0
    assert weight[0].abs().sum() == 0  # padding stays zero
    assert weight.requires_grad


def test_frozen_vectors_stay_and_a_checkpoint_needs_no_file(run_config, reviews, tmp_path):
    metrics, objects = train(run_config([*reviews, "model.embedding.freeze=true", "trainer.max_epochs=3",
                                         "optimizer.lr=1e-2"]))
    task = objects["model"]
    great = task.data_spec.vocabulary.index("great")
    assert task.net.embedding.weight[great].tolist() == SENTIMENT["great"]
    assert metrics["test/acc"] > 0.8  # the first axis tells the classes apart
    (tmp_path / "vectors.txt").unlink()  # evaluation rebuilds the net from the checkpoint's weights alone
    restored, _, _ = restore_task(tmp_path / "run" / "checkpoints" / "last.ckpt", "eval.py")
    assert torch.equal(restored.net.embedding.weight, task.net.embedding.weight.cpu())


def test_word2vec_text_format_and_the_cache(tmp_path):
    write_glove(tmp_path / "w2v.txt", {"a": [1, 2, 3, 4], "b": [5, 6, 7, 8]}, header=True)
    vectors, found = read_vectors(tmp_path / "w2v.txt", ("b", "c", "a"), tmp_path / "cache")
    assert found.tolist() == [True, False, True] and vectors[0].tolist() == [5, 6, 7, 8]
    (tmp_path / "w2v.txt").write_text("")  # a newer file: the cache key changes and the file is read again
    with pytest.raises(DlbookError, match="holds no vectors"):
        read_vectors(tmp_path / "w2v.txt", ("b", "c", "a"), tmp_path / "cache")


def test_a_word_language_model_takes_vectors(run_config, tmp_path):
    write_ptb(tmp_path / "data" / "PTB")
    write_glove(tmp_path / "vectors.txt", {"cat": [1, 2, 3, 4]})
    task = built(run_config, ["data=ptb", "data.download=false", "model=word_lm", f"model.net.embed_dim={DIM}",
                              f"model.embedding.pretrained={tmp_path / 'vectors.txt'}"])
    assert task.net.embedding.weight[task.data_spec.vocabulary.index("cat")].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("change, message", [
    (("model.embedding.pretrained=/nonexistent/glove.txt",), r"/nonexistent/glove.txt does not exist.*GloVe"),
    ((f"model.net.embed_dim={DIM + 1}",), rf"holds {DIM}-dimensional vectors .* has {DIM + 1}: set "
                                          rf"model.net.embed_dim={DIM}"),
])
def test_bad_vectors_are_refused(run_config, reviews, change, message):
    with pytest.raises(DlbookError, match=message):
        built(run_config, [*reviews, *change])


def test_a_damaged_file_names_its_line(run_config, reviews, tmp_path):
    (tmp_path / "vectors.txt").write_text("great 1 0 0 0\nawful 1 zero 0 0\n")
    with pytest.raises(DlbookError, match=r"line 2, holds 'zero', which is no finite number, in the vector of 'awful'"):
        built(run_config, reviews)


LINES = "".join(f"word{row} {row} 0.5 -1 2\n" for row in range(2000)) + "café 1 2 3 4\n"


@pytest.mark.parametrize("name, content, message", [
    # a NaN component trains into NaN losses
    ("vectors.txt", "a 1 0 0 0\nb 0 nan 0 0\n", r"vectors.txt, line 2, holds 'nan', which is no finite number, in the "
                                               r"vector of 'b'"),
    ("vectors.txt", "a 1 0 0 0\nb 0 0 0 -1e999\n", r"line 2, holds '-1e999', which is no finite number"),
    # latin-1 text: decoded with replacement characters, its accented words would go unmatched, silently
    ("vectors.txt", LINES.encode("latin-1"), r"vectors.txt, line 2001, holds the byte 0xe9, which is not UTF-8"),
    ("vectors.txt.gz", gzip.compress(LINES.encode())[:1000], r"vectors.txt.gz is a damaged or cut-short gzip file "
                                                             r"\(EOFError: .*, after line \d+\): fetch it again"),
    ("vectors.txt.gz", LINES.encode(), r"vectors.txt.gz is a damaged or cut-short gzip file \(BadGzipFile"),
])
def test_a_bad_vector_file_is_refused_naming_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(DlbookError, match=message):
        read_vectors(path, ("a", "b", "word1", "café"), tmp_path / "cache")


def test_a_cache_the_reader_before_the_finite_check_wrote_is_not_read(tmp_path):
    # That reader kept 'nan' as a value; its cache of such a file would go on giving NaN vectors.
    path = tmp_path / "vectors.txt"
    path.write_text("a 1 0 0 0\nb 0 nan 0 0\n")
    vocabulary = ("a", "b")
    digest = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest()[:16]
    old_key = cache_key([path], vocabulary=digest, lowercase=True)
    (tmp_path / "cache").mkdir()
    torch.save({"vectors": torch.tensor([[1.0, 0, 0, 0], [0, float("nan"), 0, 0]]), "found": torch.ones(2).bool()},
               tmp_path / "cache" / f"vectors-{old_key}.pt")
    with pytest.raises(DlbookError, match="holds 'nan', which is no finite number"):
        read_vectors(path, vocabulary, tmp_path / "cache")
