"""Language models on text files of the real formats: the character corpus and Penn Treebank's word files, their
windows and carried state, char_rnn and word_lm learning (perplexity under a unigram model's), generated text from
a checkpoint reproducible with a seed, and the errors a bad text file gets."""

import math
import os
import re
from collections import Counter

import pytest
import torch
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from dlbook.data.batches import EpochSeededSampler
from dlbook.data.text import CharTextDataModule, PTBDataModule, StreamWindows, decode, encode
from dlbook.errors import DlbookError
from dlbook.nets.sequence.language_model import RNNLanguageModel
from dlbook.eval import evaluate
from dlbook.train import train
from tests.datasets import SHARED_DATA, write_corpus, write_ptb

SHARED_PTB = SHARED_DATA / "PTB"
def unigram_perplexity(train_tokens, test_tokens) -> float:
    """The perplexity of the training tokens' frequencies on the test tokens: what a model of no context scores."""
    counts = Counter(train_tokens)
    total = sum(counts.values())
    return math.exp(-sum(math.log(counts[token] / total) for token in test_tokens) / len(test_tokens))


CHAR_RNN = ["model=char_rnn", "data=text_chars", "model.net.hidden_size=64", "model.net.num_layers=1",
            "model.net.dropout=0", "data.seq_length=50", "data.batch_size=16", "data.eval_batch_size=8",
            "optimizer.lr=0.01", "trainer.max_epochs=3", "callbacks.text_samples.length=120"]


def test_stream_windows_are_consecutive_text_with_next_token_targets():
    windows = StreamWindows(torch.arange(105), streams=4, length=5)
    assert len(windows) == 5  # each stream holds 26 tokens (one left over): 5 windows of 5, a target after each
    first, targets = windows.__getitems__([0])
    second, _ = windows.__getitems__([1])
    assert first[:, 0].tolist() == [0, 26, 52, 78]
    assert torch.equal(targets[:, :-1], first[:, 1:]) and torch.equal(targets[:, -1], second[:, 0])
    assert torch.equal(second[:, 0], first[:, -1] + 1)  # each stream reads on where its last window ended


def test_an_ordered_sampler_resumes_where_it_stopped():
    sampler = EpochSeededSampler(range(6), seed=0, shuffle=False)
    iterator = iter(sampler)
    assert [next(iterator) for _ in range(4)] == [0, 1, 2, 3]
    resumed = EpochSeededSampler(range(6), seed=0, shuffle=False)
    resumed.load_state_dict(sampler.state_dict())
    assert list(resumed) == [4, 5]


def test_char_rnn_learns_a_text_file_and_writes_samples(run_config, tmp_path):
    text = write_corpus(tmp_path / "data" / "tinyshakespeare" / "input.txt")
    metrics, objects = train(run_config(CHAR_RNN))
    datamodule, task = objects["datamodule"], objects["model"]
    vocabulary = datamodule.vocabulary
    assert "".join(vocabulary) == "".join(sorted(set(text)))
    test_start = len(text) - round(len(text) * 0.05)
    baseline = unigram_perplexity(text[:test_start], text[test_start:])
    assert metrics["test/perplexity"] < 0.5 * baseline  # context halves the unigram perplexity (about 13 here)
    assert metrics["train/loss"] < math.log(len(vocabulary))  # under the uniform guess it starts near
    assert metrics["val/bits_per_token"] == pytest.approx(metrics["val/loss"] / math.log(2), rel=1e-5)
    samples = tmp_path / "run" / "samples"
    assert sorted(path.name for path in samples.iterdir()) == ["epoch_001.txt", "epoch_002.txt", "epoch_003.txt",
                                                                "final.txt"]
    final = (samples / "final.txt").read_text()
    assert set(final) <= set(vocabulary) | {"\n"} and len(final) == 121 + 1  # start token, 120 drawn, newline
    assert re.search(r"\b(the|a|cat|dog|sat|ran)\b", final)  # it has learnt words of the text
    # The vocabulary is in the checkpoint: the model is rebuilt without the text.
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)
    assert tuple(checkpoint["CharTextDataModule"]["vocabulary"]) == vocabulary
    assert task.data_spec.vocabulary == vocabulary


