"""Transformers: the fused attention path equals the hand-written one, the padding and look-ahead masks hide what
they must, step-by-step decoding is the teacher-forced pass, pre- and post-norm both train, Pro DL's transformer
has the book's parameter count, and the encoder-decoder, the encoder classifier and the GPT learn through train.py
(the copy task, reviews, text), the GPT's checkpoint generating text with scripts/generate.py."""

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dlbook.errors import DlbookError
from dlbook.nets.transformer.attention import MultiHeadAttention, causal_mask, padding_mask, \
    scaled_dot_product_attention
from dlbook.nets.transformer.encoder_classifier import TransformerClassifier
from dlbook.nets.transformer.gpt import GPT
from dlbook.nets.transformer.transformer import Transformer
from dlbook.train import train
from dlbook.utils.config import config_dir
from tests.datasets import write_corpus, write_reviews

PAD = 0
TINY = dict(num_layers=2, d_model=16, heads=2, d_ff=32, dropout=0.0)


def tiny_transformer(**settings) -> Transformer:
    torch.manual_seed(0)
    return Transformer(source_vocab_size=11, target_vocab_size=13, pad_index=PAD, max_source_length=9,
                       max_target_length=8, **{**TINY, **settings}).eval()


def padded_source() -> torch.Tensor:
    """Two sources of 9 positions, the first with 4 pads at its end."""
    source = torch.randint(3, 11, (2, 9), generator=torch.Generator().manual_seed(1))
    source[0, 5:] = PAD
    return source


def test_hand_written_attention_is_softmax_of_scaled_scores():
    q, k, v = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 6, 4), torch.randn(3, 2, 6, 4)
    mask = torch.rand(3, 1, 5, 6) > 0.3
    mask[..., 0] = True  # every query attends to some key
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(output, torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(3, 2, 5))
    assert (weights[~mask.expand_as(weights)] == 0).all()


@pytest.mark.parametrize("masking", ["none", "padding", "causal", "padding_and_causal"])
def test_fused_attention_equals_the_hand_written_one_on_the_same_weights(masking):
    torch.manual_seed(0)
    fused = MultiHeadAttention(16, 4, dropout=0.3, implementation="sdpa").eval()
    manual = MultiHeadAttention(16, 4, dropout=0.3, implementation="manual").eval()
    manual.load_state_dict(fused.state_dict())
    x = torch.randn(2, 7, 16)
    tokens = torch.tensor([[5, 6, 7, 8, 9, 0, 0], [5, 6, 7, 8, 9, 4, 3]])
    mask = padding_mask(tokens, PAD) if "padding" in masking else None
    causal = "causal" in masking
    expected, weights = manual(x, x, x, mask, causal)
    torch.testing.assert_close(fused(x, x, x, mask, causal)[0], expected)
    if causal:
        assert (weights[..., causal_mask(7).logical_not()] == 0).all()
    # The same through whole nets: the encoder-decoder's logits and its step-by-step attention.
    nets = [tiny_transformer(implementation=implementation) for implementation in ("sdpa", "manual")]
    source, target = padded_source(), torch.randint(3, 13, (2, 6))
    torch.testing.assert_close(nets[0](source, target), nets[1](source, target))


def test_padded_source_tokens_change_nothing_the_real_ones_read():
    net, source, target = tiny_transformer(), padded_source(), torch.randint(3, 13, (2, 6))
    memory, _ = net.encode(source)
    logits = net(source, target)
    with torch.no_grad():
        net.source_embedding.tokens.weight[PAD] += torch.randn(16)  # what every padded position reads
    changed_memory, _ = net.encode(source)
    torch.testing.assert_close(changed_memory[0, :5], memory[0, :5])  # the first source's real tokens
    torch.testing.assert_close(changed_memory[1], memory[1])  # a source without padding
    torch.testing.assert_close(net(source, target), logits)
    with torch.no_grad():
        net.source_embedding.tokens.weight[source[0, 0]] += torch.randn(16)  # a real token does change them
    assert not torch.allclose(net(source, target)[0], logits[0], atol=1e-3)


def test_a_reviews_padding_does_not_change_its_class_scores():
    for pooling in ("mean", "cls"):
        torch.manual_seed(0)
        net = TransformerClassifier(vocab_size=20, num_classes=2, pad_index=PAD, max_length=9, pooling=pooling,
                                    **TINY).eval()
        tokens = padded_source()
        logits = net(tokens)
        with torch.no_grad():
            net.embedding.tokens.weight[PAD] += torch.randn(16)
        torch.testing.assert_close(net(tokens), logits)
        assert net(tokens[:1, :5]).allclose(logits[:1], atol=1e-5)  # the same review unpadded


@pytest.mark.parametrize("implementation", ["sdpa", "manual"])
def test_a_later_token_changes_no_earlier_output(implementation):
    net, source = tiny_transformer(implementation=implementation), padded_source()
    target = torch.randint(3, 13, (2, 6))
    changed = target.clone()
    changed[:, 3] = (target[:, 3] + 1 - 3) % 10 + 3
    before, after = net(source, target), net(source, changed)
    torch.testing.assert_close(after[:, :3], before[:, :3])
    assert not torch.allclose(after[:, 3:], before[:, 3:], atol=1e-3)

    torch.manual_seed(0)
    gpt = GPT(vocab_size=13, block_size=8, implementation=implementation, **TINY).eval()
    before, after = gpt(target)[0], gpt(changed)[0]
    torch.testing.assert_close(after[:, :3], before[:, :3])
    assert not torch.allclose(after[:, 3:], before[:, 3:], atol=1e-3)


