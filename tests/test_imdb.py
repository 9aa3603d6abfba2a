"""IMDB reviews in the Stanford layout: tokenising, the cache, the held-out test split, truncation, bad files, and the
sequence classifiers (RNN/LSTM/GRU, bidirectional, the text CNN) trained on a small set of reviews whose
sentiment words are plain."""

from pathlib import Path

import pytest
import torch

from dlbook.assembly import build_datamodule, build_task, restore_task
from dlbook.data import imdb
from dlbook.data.imdb import PAD, UNKNOWN, encode, tokenize
from dlbook.errors import DatasetNotFoundError, DlbookError
from dlbook.nets.sequence.rnn_classifier import RNNClassifier
from dlbook.nets.sequence.text_cnn import TextCNN
from dlbook.train import train
from tests.datasets import write_reviews

def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*")}


@pytest.fixture
def imdb_config(run_config, tmp_path):
    """A run config reading the reviews under tmp_path/data, caching under tmp_path/cache."""
    return lambda overrides=(): run_config(["data=imdb", "data.download=false", f"paths.cache_dir={tmp_path / 'cache'}",
                                            "data.max_length=24", *overrides])


def set_up(cfg, *stages):
    datamodule = build_datamodule(cfg)
    for stage in stages or ("fit", "test"):
        datamodule.setup(stage)
    return datamodule


def test_tokenize_lowers_case_and_drops_line_breaks_and_punctuation():
    assert tokenize("A GREAT film!<br /><br />Don't miss it... 10/10, critics' pick") == [
        "a", "great", "film", "don't", "miss", "it", "10", "10", "critics", "pick"]


def test_encode_post_pads_and_truncates_either_end():
    vocabulary = ["<pad>", "<unk>", "a", "b", "c", "d"]
    review, short = ["a", "b", "c", "d", "zzz"], ["d", "zzz"]
    assert encode([review], vocabulary, 3, "pre").tolist() == [[4, 5, UNKNOWN]]  # its last three words
    assert encode([review], vocabulary, 3, "post").tolist() == [[2, 3, 4]]  # its first three
    assert encode([short], vocabulary, 4, "pre").tolist() == [[5, UNKNOWN, PAD, PAD]]  # padded after the words


def test_reviews_are_tokenised_once_cached_outside_the_data_and_reread_when_a_file_changes(imdb_config, tmp_path,
                                                                                          monkeypatch):
    write_reviews(tmp_path / "data")
    before = files_under(tmp_path / "data")
    for path in sorted((tmp_path / "data").rglob("*"), reverse=True):  # files first, then their folders
        path.chmod(0o555 if path.is_dir() else 0o444)
    datamodule = set_up(imdb_config())
    tokens, labels = datamodule.data_train.tensors
    assert tokens.dtype == torch.int64 and tokens.shape[1] == 24 and labels.dtype == torch.int64
    assert datamodule.vocabulary[:2] == ["<pad>", "<unk>"] and len(datamodule.vocabulary) <= 8000
    assert files_under(tmp_path / "data") == before  # nothing written beside the data
    assert len(list((tmp_path / "cache").glob("imdb-*.pt"))) == 1

    reads = []
    read_reviews = imdb.read_reviews
    monkeypatch.setattr(imdb, "read_reviews", lambda files: reads.append(len(files)) or read_reviews(files))
    again = set_up(imdb_config())
    assert reads == []  # the second run reads the tensors, not the reviews
    assert torch.equal(again.data_train.tensors[0], tokens) and again.vocabulary == datamodule.vocabulary

    changed = next((tmp_path / "data" / "aclImdb" / "train" / "pos").glob("0_*.txt"))
    changed.chmod(0o644)
    changed.write_text("An utterly new review, great great great.")
    set_up(imdb_config())
    assert reads == [80]  # the changed file made a new cache entry, from every review
    assert len(list((tmp_path / "cache").glob("imdb-*.pt"))) == 2


