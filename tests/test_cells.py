"""The hand-written recurrent cells against torch's fused layers with the same weights, their extra options
against the equations, and the parameter counts of the DL Workshop's tables."""

import pytest
import torch

from dlbook.errors import DlbookError
from dlbook.nets.sequence.recurrent import RecurrentLayer, reverse_within_lengths


def scratch_copy(torch_layer: RecurrentLayer) -> RecurrentLayer:
    """A scratch layer holding the torch layer's weights (torch names them weight_ih_l<k>[_reverse], ...)."""
    fused = torch_layer.layer
    scratch = RecurrentLayer(torch_layer.cell, fused.input_size, fused.hidden_size, fused.num_layers,
                             fused.bidirectional, implementation="scratch")
    with torch.no_grad():
        for layer in range(fused.num_layers):
            for direction, suffix in enumerate(["", "_reverse"][:scratch.num_directions]):
                cell = scratch.cells[layer * scratch.num_directions + direction]
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(fused, f"{name}_l{layer}{suffix}"))
    return scratch


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_scratch_cells_match_torch(cell, bidirectional, with_lengths):
    torch.manual_seed(0)
    fused = RecurrentLayer(cell, 3, 5, num_layers=2, bidirectional=bidirectional).double()
    scratch = scratch_copy(fused).double()
    inputs = torch.randn(4, 7, 3, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1]) if with_lengths else None
    outputs, state = fused(inputs, lengths=lengths)
    scratch_outputs, scratch_state = scratch(inputs, lengths=lengths)
    torch.testing.assert_close(scratch_outputs, outputs)
    for mine, theirs in zip(as_tuple(scratch_state), as_tuple(state)):
        torch.testing.assert_close(mine, theirs)
    torch.testing.assert_close(scratch.last_hidden(scratch_state), fused.last_hidden(state))
    # The gradients, through every step, agree too.
    (grad_fused,) = torch.autograd.grad(outputs.square().sum(), inputs)
    (grad_scratch,) = torch.autograd.grad(scratch_outputs.square().sum(), inputs)
    torch.testing.assert_close(grad_scratch, grad_fused)


def test_a_given_state_is_carried_on():
    torch.manual_seed(0)
    fused = RecurrentLayer("lstm", 2, 4).double()
    scratch = scratch_copy(fused).double()
    inputs = torch.randn(3, 6, 2, dtype=torch.double)
    _, state = fused(inputs[:, :4])
    whole, _ = fused(inputs)
    continued, _ = scratch(inputs[:, 4:], state)
    torch.testing.assert_close(continued, whole[:, 4:])


def test_lengths_leave_padding_out_of_the_state():
    torch.manual_seed(0)
    layer = RecurrentLayer("gru", 2, 4, bidirectional=True, implementation="scratch")
    sequence = torch.randn(1, 3, 2)
    padded = torch.cat([sequence, torch.randn(1, 4, 2)], dim=1)
    alone_outputs, alone_state = layer(sequence)
    outputs, state = layer(padded, lengths=torch.tensor([3]))
    torch.testing.assert_close(state, alone_state)
    torch.testing.assert_close(outputs[:, :3], alone_outputs)
    assert outputs[:, 3:].abs().sum() == 0


def test_reverse_within_lengths():
    sequences = torch.arange(8).view(2, 4, 1)
    reversed_ = reverse_within_lengths(sequences, torch.tensor([4, 2]))
    assert reversed_[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


def test_peephole_lstm_follows_its_equations():
    torch.manual_seed(0)
    layer = RecurrentLayer("lstm", 2, 3, implementation="scratch", peephole=True).double()
    cell = layer.cells[0]
    with torch.no_grad():
        cell.weight_peephole.normal_()
    x, h, c = (torch.randn(1, n, dtype=torch.double) for n in (2, 3, 3))
    pre = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = pre.chunk(4, dim=1)
    p_i, p_f, p_o = cell.weight_peephole
    c_next = torch.sigmoid(f + p_f * c) * c + torch.sigmoid(i + p_i * c) * torch.tanh(g)
    h_next = torch.sigmoid(o + p_o * c_next) * torch.tanh(c_next)
    _, (h_out, c_out) = layer(x[:, None], (h[None], c[None]))
    torch.testing.assert_close(c_out[0], c_next)
    torch.testing.assert_close(h_out[0], h_next)


def test_peepholes_at_zero_are_the_plain_lstm():
    torch.manual_seed(0)
    plain = RecurrentLayer("lstm", 2, 3, implementation="scratch")
    peephole = RecurrentLayer("lstm", 2, 3, implementation="scratch", peephole=True)
    peephole.load_state_dict(plain.state_dict(), strict=False)
    inputs = torch.randn(2, 5, 2)
    torch.testing.assert_close(peephole(inputs)[0], plain(inputs)[0])


def test_gru_resetting_before_the_product_follows_cho_et_al():
    torch.manual_seed(0)
    layer = RecurrentLayer("gru", 2, 3, implementation="scratch", reset_after=False).double()
    cell = layer.cells[0]
    x, h = torch.randn(1, 2, dtype=torch.double), torch.randn(1, 3, dtype=torch.double)
    (w_r, w_z, w_n), (u_r, u_z, u_n) = cell.weight_ih.chunk(3), cell.weight_hh.chunk(3)
    (b_r, b_z, b_n), (c_r, c_z, c_n) = cell.bias_ih.chunk(3), cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ w_r.T + b_r + h @ u_r.T + c_r)
    z = torch.sigmoid(x @ w_z.T + b_z + h @ u_z.T + c_z)
    n = torch.tanh(x @ w_n.T + b_n + (r * h) @ u_n.T + c_n)
    _, state = layer(x[:, None], h[None])
    torch.testing.assert_close(state[0], (1 - z) * n + z * h)


@pytest.mark.parametrize("cell, bidirectional, keras, torch_count", [
    ("rnn", False, 2080, 2112), ("lstm", False, 8320, 8448), ("gru", False, 6240, 6336),
    ("lstm", True, 16640, 16896)])
def test_parameter_counts_of_the_workshop_tables(cell, bidirectional, keras, torch_count):
    # 32 units over 32-wide embeddings; Keras keeps one bias vector per gate, torch two.
    def count(layer):
        return sum(parameter.numel() for parameter in layer.parameters())

    assert count(RecurrentLayer(cell, 32, 32, bidirectional=bidirectional, implementation="scratch",
                                hidden_bias=False)) == keras
    assert count(RecurrentLayer(cell, 32, 32, bidirectional=bidirectional)) == torch_count
    assert count(RecurrentLayer(cell, 32, 32, bidirectional=bidirectional, implementation="scratch")) == torch_count


@pytest.mark.parametrize("options, words", [
    ({"cell": "elman"}, ["cell='elman'", "rnn, lstm, gru"]),
    ({"cell": "lstm", "implementation": "numpy"}, ["implementation='numpy'", "torch, scratch"]),
    ({"cell": "lstm", "peephole": True}, ["peephole=true", "implementation=scratch"]),
    ({"cell": "gru", "peephole": True, "implementation": "scratch"}, ["peephole", "lstm cell", "gru"]),
    ({"cell": "lstm", "hidden_bias": False}, ["hidden_bias=false", "implementation=scratch"]),
])
def test_bad_options_are_named(options, words):
    with pytest.raises(DlbookError) as error:
        RecurrentLayer(input_size=2, hidden_size=3, **options)
    for word in words:
        assert word in str(error.value)