def test_step_by_step_decoding_is_the_teacher_forced_pass():
    net, source = tiny_transformer(), padded_source()
    target = torch.randint(3, 13, (2, 6))
    expected = net(source, target)
    state = net.start(source)
    assert all(tensor.shape[0] == 2 for tensor in state.values())  # batch-first, for beam search's index_select
    for position in range(target.shape[1]):
        logits, state, attention = net.step(target[:, position], state)
        torch.testing.assert_close(logits, expected[:, position])
        assert attention.shape == (2, 9)
        torch.testing.assert_close(attention.sum(dim=1), torch.ones(2))
        assert (attention[0, 5:] == 0).all()  # no attention on the padding
    reordered = {name: tensor.index_select(0, torch.tensor([1, 1, 0])) for name, tensor in state.items()}
    logits, _, _ = net.step(torch.tensor([4, 4, 5]), reordered)
    assert logits.shape == (3, 13)
    torch.testing.assert_close(logits[0], logits[1])  # one source's state twice: one step's logits twice


def test_the_gpts_carried_context_continues_the_text():
    torch.manual_seed(0)
    gpt = GPT(vocab_size=13, block_size=8, **TINY).eval()
    tokens = torch.randint(0, 13, (2, 8))
    whole, _ = gpt(tokens)
    first, state = gpt(tokens[:, :5])
    rest, state = gpt(tokens[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole)
    assert torch.equal(state, tokens[:, 1:])  # a full block: the oldest token makes room for the next
    with pytest.raises(DlbookError, match="block_size=8"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(DlbookError, match=r"model.net.block_size=abc must be a positive integer \(tokens\)"):
        GPT(vocab_size=13, block_size="abc", **TINY)  # was a TypeError comparing it


@pytest.mark.parametrize("norm_first", [True, False])
def test_pre_and_post_norm_both_learn_to_copy(norm_first):
    net = tiny_transformer(norm_first=norm_first, num_layers=1, d_model=32, d_ff=64).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(80):
        source = torch.randint(3, 11, (32, 6), generator=generator)
        target = torch.cat([torch.ones(32, 1, dtype=torch.long), source, torch.full((32, 1), 2)], dim=1)
        logits = net(source, target[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert math.exp(sum(losses[-5:]) / 5) < 2.0  # the uniform guess over the 8 source tokens is 8


def test_pro_dl_transformer_has_the_books_parameter_count():
    """Pro DL ch. 4's untrained Keras transformer: N=3, d_model 512, 8 heads, FFN 2048, vocabularies 1000 -> 1200,
    post-norm. Keras counts the embeddings, the Dense layers' weights and biases and the LayerNorms' gains and
    offsets; the sinusoidal encodings are constants."""
    experiment = OmegaConf.load(Path(config_dir()) / "experiment" / "transformer_pro_dl.yaml")
    settings = {key: value for key, value in experiment.model.net.items() if not key.startswith("_")}
    net = Transformer(source_vocab_size=1000, target_vocab_size=1200, pad_index=PAD, max_source_length=30,
                      max_target_length=45, **settings)

    def count(*modules):
        return sum(parameter.numel() for module in modules for parameter in module.parameters())

    assert count(net.source_embedding, net.encoder) == 9_969_152  # the book's summary, layer by layer
    assert count(net.target_embedding, net.decoder) == 13_226_496
    assert count(net.output) == 615_600
    assert count(net) == experiment.book_result.value == 23_811_248
    assert net(torch.zeros(2, 30, dtype=torch.long), torch.zeros(2, 45, dtype=torch.long)).shape == (2, 45, 1200)


def test_bad_settings_are_refused_by_name():
    with pytest.raises(DlbookError, match="d_model=30 must split evenly into model.net.heads=4"):
        tiny_transformer(d_model=30, heads=4)
    with pytest.raises(DlbookError, match="implementation='flash' is not one of sdpa, manual"):
        tiny_transformer(implementation="flash")
    with pytest.raises(DlbookError, match="activation='tanh' is not one of relu, gelu"):
        tiny_transformer(activation="tanh")
    with pytest.raises(DlbookError, match="pooling='max' is not one of mean, cls"):
        TransformerClassifier(vocab_size=20, num_classes=2, pooling="max")
    with pytest.raises(DlbookError, match="longer than the 9 positions"):
        tiny_transformer()(torch.ones(1, 10, dtype=torch.long), torch.ones(1, 3, dtype=torch.long))


def test_the_cls_classifier_tells_reviews_apart(run_config, tmp_path):
    write_reviews(tmp_path / "data", per_class=48)
    metrics, _ = train(run_config(["model=transformer_classifier", "data=imdb", "data.download=false",
                                   "model.net.pooling=cls", "model.net.num_layers=1", "model.net.d_model=32",
                                   "model.net.heads=2", "model.net.d_ff=64", "model.net.dropout=0",
                                   "data.batch_size=8", "data.max_length=24", "optimizer.lr=3e-3",
                                   "trainer.max_epochs=3"]))
    assert metrics["test/acc"] > 0.75  # chance is 0.5


def test_gpt_checkpoint_generates_text_beyond_its_block(run_config, tmp_path):
    from dlbook.utils.config import compose_run
    from scripts.generate import generate

    text = write_corpus(tmp_path / "data" / "tinyshakespeare" / "input.txt")
    train(run_config(["model=gpt", "data=text_chars", "model.net.num_layers=1", "model.net.d_model=32",
                      "model.net.heads=2", "model.net.dropout=0", "data.seq_length=16", "data.batch_size=8",
                      "optimizer.lr=3e-3", "trainer.max_epochs=1", "callbacks.text_samples=null"]))

    def generated(*overrides, name):
        return generate(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}",
                                     "prompt=the", "length=40", *overrides], tmp_path / name, "generate"))

    first = generated("seed=1", name="a")
    assert first == generated("seed=1", name="b") and first.startswith("the") and len(first) == 43
    assert set(first) <= set(text)