def test_the_held_out_test_set_is_balanced_disjoint_seeded_and_unseen_by_the_vocabulary(imdb_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=40)  # no test/ folder: data.test_split=auto holds reviews out
    datamodule = set_up(imdb_config(["data.test_fraction=0.25"]))
    train_files, test_files = datamodule.files["train"], datamodule.files["test"]
    assert len(test_files) == 20 and datamodule.data_test.tensors[1].sum() == 10  # 10 of each class
    assert not set(train_files) & set(test_files) and len(train_files) + len(test_files) == 80
    assert len(datamodule.data_train) + len(datamodule.data_val) == 60
    # Each review has a word of its own: the held-out reviews' are not in the vocabulary, the others' are.
    own_word = {name: f"critictrain{Path(name).parent.name}{Path(name).stem.split('_')[0]}" for name in
                train_files + test_files}
    assert all(own_word[name] in datamodule.vocabulary for name in train_files)
    assert not any(own_word[name] in datamodule.vocabulary for name in test_files)

    assert set_up(imdb_config(["data.test_fraction=0.25"])).files["test"] == test_files  # seeded
    assert set_up(imdb_config(["data.test_fraction=0.25", "data.split_seed=7"])).files["test"] != test_files


def test_the_test_folder_is_used_when_there_and_required_with_test_split_files(imdb_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=12)
    with pytest.raises(DatasetNotFoundError, match=r"aclImdb/test/neg, aclImdb/test/pos"):
        build_datamodule(imdb_config(["data.test_split=files"]))
    write_reviews(tmp_path / "data", split="test", per_class=5, seed=1)
    datamodule = set_up(imdb_config())
    assert len(datamodule.data_train) + len(datamodule.data_val) == 24 and len(datamodule.data_test) == 10
    assert all(name.startswith("aclImdb/test/") for name in datamodule.files["test"])


def test_truncation_keeps_the_end_of_a_long_review_or_its_start(imdb_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=6)
    path = tmp_path / "data" / "aclImdb" / "train" / "pos" / "99_10.txt"
    path.write_text(" ".join(["great"] * 30 + ["the", "film", "was", "moving"]))
    ends = {}
    for truncation in ("pre", "post"):
        datamodule = set_up(imdb_config([f"data.truncation={truncation}", "data.max_length=4",
                                         "data.val_fraction=0", "data.test_fraction=0"]), "fit")
        row = datamodule.files["train"].index("aclImdb/train/pos/99_10.txt")
        ends[truncation] = datamodule.decode(datamodule.load_split("train")[0][row])
    assert ends == {"pre": ["the", "film", "was", "moving"], "post": ["great"] * 4}


def test_a_review_that_is_not_utf8_is_named(imdb_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=4)
    bad = tmp_path / "data" / "aclImdb" / "train" / "neg" / "50_1.txt"
    bad.write_bytes("Un film très ennuyeux".encode("latin-1"))
    with pytest.raises(DlbookError, match=r"50_1\.txt is not UTF-8 text .* convert the file to UTF-8"):
        set_up(imdb_config())


def test_an_empty_class_folder_and_a_missing_one_are_refused(imdb_config, tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"Missing \(2, under that folder\): aclImdb/train/neg, "
                                                   r"aclImdb/train/pos\. Expected layout: .*aclImdb/\{train,test\}"):
        build_datamodule(imdb_config())
    (tmp_path / "data" / "aclImdb" / "train" / "neg").mkdir(parents=True)
    (tmp_path / "data" / "aclImdb" / "train" / "pos").mkdir()
    with pytest.raises(DlbookError, match=r"train/neg holds no reviews \(\*\.txt files\)"):
        set_up(imdb_config())


@pytest.mark.parametrize("cell, layers, bidirectional, keras_count, torch_count", [
    ("rnn", 1, False, 2080, 2112),
    ("lstm", 1, False, 8320, 8448),
    ("gru", 1, False, 6240, 6336),
    ("lstm", 1, True, 16640, 16896),
    ("lstm", 2, False, 16640, 16896),
])
def test_recurrent_parameter_counts_are_the_workshops_with_one_bias_per_gate(cell, layers, bidirectional,
                                                                             keras_count, torch_count):
    sizes = {"vocab_size": 8000, "num_classes": 1, "cell": cell, "num_layers": layers, "bidirectional": bidirectional}
    keras = RNNClassifier(**sizes, implementation="scratch", hidden_bias=False, reset_after=cell != "gru")
    fused = RNNClassifier(**sizes, implementation="torch")
    assert sum(p.numel() for p in keras.recurrent.parameters()) == keras_count
    assert sum(p.numel() for p in fused.recurrent.parameters()) == torch_count
    assert sum(p.numel() for p in keras.parameters()) == 256_000 + keras_count + keras.recurrent.output_size + 1


