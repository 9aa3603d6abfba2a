"""One recurrent layer interface over torch's fused RNN/LSTM/GRU and the hand-written cells of cells.py, so every
sequence model takes `cell` and `implementation` from its config: batch-first inputs, optional per-sequence
lengths (post-padded batches; the state is each sequence's state at its last real step), and torch's state
layout, (layers * directions, B, H), a pair (h, c) for the LSTM."""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlbook.errors import DlbookError
from dlbook.nets.sequence.cells import SCRATCH_CELLS

CELLS = ("rnn", "lstm", "gru")
IMPLEMENTATIONS = ("torch", "scratch")
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentLayer(nn.Module):
    """`num_layers` stacked layers of `cell` units, `bidirectional` or not, `dropout` between layers.
    implementation=torch is torch's fused (cuDNN on GPUs) layer; scratch unrolls the hand-written cells step by step,
    with the options torch lacks: `peephole` LSTMs, GRUs with `reset_after=false`, `hidden_bias=false` (one bias
    vector per gate, the books' and Keras' parameter counts) and the rnn cell's `nonlinearity` identity."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, implementation: str = "torch",
                 peephole: bool = False, reset_after: bool = True, hidden_bias: bool = True,
                 nonlinearity: str = "tanh"):
        super().__init__()
        if cell not in CELLS:
            raise DlbookError(f"model.net.cell={cell!r} is not one of {', '.join(CELLS)}.")
        if implementation not in IMPLEMENTATIONS:
            raise DlbookError(f"model.net.implementation={implementation!r} is not one of "
                              f"{', '.join(IMPLEMENTATIONS)}.")
        # Settings away from their defaults, and the one cell each belongs to.
        cell_options = {"peephole=true": (peephole, "lstm"), "reset_after=false": (not reset_after, "gru"),
                        f"nonlinearity={nonlinearity}": (nonlinearity != "tanh", "rnn")}
        for setting, (asked, for_cell) in cell_options.items():
            if asked and cell != for_cell:
                raise DlbookError(f"{setting} is an option of the {for_cell} cell; this layer's cell is {cell}.")
        scratch_only = [name for name, on in (("peephole=true", peephole), ("reset_after=false", not reset_after),
                                              ("hidden_bias=false", not hidden_bias),
                                              (f"nonlinearity={nonlinearity}", nonlinearity not in ("tanh", "relu")))
                        if on]
        if implementation == "torch" and scratch_only:
            raise DlbookError(f"{', '.join(scratch_only)} needs the hand-written cells, which torch's fused layers "
                              f"lack: set implementation=scratch.")
        self.cell, self.implementation = cell, implementation
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.num_directions = 2 if bidirectional else 1
        self.output_size = self.num_directions * hidden_size
        if implementation == "torch":
            extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
            self.layer = TORCH_LAYERS[cell](input_size, hidden_size, num_layers, batch_first=True,
                                            dropout=dropout if num_layers > 1 else 0.0,
                                            bidirectional=bidirectional, **extra)
        else:
            cell_options = {"rnn": {"nonlinearity": nonlinearity}, "lstm": {"peephole": peephole},
                            "gru": {"reset_after": reset_after}}[cell]
            self.cells = nn.ModuleList(
                SCRATCH_CELLS[cell](input_size if layer == 0 else self.output_size, hidden_size,
                                    hidden_bias=hidden_bias, **cell_options)
                for layer in range(num_layers) for _ in range(self.num_directions))
            self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor, state=None, lengths: torch.Tensor | None = None):
        """inputs (B, T, input_size) -> outputs (B, T, output_size), zero past each sequence's length, and the
        final state."""
        if self.implementation == "torch":
            return self._torch_forward(inputs, state, lengths)
        return self._scratch_forward(inputs, state, lengths)

    def _torch_forward(self, inputs, state, lengths):
        if lengths is None:
            return self.layer(inputs, state)
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.layer(packed, state)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.shape[1])
        return outputs, state

    def _scratch_forward(self, inputs, state, lengths):
        batch, steps = inputs.shape[:2]
        if state is None:
            zeros = inputs.new_zeros(self.num_layers * self.num_directions, batch, self.hidden_size)
            state = (zeros, zeros) if self.cell == "lstm" else zeros
        is_pair = self.cell == "lstm"
        layer_input, final = inputs, []
        for layer in range(self.num_layers):
            directions = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                initial = (state[0][index], state[1][index]) if is_pair else state[index]
                outputs, last = self._unroll(self.cells[index], layer_input, initial, lengths, reverse=direction == 1)
                directions.append(outputs)
                final.append(last)
            layer_input = torch.cat(directions, dim=-1)
            if layer + 1 < self.num_layers:
                layer_input = self.dropout(layer_input)
        if is_pair:
            return layer_input, (torch.stack([h for h, _ in final]), torch.stack([c for _, c in final]))
        return layer_input, torch.stack(final)

    @staticmethod
    def _unroll(cell, inputs, state, lengths, reverse: bool):
        """One direction of one layer over every step; a sequence's state stops changing past its length."""
        if reverse:
            inputs = reverse_within_lengths(inputs, lengths)
        projected = cell.input_part(inputs)  # one matrix product for the whole sequence
        valid = None if lengths is None else (
            torch.arange(inputs.shape[1], device=inputs.device)[None, :] < lengths.to(inputs.device)[:, None])
        outputs = []
        for step in range(inputs.shape[1]):
            new_state = cell.step(projected[:, step], state)
            if valid is not None:
                keep = valid[:, step, None]
                new_state = (tuple(torch.where(keep, new, old) for new, old in zip(new_state, state))
                             if isinstance(new_state, tuple) else torch.where(keep, new_state, state))
            state = new_state
            outputs.append(state[0] if isinstance(state, tuple) else state)
        outputs = torch.stack(outputs, dim=1)
        if valid is not None:
            outputs = outputs * valid[..., None]
        if reverse:
            outputs = reverse_within_lengths(outputs, lengths)
        return outputs, state

    def last_hidden(self, state) -> torch.Tensor:
        """(B, output_size): the top layer's final hidden state, the directions side by side."""
        hidden = state[0] if isinstance(state, tuple) else state
        top = hidden[-self.num_directions:]  # (directions, B, H)
        return top.transpose(0, 1).reshape(top.shape[1], -1)


def reverse_within_lengths(sequences: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each sequence's first `length` steps in reverse order, its padding left in place (B, T, ...)."""
    if lengths is None:
        return sequences.flip(1)
    steps = torch.arange(sequences.shape[1], device=sequences.device)[None, :]
    lengths = lengths.to(sequences.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return sequences.gather(1, index[..., None].expand_as(sequences))
