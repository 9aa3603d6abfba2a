"""Word and document vectors (data=text_corpus, model=word2vec, doc2vec, scripts/embed.py) on a small corpus of
three topics written as a real text file."""

import os
import stat

import pytest
import torch
import torch.nn.functional as F

from dlbook.data.corpus import TextCorpusDataModule
from dlbook.errors import DlbookError
from dlbook.train import train
from tests.datasets import TOPICS, write_topic_corpus

QUICK = ["data=text_corpus", "data.download=false", "data.min_count=1", "data.window=2", "data.subsample=null",
         "data.batch_size=64", "model.net.embed_dim=16", "optimizer.lr=1e-2", "trainer.max_epochs=3",
         "callbacks.figures=null"]


def topic_similarity(vectors: torch.Tensor, labels: list[str]) -> tuple[float, float]:
    """Mean cosine similarity of the topic words' vectors within a topic and across topics."""
    index = {label: i for i, label in enumerate(labels)}
    unit = F.normalize(vectors, dim=1)
    groups = [unit[[index[word] for word in words]] for words in TOPICS.values()]
    within = [(group @ group.T)[~torch.eye(len(group), dtype=torch.bool)].mean() for group in groups]
    across = [(a @ b.T).mean() for i, a in enumerate(groups) for b in groups[i + 1:]]
    return torch.stack(within).mean().item(), torch.stack(across).mean().item()


@pytest.mark.parametrize("mode, loss", [("cbow", "softmax"), ("cbow", "negative_sampling"),
                                        ("skipgram", "softmax"), ("skipgram", "negative_sampling")])
def test_word2vec_puts_cooccurring_words_closer_than_random_pairs(run_config, tmp_path, mode, loss):
    write_topic_corpus(tmp_path / "data" / "PTB" / "ptb.train.txt")
    metrics, objects = train(run_config(["model=word2vec", *QUICK, f"model.net.mode={mode}", f"model.loss={loss}"]))
    assert metrics["test/cooccurrence_margin"] > 0.02
    within, across = topic_similarity(*objects["model"].embeddings("words"))
    assert within > across + 0.2


def test_doc2vec_puts_documents_of_one_topic_closer(run_config, tmp_path):
    topics = write_topic_corpus(tmp_path / "data" / "PTB" / "ptb.train.txt")
    for mode in ("dm", "dbow"):
        _, objects = train(run_config(["model=doc2vec", *QUICK, "data.sentences=periods", "trainer.max_epochs=6",
                                       f"model.net.mode={mode}"], run_name=mode))
        vectors, labels = objects["model"].embeddings("documents")
        assert len(labels) == len(topics) and labels[0].startswith("0: ")
        unit = F.normalize(vectors, dim=1)
        same = torch.tensor([[a == b for b in topics] for a in topics]) & ~torch.eye(len(topics), dtype=torch.bool)
        similarity = unit @ unit.T
        different = ~same & ~torch.eye(len(topics), dtype=torch.bool)
        assert similarity[same].mean() > similarity[different].mean() + 0.2, mode


def corpus(tmp_path, text: str, **options) -> TextCorpusDataModule:
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    settings = {"min_count": 1, "subsample": None, "val_fraction": 0.0, "test_fraction": 0.0,
                "cache_dir": str(tmp_path / "cache"), "data_dir": str(tmp_path), **options}
    datamodule = TextCorpusDataModule(path=str(path), **settings)
    datamodule.setup("fit")
    return datamodule