@pytest.mark.parametrize("implementation", ["torch", "scratch"])
def test_the_classifier_reads_only_the_words_and_drops_whole_embedding_channels(implementation):
    torch.manual_seed(0)
    net = RNNClassifier(50, 2, cell="gru", bidirectional=True, implementation=implementation,
                        embedding_dropout=0.5).eval()
    review = torch.randint(2, 50, (3, 7))
    padded = torch.cat([review, torch.zeros(3, 13, dtype=torch.long)], dim=1)
    assert torch.allclose(net(review), net(padded), atol=1e-6)  # the padding changes nothing, either direction

    seen = []
    net.recurrent.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    with torch.no_grad():
        net.embedding.weight.fill_(1.0)
    net.train()(padded)
    kept = seen[-1][:, :7] != 0  # (B, T, C): each channel kept or dropped at every step of a review
    assert torch.equal(kept, kept[:, :1].expand_as(kept)) and 0 < kept.float().mean() < 1


def test_the_text_cnn_pools_per_width_or_across_widths_and_starts_as_tflearn_does():
    tokens = torch.randint(1, 100, (2, 12))
    kim, cookbook = (TextCNN(100, 2, max_length=12, num_filters=8, pool=pool, init="tflearn")
                     for pool in ("per_width", "across_widths"))
    assert kim.output.in_features == 24 and cookbook.output.in_features == 8  # 8 filters of 3 widths
    assert kim(tokens).shape == cookbook(tokens).shape == (2, 2)
    embedding = kim.embedding.weight[1:]
    assert embedding.abs().max() <= 0.04 and 0.015 < embedding.std() < 0.02  # N(0, 0.02) cut at two deviations
    assert not kim.embedding.weight[0].any()  # the pad row
    for convolution in kim.convolutions:
        bound = (3 / (convolution.in_channels * convolution.kernel_size[0])) ** 0.5
        assert 0.9 * bound < convolution.weight.abs().max() <= bound and not convolution.bias.any()


@pytest.mark.parametrize("model, overrides", [
    ("lstm", ["model=rnn_classifier", "model.net.cell=lstm"]),
    ("bigru", ["model=rnn_classifier", "model.net.cell=gru", "model.net.bidirectional=true"]),
    ("text_cnn", ["model=text_cnn", "model.net.num_filters=16", "model.net.embed_dim=16"]),
    # The Workshop's GRU as its experiment builds it (Keras' layer, one logit), at a rate tiny data needs.
    ("gru_workshop", ["experiment=gru_imdb_workshop", "data.max_length=24", "data.batch_size=16",
                      "optimizer.lr=0.01"]),
])
def test_sequence_classifiers_learn_the_sentiment_words(imdb_config, tmp_path, model, overrides):
    write_reviews(tmp_path / "data", per_class=48)
    write_reviews(tmp_path / "data", split="test", per_class=16, seed=1)
    cfg = imdb_config(["optimizer.lr=0.01", "data.batch_size=16", "trainer.max_epochs=6", *overrides,
                       "logger=csv"])
    metrics, objects = train(cfg)
    assert metrics["test/acc"] > 0.8  # chance is 0.5
    assert metrics["train/loss"] < 0.6  # from about ln 2

    task, datamodule, _ = restore_task(Path(objects["trainer"].checkpoint_callback.best_model_path), "a test")
    assert datamodule.vocabulary == objects["datamodule"].vocabulary  # the checkpoint carries it
    reviews = datamodule.encode_texts(["A superb, moving story; brilliant acting.", "Dull, awful, boring film."])
    assert task.eval().predict_step((reviews, None), 0).tolist() == [1, 0]


def test_sequence_models_and_other_data_are_refused(imdb_config, run_config, tmp_path):
    cfg = run_config(["model=rnn_classifier"])
    with pytest.raises(DlbookError, match=r"model=rnn_classifier does not fit data=digits \(labelled_images\): it "
                                          r"trains on token_sequences data\. Data choices that fit "
                                          r"model=rnn_classifier: .*imdb"):
        build_datamodule(cfg, {"model": "rnn_classifier", "data": "digits"})
    write_reviews(tmp_path / "data", per_class=4)
    with pytest.raises(DlbookError, match=r"model=mlp does not fit data=imdb \(token_sequences\): it trains on "
                                          r"labelled_images or tabular data"):
        build_datamodule(imdb_config(["model=mlp"]), {"model": "mlp", "data": "imdb"})
    cfg = imdb_config(["model=text_cnn", "data.max_length=4"])
    with pytest.raises(DlbookError, match=r"its widest filter spans 5 tokens \(model.net.widths=\[3, 4, 5\]\); the "
                                          r"data's sequences are 4 long"):
        build_task(cfg, build_datamodule(cfg).spec, {"model": "text_cnn", "data": "imdb"})