def test_generation_from_a_checkpoint_is_reproducible_with_a_seed(run_config, tmp_path):
    from dlbook.utils.config import compose_run
    from scripts.generate import generate

    write_corpus(tmp_path / "data" / "tinyshakespeare" / "input.txt")
    train(run_config([*CHAR_RNN, "trainer.max_epochs=1", "callbacks.text_samples=null"]))

    def generated(*overrides, name):
        return generate(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}",
                                     "prompt=the", "length=60", *overrides], tmp_path / name, "generate"))

    first, again = generated("seed=1", name="a"), generated("seed=1", name="b")
    assert first == again and first.startswith("the") and len(first) == 63
    assert generated("seed=2", name="c") != first
    assert (tmp_path / "a" / "generated.txt").read_text() == first + "\n"
    greedy = generated("temperature=0", "seed=5", name="d")
    assert greedy == generated("temperature=0", "seed=6", name="e")  # no draw: the seed does not matter
    assert len(set(generated("top_k=1", "seed=7", name="f"))) <= len(set(greedy)) + 1  # top-1 is greedy too
    with pytest.raises(DlbookError, match="never saw"):
        generated("prompt=XYZ", name="g")


def test_the_carried_state_continues_the_previous_window(run_config, tmp_path):
    from dlbook.assembly import build_datamodule, build_task

    write_corpus(tmp_path / "data" / "tinyshakespeare" / "input.txt")
    cfg = run_config(CHAR_RNN)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    task = build_task(cfg, datamodule.spec, {"model": "char_rnn", "data": "text_chars"})
    task.eval()
    loader = iter(datamodule.train_dataloader())
    first, second = next(loader), next(loader)
    task.loss_step(first, "train")
    carried = task.loss_step(second, "train")
    logits, _ = task(torch.cat([first[0], second[0]], dim=1))
    whole = torch.nn.functional.cross_entropy(logits[:, first[0].shape[1]:].flatten(0, 1), second[1].flatten())
    torch.testing.assert_close(carried, whole)


def test_word_lm_learns_ptb_files_and_caches_their_ids(run_config, tmp_path, monkeypatch):
    words = write_ptb(tmp_path / "data" / "PTB")
    os.chmod(tmp_path / "data" / "PTB", 0o555)  # a read-only dataset folder: the cache lives elsewhere
    try:
        metrics, objects = train(run_config(["model=word_lm", "data=ptb", "model.net.hidden_size=32",
                                             "model.net.embed_dim=32", "model.net.num_layers=1",
                                             "model.net.tie_weights=true", "data.seq_length=10", "data.batch_size=8",
                                             "optimizer.lr=0.01", "trainer.max_epochs=2",
                                             "callbacks.text_samples.length=20"]))
        assert metrics["test/perplexity"] < 0.5 * unigram_perplexity(words["train"], words["test"])
        spec = objects["model"].data_spec
        assert spec.vocabulary[0] in ("<eos>", "a", "the") and len(spec.vocabulary) == len(set(words["train"]))
        net = objects["model"].net
        assert net.decoder.weight is net.embedding.weight  # tied
        assert len(list((tmp_path / "cache").glob("ptb-*.pt"))) == 1
        # The second run reads the cached ids, not the text.
        monkeypatch.setattr("dlbook.data.text.read_text", lambda *args: pytest.fail("read the text again"))
        datamodule = PTBDataModule(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), seq_length=10,
                                   batch_size=8, val_fraction=0.0)
        datamodule.setup("fit")
        assert decode(datamodule.spec, datamodule.data_train.rows[0, :6].tolist()).split()[0] in words["train"]
        assert encode(datamodule.spec, "the zebra").tolist()[1] == spec.vocabulary.index("<unk>")
    finally:
        os.chmod(tmp_path / "data" / "PTB", 0o755)


@pytest.mark.skipif(not SHARED_PTB.is_dir(), reason="no real Penn Treebank copy beside the checkout")
def test_the_real_penn_treebank_has_its_published_sizes(tmp_path):
    datamodule = PTBDataModule(data_dir=str(SHARED_PTB.parent), cache_dir=str(tmp_path), seq_length=35,
                               batch_size=20, eval_batch_size=10, val_fraction=0.0)
    datamodule.setup("fit")
    assert datamodule.spec.vocab_size == 10000
    # Zaremba et al.'s counts, <eos> included: 929,589 / 73,760 / 82,430 tokens.
    assert datamodule.data_train.rows.numel() == 929589 // 20 * 20
    assert datamodule.data_val.rows.numel() == 73760 // 10 * 10
    assert datamodule.data_test.rows.numel() == 82430 // 10 * 10


@pytest.mark.parametrize("content, words", [
    (b"caf\xe9 au lait\n" * 50, ["is not utf-8 text", "byte 0xe9", "data.encoding"]),
    (b"   \n\n", ["is empty"]),
    (b"short", ["too few for one window", "data.seq_length=50"]),
])
def test_a_bad_text_file_gets_one_paragraph(run_config, tmp_path, content, words):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(DlbookError) as error:
        train(run_config([*CHAR_RNN, f"data.path={path}"]))
    for word in words:
        assert word in str(error.value)