def test_windows_stop_at_sentence_edges(tmp_path):
    datamodule = corpus(tmp_path, "a b c d. e f\ng h", window=2, right_window=1, sentences="periods",
                        tokenizer="whitespace")
    vocabulary = datamodule.vocabulary
    centers, contexts, mask, documents = datamodule.windows(torch.arange(8))
    assert [vocabulary[i] for i in centers] == list("abcdefgh")
    context = {vocabulary[c]: [vocabulary[w] for w, m in zip(row, keep) if m]
               for c, row, keep in zip(centers.tolist(), contexts.tolist(), mask.tolist())}
    # two words before, one after, within "a b c d", "e f" and "g h"
    assert context == {"a": ["b"], "b": ["a", "c"], "c": ["a", "b", "d"], "d": ["b", "c"], "e": ["f"], "f": ["e"],
                       "g": ["h"], "h": ["g"]}
    assert documents.tolist() == [0] * 6 + [1] * 2
    pairs = corpus(tmp_path, "a b c d. e f\ng h", window=2, right_window=1, sentences="periods", examples="pairs",
                   tokenizer="whitespace")
    assert len(pairs.data_train) == sum(map(len, context.values()))
    repeated = corpus(tmp_path, "a b a", window=2, skip_center_word=True)
    assert repeated.windows(torch.tensor([0]))[2].tolist() == [[False, False, True, False]]  # b, not the next a


def test_rare_words_are_dropped_or_unknown_and_the_vocabulary_is_by_frequency(tmp_path):
    text = "the cat. the dog. the cat. a bird"
    dropped = corpus(tmp_path, text, min_count=2, tokenizer="words")
    assert dropped.vocabulary == ("the", "cat") and dropped.counts == (3, 2)
    unknown = corpus(tmp_path, text, min_count=2, rare_words="unk")
    assert unknown.vocabulary == ("<unk>", "the", "cat") and unknown.counts == (3, 3, 2)
    capped = corpus(tmp_path, text, max_vocab=2, rare_words="unk")  # one word and <unk>
    assert capped.vocabulary == ("<unk>", "the") and capped.counts == (5, 3)


def test_subsampling_drops_frequent_words_more_and_is_reproducible(tmp_path):
    words = ["common"] * 2000 + [f"rare{i}" for i in range(200)] * 2
    datamodule = corpus(tmp_path, " ".join(words), subsample=1e-3, sentences="documents")
    index = {word: i for i, word in enumerate(datamodule.vocabulary)}
    kept = datamodule._kept(torch.device("cpu"), epoch=0)
    ids = datamodule.corpus["ids"].long()
    common_kept, rare_kept = kept[ids == index["common"]].float().mean(), kept[ids != index["common"]].float().mean()
    assert common_kept < 0.2 and rare_kept > 0.9
    again = corpus(tmp_path, " ".join(words), subsample=1e-3, sentences="documents")
    assert torch.equal(again._kept(torch.device("cpu"), epoch=0), kept)
    assert not torch.equal(again._kept(torch.device("cpu"), epoch=1), kept)
    _, _, mask, _ = datamodule.windows(torch.arange(len(ids)), epoch=0)
    assert not mask[~kept].any()  # a dropped center predicts nothing


def test_held_out_sentences_and_a_read_only_data_folder(tmp_path):
    write_topic_corpus(tmp_path / "data" / "corpus.txt")
    folder = tmp_path / "data"
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        datamodule = TextCorpusDataModule(path=str(folder / "corpus.txt"), data_dir=str(folder), min_count=1,
                                          val_fraction=0.1, test_fraction=0.1, cache_dir=str(tmp_path / "cache"))
        datamodule.setup("fit")
    finally:
        os.chmod(folder, stat.S_IRWXU)
    sizes = [len(datamodule.data_train), len(datamodule.data_val), len(datamodule.data_test)]
    assert sum(sizes) == len(datamodule.corpus["ids"]) and 0.05 < sizes[1] / sum(sizes) < 0.15
    assert list((tmp_path / "cache").glob("corpus-*.pt")) and list(folder.iterdir()) == [folder / "corpus.txt"]
    sentences = datamodule.corpus["sentences"]
    assert not set(sentences[datamodule.data_train.tensors[0]].tolist()) & set(
        sentences[datamodule.data_val.tensors[0]].tolist())


