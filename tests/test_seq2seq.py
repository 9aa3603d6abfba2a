"""Sequence to sequence: sentence pairs read from Tatoeba-layout files (and refused in one paragraph when malformed),
generated pairs, batches cut to their longest pair and bucketed by length; attention that ignores padding, recurrent
decoding step by step equal to the teacher-forced pass, beam search equal to greedy decoding at beam 1 and to an
exhaustive search at a wide beam, BLEU of a perfect translation 1; attention that learns reversal beyond the
attention-free net, and scripts/translate.py reproducible from a checkpoint."""

import itertools
import os
import stat

import pytest
import torch

from dlbook.data.batches import LengthBucketedSampler
from dlbook.data.pairs import END, PAD, START, UNKNOWN, SyntheticPairsDataModule, TranslationPairsDataModule, \
    source_tokens, tokenize
from dlbook.errors import DatasetNotFoundError, DlbookError
from dlbook.nets.seq2seq.attention import AdditiveAttention, MultiplicativeAttention
from dlbook.nets.seq2seq.rnn_seq2seq import RNNSeq2Seq
from dlbook.nets.seq2seq.search import beam_search, greedy_decode
from dlbook.nets.transformer.transformer import Transformer
from dlbook.train import train
from tests.datasets import write_parallel_text, write_sentence_pairs

SMALL = dict(source_vocab_size=9, target_vocab_size=7, pad_index=PAD)
IDS = dict(start_index=START, end_index=END, pad_index=PAD)


def pairs_module(tmp_path, **settings) -> TranslationPairsDataModule:
    module = TranslationPairsDataModule(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                                        download=False, **settings)
    module.prepare_data()
    module.setup("fit")
    module.setup("test")
    return module


def test_tokenizer_keeps_words_and_marks_apart():
    assert tokenize("Va-t'en !") == ["va", "-", "t'en", "!"]
    assert tokenize("I don't know, Tom.") == ["i", "don't", "know", ",", "tom", "."]
    assert tokenize("Ça\u202fva ?") == ["ça", "va", "?"]  # French typography's narrow space before "?"


def test_translation_pairs_read_the_tatoeba_layout_and_cache_beside_a_read_only_data_folder(tmp_path):
    written = write_sentence_pairs(tmp_path / "data" / "fra-eng" / "fra.txt", pairs=200)
    data_dir = tmp_path / "data"
    for folder in (data_dir, data_dir / "fra-eng"):
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # a cluster's read-only dataset folder
    try:
        module = pairs_module(tmp_path, test_fraction=0.1)
        spec = module.spec
        assert len(module.data_test) == 20 and len(module.data_train) + len(module.data_val) == 180
        assert spec.source_vocabulary[:4] == ("<pad>", "<sos>", "<eos>", "<unk>")
        assert spec.max_target_length == max(len(tokenize(french)) for _, french in written) + 2
        # The test pairs, in the file's order, come back word for word.
        sources, targets = module.data_test.tensors
        test_english = {" ".join(tokenize(english)) for english, _ in written}
        for source, target in zip(sources, targets):
            assert " ".join(source_tokens(source, spec)) in test_english
            assert target[0] == START and END in target.tolist()
        assert list((tmp_path / "cache").glob("translation_pairs-*.pt"))
        assert sorted(path.name for path in data_dir.rglob("*")) == ["fra-eng", "fra.txt"]
        # The cache gives the same tensors; reverse swaps the columns; max_length and max_pairs keep fewer.
        again = pairs_module(tmp_path, test_fraction=0.1)
        assert torch.equal(again.data_test.tensors[0], sources) and again.spec == spec
        reverse = pairs_module(tmp_path, reverse=True, test_fraction=0.1)
        assert reverse.spec.source_vocabulary == spec.target_vocabulary
        short = pairs_module(tmp_path, max_length=5, max_pairs=50, test_fraction=0.1)
        kept = len(short.data_train) + len(short.data_val) + len(short.data_test)
        assert kept == min(50, sum(max(len(tokenize(e)), len(tokenize(f))) <= 5 for e, f in written)) < 200
        rare = pairs_module(tmp_path, min_count=1000, test_fraction=0.1)
        assert rare.spec.source_vocab_size == 4 and (rare.data_train.tensors[0][:, 0] == UNKNOWN).all()
    finally:
        for folder in (data_dir, data_dir / "fra-eng"):
            folder.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("content, message", [
    (b"Go.\tVa !\nHello there\nHi.\tSalut.\n", r"Line 2 of .*pairs.txt is not a sentence pair: 'Hello there'\. "
                                               r"data=translation_pairs reads one pair a line, source<TAB>target"),
    (b"", r"is empty: there is no text to learn from"),
    (b"Caf\xe9.\tCaf\xe9.\n", r"is not utf-8 text: byte 0xe9 at offset 3 .* data.encoding"),
])
def test_a_malformed_pair_file_is_refused_in_one_paragraph(tmp_path, content, message):
    path = tmp_path / "pairs.txt"
    path.write_bytes(content)
    with pytest.raises(DlbookError, match=message):
        pairs_module(tmp_path, path=str(path))