def test_a_missing_text_file_is_named(run_config, tmp_path):
    with pytest.raises(DlbookError, match="does not exist"):
        train(run_config([*CHAR_RNN, f"data.path={tmp_path / 'nowhere.txt'}"]))
    missing = CharTextDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DlbookError, match="data.download=false") as error:
        missing.prepare_data()
    assert "Missing (1, under that folder): tinyshakespeare/input.txt" in str(error.value)


def test_a_run_stopped_mid_epoch_resumes_with_the_carried_state(run_config, tmp_path):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    write_corpus(tmp_path / "data" / "tinyshakespeare" / "input.txt")
    setup = [*CHAR_RNN, "trainer.max_epochs=2", "model.net.dropout=0.2", "trainer.deterministic=true",
             "callbacks.text_samples=null"]
    uninterrupted, objects = train(run_config(setup, run_name="whole"))
    steps_per_epoch = objects["trainer"].num_training_batches
    stop_at = steps_per_epoch + steps_per_epoch // 2
    with pytest.raises(SIGTERMException):
        train(run_config([*setup, "+callbacks.signal._target_=tests.callbacks.SignalAtStep",
                          f"+callbacks.signal.step={stop_at}"], run_name="interrupted"))
    last = torch.load(tmp_path / "interrupted" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "dlbook_carried_state" in last  # the state the next window starts from
    resumed, objects = train(run_config([*setup, "ckpt_path=last"], run_name="interrupted"))
    assert objects["trainer"].global_step == 2 * steps_per_epoch
    for name in ("train/loss", "val/loss", "test/loss", "test/perplexity"):
        assert resumed[name] == pytest.approx(uninterrupted[name], abs=1e-5), name


def test_several_processes_are_refused_before_they_start(run_config, tmp_path, monkeypatch):
    # Lightning would deal the windows out to the processes, out of order; the refusal came once they had started
    def launch(*args, **kwargs):
        raise AssertionError("the DDP processes were started")

    monkeypatch.setattr(_SubprocessScriptLauncher, "launch", launch)
    write_corpus(tmp_path / "data" / "tinyshakespeare" / "input.txt")
    with pytest.raises(DlbookError, match=r"data=text_chars reads each stream's windows in order .*: run it in "
                                          r"one process \(trainer.devices=1 and trainer.num_nodes=1\), not 2."):
        train(run_config(["model=char_rnn", "data=text_chars", "data.seq_length=20", "data.batch_size=8",
                          "data.eval_batch_size=8", "trainer=ddp_cpu"]))
    # eval.py, too: each process would score a share of the test windows, out of order
    train(run_config(["model=char_rnn", "data=text_chars", "data.seq_length=20", "data.batch_size=8",
                      "data.eval_batch_size=8", "model.net.hidden_size=16", "model.net.num_layers=1",
                      "callbacks.text_samples.length=5", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
                      "+trainer.limit_val_batches=1", "test=false"]))
    with pytest.raises(DlbookError, match=r"data=text_chars reads each stream's windows in order .*, not 2."):
        evaluate(run_config([f"ckpt_path={tmp_path / 'run'}", "trainer=ddp_cpu"], config_name="eval",
                            run_name="eval"))


def test_a_byte_order_mark_is_not_read_as_a_token(tmp_path):
    from dlbook.data.text import read_text

    path = tmp_path / "ptb.train.txt"
    path.write_bytes("\ufeffthe cat sat\n".encode("utf-8"))  # as Notepad saves UTF-8
    assert read_text(path, "utf-8", "data.path") == "the cat sat\n"


def test_init_range_draws_every_parameter_uniformly_within_it():
    net = RNNLanguageModel(vocab_size=50, hidden_size=16, embed_dim=16, num_layers=2, init_range=0.1)
    for name, parameter in net.named_parameters():
        assert parameter.abs().max() <= 0.1 and parameter.abs().max() > 0.09, name  # torch's embedding: N(0, 1)
    with pytest.raises(DlbookError, match="model.net.init_range=0 must be a finite number above 0"):
        RNNLanguageModel(vocab_size=50, init_range=0)


def test_zarembas_setting_keeps_its_rate_four_epochs_then_halves_it_every_epoch(run_config, tmp_path):
    write_ptb(tmp_path / "data" / "PTB")
    _, objects = train(run_config(["experiment=word_lm_ptb_zaremba_small", "model.net.hidden_size=16",
                                   "model.net.embed_dim=16", "trainer.max_epochs=6", "logger=none",
                                   "~callbacks.text_samples", "+trainer.limit_train_batches=2",
                                   "+trainer.limit_val_batches=1", "test=false"]))
    optimizer = objects["trainer"].optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["initial_lr"] == 20
    assert optimizer.param_groups[0]["lr"] == 20 * 0.5 ** 3  # a seventh epoch's: halved after the 4th, 5th, 6th