def test_bad_input_is_refused_clearly(tmp_path, run_config):
    with pytest.raises(DlbookError, match="is not in .* and data.download=false.*Copy it from Listing 9"):
        train(run_config(["model=word2vec", "data=text_corpus", "data.download=false",
                          "data.missing_hint='Copy it from Listing 9.'"]))
    with pytest.raises(DlbookError, match="is empty"):
        corpus(tmp_path, "  \n")
    with pytest.raises(DlbookError, match="data.min_count=9 times .* lower data.min_count"):
        corpus(tmp_path, "a few words", min_count=9)
    with pytest.raises(DlbookError, match=r"data.window=0 must be a positive integer \(context words on each side\)"):
        corpus(tmp_path, "a b", window=0)
    with pytest.raises(DlbookError, match="data.sentences='commas' is not one of lines, periods, documents"):
        corpus(tmp_path, "a b", sentences="commas")


def test_embed_script_neighbours_analogy_export_and_projection(run_config, tmp_path):
    from dlbook.utils.config import compose_run
    from scripts.embed import embed

    write_topic_corpus(tmp_path / "data" / "PTB" / "ptb.train.txt")
    train(run_config(["model=word2vec", *QUICK]))

    def embedded(*overrides, name):
        return embed(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}",
                                  *overrides], tmp_path / name, "embed"))

    result = embedded("query=[cat,car]", "analogy=cat - dog + car", "export=true", "projection=pca", "k=5",
                      name="embed")
    assert sum(word in TOPICS["animals"] for word, _ in result["neighbours"]["cat"]) >= 4
    assert sum(word in TOPICS["vehicles"] for word, _ in result["neighbours"]["car"]) >= 4
    assert {"cat", "dog", "car"}.isdisjoint(word for word, _ in result["analogy"])
    vectors = (tmp_path / "embed" / "vectors.tsv").read_text().splitlines()
    labels = (tmp_path / "embed" / "metadata.tsv").read_text().splitlines()
    assert len(vectors) == len(labels) and len(vectors[0].split("\t")) == 16 and "cat" in labels
    assert (tmp_path / "embed" / "projection.png").stat().st_size > 0
    assert embedded("projection=tsne", "plot_limit=20", name="tsne")["files"][0].name == "projection.png"
    with pytest.raises(DlbookError, match="not among"):
        embedded("query=[zebra]", name="unknown")
    with pytest.raises(DlbookError, match="learns no document vectors"):
        embedded("kind=documents", name="documents")


def test_embed_script_takes_a_classifiers_features_and_refuses_other_tasks(run_config, tmp_path):
    from dlbook.utils.config import compose_run
    from scripts.embed import embed

    train(run_config(["model=mlp", "trainer.max_epochs=1", "callbacks.figures=null"]))
    settings = [f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}", "kind=features",
                "limit=50", "export=true", "projection=null"]
    embed(compose_run(settings, tmp_path / "features", "embed"))
    assert len((tmp_path / "features" / "vectors.tsv").read_text().splitlines()[0].split("\t")) == 128  # mlp's last
    assert len((tmp_path / "features" / "metadata.tsv").read_text().splitlines()) == 50
    train(run_config(["model=linear_regression", "data=diabetes", "trainer.max_epochs=1"], run_name="regression"))
    with pytest.raises(DlbookError, match="exposes no vectors; embed.py takes EmbeddingTask"):
        embed(compose_run([*settings[:1], f"ckpt_path={tmp_path / 'regression'}"], tmp_path / "refused", "embed"))


def test_an_embedding_of_no_dimensions_is_refused_before_training(run_config, tmp_path):
    # word2vec's initial range is +-0.5 / embed_dim: 0 was a ZeroDivisionError
    write_topic_corpus(tmp_path / "data" / "PTB" / "ptb.train.txt")
    with pytest.raises(DlbookError, match="model.net.embed_dim=0 must be a positive integer."):
        train(run_config(["model=word2vec", *QUICK, "model.net.embed_dim=0"]))