def test_missing_pairs_offline_name_the_file_and_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"'translation_pairs' is not in .* data.download=false\. "
                                                    r"Missing \(1, under that folder\): fra-eng/fra.txt"):
        pairs_module(tmp_path)


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_generated_pairs_frame_their_task(task):
    module = SyntheticPairsDataModule(task=task, num_pairs=50, test_pairs=10, min_length=3, max_length=6)
    sources, targets = module.load_split("train")
    lengths = (sources != PAD).sum(dim=1)
    assert lengths.min() >= 3 and lengths.max() <= 6 and sources.shape[1] == 6 and targets.shape[1] == 8
    for source, target, length in zip(sources, targets, lengths):
        symbols = source[:length].tolist()
        answer = {"copy": symbols, "reverse": symbols[::-1], "sort": sorted(symbols)}[task]
        assert target[:length + 2].tolist() == [START, *answer, END] and (target[length + 2:] == PAD).all()
    with pytest.raises(DlbookError, match="data.task='rot13' is not one of copy, reverse, sort"):
        SyntheticPairsDataModule(task="rot13")


def test_batches_are_cut_to_their_longest_pair_and_bucketed_by_length():
    module = SyntheticPairsDataModule(num_pairs=2000, test_pairs=10, min_length=1, max_length=20, val_fraction=0)
    module.setup("fit")
    dataset = module.data_train
    sources, targets = dataset.__getitems__([0, 1, 2])
    assert sources.shape[1] == dataset.source_lengths[:3].max() and targets.shape[1] == dataset.target_lengths[:3].max()
    sampler = LengthBucketedSampler(dataset, seed=0, lengths=dataset.source_lengths, batch_size=32)
    order = list(sampler)
    assert sorted(order) == list(range(len(dataset))) and order == list(sampler)  # each pair once; seeded
    sampler.set_epoch(1)
    assert list(sampler) != order

    def spread(indices):  # the mean, over batches, of the longest minus the shortest source
        batches = torch.tensor(indices[:len(indices) // 32 * 32]).view(-1, 32)
        lengths = dataset.source_lengths[batches]
        return (lengths.max(dim=1).values - lengths.min(dim=1).values).float().mean()

    assert spread(order) < 0.25 * spread(torch.randperm(len(dataset)).tolist())
    loader = module.train_dataloader()
    assert isinstance(loader.sampler, LengthBucketedSampler)


@pytest.mark.parametrize("attention", [AdditiveAttention(6, 8, 5), MultiplicativeAttention(6, 8, general=True),
                                       MultiplicativeAttention(8, 8, general=False)])
def test_attention_weighs_only_the_real_source_positions(attention):
    query, keys = torch.randn(2, 3, attention_query_size(attention)), torch.randn(2, 5, 8)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    context, weights = attention(query, keys, mask)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 3))
    assert (weights[0, :, 3:] == 0).all() and (weights[1] > 0).all()
    torch.testing.assert_close(context, weights @ keys)
    changed = keys.clone()
    changed[0, 3:] += 10.0  # what sits at padded positions changes nothing
    torch.testing.assert_close(attention(query, changed, mask)[0][0], context[0])


