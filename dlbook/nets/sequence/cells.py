"""Recurrent cells written out gate by gate, as the books derive them: one time step, batch first. Their weights
are laid out and named as torch.nn's cells' (weight_ih, weight_hh, bias_ih, bias_hh, gates stacked in torch's
order), so the same weights give the same outputs, which the tests check. `hidden_bias=False` keeps one bias vector
per gate, as Keras and the books' equations do, and TensorFlow's parameter counts come out."""

import math

import torch
from torch import nn


class ScratchCell(nn.Module):
    """Weights for `gates` gates of `hidden_size` units over the input and over the previous hidden state."""

    gates: int

    def __init__(self, input_size: int, hidden_size: int, hidden_bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(self.gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(self.gates * hidden_size)) if hidden_bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # torch's cells' uniform range
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def input_part(self, inputs: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih for every step at once, (B, T, gates*H): the input does not depend on the state."""
        return torch.nn.functional.linear(inputs, self.weight_ih, self.bias_ih)

    def hidden_part(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(hidden, self.weight_hh, self.bias_hh)


class RNNCell(ScratchCell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, hidden_bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size, hidden_bias)
        self.activation = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda x: x}[nonlinearity]

    def step(self, projected_input: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.activation(projected_input + self.hidden_part(state))


class LSTMCell(ScratchCell):
    """Gates i, f, g, o (torch's order): c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t). With `peephole` (Gers and
    Schmidhuber 2000, the TF 1.x Cookbook's peephole LSTM) the input and forget gates also see c_{t-1} and the
    output gate sees c_t, through one diagonal weight vector each."""

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, hidden_bias: bool = True, peephole: bool = False):
        super().__init__(input_size, hidden_size, hidden_bias)
        self.peephole = peephole
        if peephole:
            self.weight_peephole = nn.Parameter(torch.zeros(3, hidden_size))  # (i, f, o) rows

    def step(self, projected_input: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        hidden, cell = state
        i, f, g, o = (projected_input + self.hidden_part(hidden)).chunk(4, dim=-1)
        if self.peephole:
            i = i + self.weight_peephole[0] * cell
            f = f + self.weight_peephole[1] * cell
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        if self.peephole:
            o = o + self.weight_peephole[2] * cell
        return torch.sigmoid(o) * torch.tanh(cell), cell


class GRUCell(ScratchCell):
    """Gates r, z and the candidate n (torch's order): h_t = (1 - z)*n + z*h_{t-1}. torch (and Keras'
    reset_after=True) resets the candidate's hidden part after its matrix product, n = tanh(W_in x + r*(W_hn h +
    b_hn)); `reset_after=False` resets the state before it, n = tanh(W_in x + W_hn (r*h)), as Cho et al. 2014
    and the books' equations (and the DL Workshop's GRU(reset_after=False)) do."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, hidden_bias: bool = True, reset_after: bool = True):
        super().__init__(input_size, hidden_size, hidden_bias)
        self.reset_after = reset_after

    def step(self, projected_input: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        input_r, input_z, input_n = projected_input.chunk(3, dim=-1)
        size = self.hidden_size
        if self.reset_after:
            hidden_r, hidden_z, hidden_n = self.hidden_part(state).chunk(3, dim=-1)
        else:  # r and z from the state as usual; the candidate's product waits for r
            hidden_r, hidden_z = torch.nn.functional.linear(
                state, self.weight_hh[:2 * size], None if self.bias_hh is None else self.bias_hh[:2 * size]
            ).chunk(2, dim=-1)
        reset, update = torch.sigmoid(input_r + hidden_r), torch.sigmoid(input_z + hidden_z)
        if self.reset_after:
            candidate = torch.tanh(input_n + reset * hidden_n)
        else:
            candidate = torch.tanh(input_n + torch.nn.functional.linear(
                reset * state, self.weight_hh[2 * size:], None if self.bias_hh is None else self.bias_hh[2 * size:]))
        return (1 - update) * candidate + update * state


SCRATCH_CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