def attention_query_size(attention) -> int:
    return attention.query_projection.in_features if isinstance(attention, AdditiveAttention) else (
        attention.weight.out_features if attention.weight is not None else 8)


def test_dot_attention_refuses_states_of_another_size():
    with pytest.raises(DlbookError, match="decoder state of 16 numbers against encoder outputs of 32: they must be "
                                          "equal; use model.net.attention=luong_general"):
        RNNSeq2Seq(**SMALL, hidden_size=16, embed_dim=8, bidirectional=True, attention="luong_dot")


def padded_source() -> torch.Tensor:
    source = torch.randint(4, 9, (3, 6), generator=torch.Generator().manual_seed(1))
    source[0, 4:] = PAD
    source[2, 2:] = PAD
    return source


def rnn(**settings) -> RNNSeq2Seq:
    torch.manual_seed(0)
    return RNNSeq2Seq(**SMALL, embed_dim=8, hidden_size=12, **settings).eval()


NETS = {"gru_bahdanau": dict(cell="gru", attention="bahdanau"),
        "lstm_luong_general_bidirectional": dict(cell="lstm", attention="luong_general", bidirectional=True,
                                                 num_layers=2),
        "rnn_luong_dot": dict(cell="rnn", attention="luong_dot"),
        "gru_none_scratch": dict(cell="gru", attention="none", implementation="scratch")}


@pytest.mark.parametrize("name", NETS)
def test_recurrent_decoding_step_by_step_is_the_teacher_forced_pass(name):
    net, source = rnn(**NETS[name]), padded_source()
    target = torch.randint(3, 7, (3, 5))
    expected = net(source, target)
    state = net.start(source)
    for position in range(target.shape[1]):
        logits, state, attention = net.step(target[:, position], state)
        torch.testing.assert_close(logits, expected[:, position])
        if NETS[name]["attention"] != "none":
            torch.testing.assert_close(attention.sum(dim=1), torch.ones(3))
            assert (attention[0, 4:] == 0).all() and (attention[2, 2:] == 0).all()
    # A source's padding changes nothing it is decoded to: the same source with more padding.
    wider = torch.cat([source, torch.zeros(3, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(net(wider, target), expected)


def test_teacher_forcing_below_one_feeds_back_the_nets_own_tokens_in_training():
    net = rnn(cell="gru", attention="bahdanau", teacher_forcing=0.0).train()
    source, target = padded_source(), torch.randint(3, 7, (3, 5))
    free_running = net(source, target)
    changed = target.clone()
    changed[:, 1:] = (target[:, 1:] - 3 + 1) % 4 + 3  # only the first input is read without teacher forcing
    torch.testing.assert_close(net(source, changed), free_running)
    net.teacher_forcing = 1.0
    assert not torch.allclose(net(source, changed), net(source, target))


def tiny_transformer() -> Transformer:
    torch.manual_seed(0)
    return Transformer(**SMALL, max_source_length=6, max_target_length=8, num_layers=1, d_model=16, heads=2,
                       d_ff=32, dropout=0.0).eval()


@pytest.mark.parametrize("make", [lambda: rnn(**NETS["gru_bahdanau"]), tiny_transformer], ids=["rnn", "transformer"])
def test_beam_search_of_width_one_is_greedy_decoding(make):
    net, source = make(), padded_source()
    tokens, scores, attention = greedy_decode(net, source, max_length=7, **IDS)
    beam_tokens, beam_scores, beam_attention = beam_search(net, source, max_length=7, beam_size=1, **IDS)
    width = min(tokens.shape[1], beam_tokens.shape[1])
    assert torch.equal(beam_tokens[:, :width], tokens[:, :width]) and (beam_tokens[:, width:] == PAD).all()
    torch.testing.assert_close(beam_scores, scores)
    torch.testing.assert_close(beam_attention[:, :width], attention[:, :width])


def sequence_log_probability(net, source: torch.Tensor, tokens: list[int]) -> float:
    """log p(tokens | source) from the teacher-forced pass."""
    inputs = torch.tensor([[START, *tokens[:-1]]])
    log_probs = net(source[None], inputs).log_softmax(dim=-1)[0]
    return sum(log_probs[i, token].item() for i, token in enumerate(tokens))


@pytest.mark.parametrize("make", [lambda: rnn(**NETS["lstm_luong_general_bidirectional"]), tiny_transformer],
                         ids=["rnn", "transformer"])
def test_a_beam_as_wide_as_every_target_finds_the_likeliest_one(make):
    net, source, length = make(), padded_source()[0], 3
    # Every target of up to `length` tokens: those ending at their first <eos>, and those cut at the length.
    candidates = [list(tokens) for n in range(1, length + 1) for tokens in itertools.product(range(7), repeat=n)
                  if (tokens[-1] == END or n == length) and END not in tokens[:-1]]
    best = max(candidates, key=lambda tokens: sequence_log_probability(net, source, tokens))
    tokens, score, _ = beam_search(net, source[None], max_length=length, beam_size=7 ** length, **IDS)
    found = [t for t in tokens[0].tolist() if t != PAD] if END in tokens[0] else tokens[0].tolist()
    assert found == best
    assert score.item() == pytest.approx(sequence_log_probability(net, source, best), abs=1e-4)


def test_bleu_of_a_perfect_translation_is_one(run_config, tmp_path):
    from dlbook.assembly import build_datamodule, build_task

    cfg = run_config(["model=seq2seq", "data=sequence_pairs", "data.num_pairs=40", "data.test_pairs=40"])
    datamodule = build_datamodule(cfg)
    task = build_task(cfg, datamodule.spec, {})
    datamodule.setup("test")
    source, target = datamodule.data_test.__getitems__(list(range(40)))
    truth = target[:, 1:]
    task.decode = lambda source: (truth, None, None)  # a perfect translator
    task.score_decoding(source, truth, "test")
    assert task.bleu["test"].compute().item() == pytest.approx(1.0)
    wrong = truth.clone()
    wrong[:, 0] = torch.where(truth[:, 0] == 4, 5, 4)  # every first word wrong
    task.bleu["test"].reset()
    task.decode = lambda source: (wrong, None, None)
    task.score_decoding(source, truth, "test")
    assert 0.0 < task.bleu["test"].compute().item() < 0.9


REVERSAL = ["data=sequence_pairs", "data.task=reverse", "data.num_pairs=1000", "data.test_pairs=100",
            "data.max_length=6", "data.symbols=6", "data.batch_size=32", "trainer.max_epochs=4",
            "model.net.embed_dim=16", "model.net.hidden_size=32", "optimizer.lr=1e-2"]


def test_attention_learns_reversal_beyond_the_attention_free_net(run_config):
    with_attention, _ = train(run_config(["model=seq2seq", *REVERSAL], run_name="attention"))
    without, _ = train(run_config(["model=seq2seq", "model.net.attention=none", *REVERSAL], run_name="none"))
    assert with_attention["test/sequence_acc"] > 0.8  # of sequences of 3 to 6 symbols, written exactly
    assert with_attention["test/sequence_acc"] > without["test/sequence_acc"] + 0.2
    assert with_attention["test/bleu"] > without["test/bleu"]


def test_translate_script_reads_new_text_with_the_checkpoints_vocabulary(run_config, tmp_path):
    from dlbook.utils.config import compose_run
    from scripts.translate import translate

    write_sentence_pairs(tmp_path / "data" / "fra-eng" / "fra.txt", pairs=400)
    train(run_config(["model=seq2seq", "data=translation_pairs", "data.download=false", "data.batch_size=16",
                      "trainer.max_epochs=6", "model.net.embed_dim=32", "model.net.hidden_size=64",
                      "optimizer.lr=1e-2"]))
    os.environ.pop("DLBOOK_DATA_DIR", None)

    def translated(*overrides, name):
        return translate(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}",
                                      f"paths.data_dir={tmp_path / 'elsewhere'}", *overrides],
                                     tmp_path / name, "translate"))

    greedy = translated("text=[She likes the red car.,We see the dog.]", name="a")
    assert greedy == ["elle aime la voiture rouge .", "nous voyons le chien ."]
    assert translated("text=[She likes the red car.,We see the dog.]", "beam_size=4", name="b") == greedy
    assert (tmp_path / "a" / "translations.txt").read_text(encoding="utf-8").splitlines()[1] == (
        "We see the dog.\tnous voyons le chien .")
    figure = tmp_path / "a" / "translations_attention.png"
    drawn = figure.read_bytes()
    translated("text=[We see the dog.]", f"output={tmp_path / 'a' / 'dog.txt'}", name="a")
    assert figure.read_bytes() == drawn and (tmp_path / "a" / "dog_attention.png").is_file()  # each keeps its own
    assert translated("text=[She likes the zebra.]", name="c")[0].startswith("elle aime")  # <unk>: still decoded
    with pytest.raises(DlbookError, match="holds no token"):
        translated("text=[' ']", name="d")


def test_parallel_text_reads_line_aligned_files_with_their_own_validation_and_test_sets(tmp_path):
    from dlbook.data.pairs import ParallelTextDataModule

    splits = write_parallel_text(tmp_path / "data" / "nmt")

    def module(**settings):
        data = ParallelTextDataModule(data_dir=str(tmp_path / "data"), folder="nmt", source="en", target="fr",
                                      cache_dir=str(tmp_path / "cache"), download=False, **settings)
        data.prepare_data()
        data.setup("fit")
        data.setup("test")
        return data

    data = module(max_length=5)
    spec = data.spec
    assert len(data.data_val) == 40 and len(data.data_test) == 40  # their own files, kept whole
    assert len(data.data_train) == sum(max(len(e.split()), len(f.split())) <= 5 for e, f in splits["train"]) < 300
    first_test = data.data_test.tensors
    assert " ".join(source_tokens(first_test[0][0], spec)) == splits["tst2013"][0][0]  # case kept, as nmt scores
    vocabulary = (tmp_path / "data" / "nmt" / "vocab.fr").read_text().split()[3:]
    assert spec.target_vocabulary == ("<pad>", "<sos>", "<eos>", "<unk>", *vocabulary)  # nmt's vocab file
    assert module(vocabulary_files=False, min_count=1000).spec.target_vocab_size == 4
    (tmp_path / "data" / "nmt" / "tst2012.fr").write_text("one line\n")
    with pytest.raises(DlbookError, match=r"tst2012.en has 40 lines and .*tst2012.fr 1: data=parallel_text reads "
                                          r"line-aligned files"):
        module(lowercase=True)
    (tmp_path / "data" / "nmt" / "tst2013.fr").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"Missing \(1, under that folder\): nmt/tst2013.fr"):
        module()


@pytest.mark.parametrize("setting, message", [
    ("model.label_smoothing=2", "model.label_smoothing=2 must be a finite number from 0 to 1."),  # failed a step in
    ("model.max_decode_length=0", "model.max_decode_length=0 must be a positive integer"),  # decoded the longest
    ("model.beam_size=abc", "model.beam_size=abc must be a positive integer (1: greedy)."),  # a TypeError
])
def test_decoding_and_loss_settings_are_checked_before_training(run_config, setting, message):
    with pytest.raises(DlbookError) as refused:
        train(run_config(["model=seq2seq", "data=sequence_pairs", "trainer.max_epochs=1", setting]))
    assert message in str(refused.value)
