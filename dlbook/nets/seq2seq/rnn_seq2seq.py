"""The recurrent encoder-decoder (Sutskever et al. 2014; Cho et al. 2014) with optional attention over the encoder's
outputs (Bahdanau et al. 2015; Luong et al. 2015): Pro DL ch. 4's LSTM translator, Advanced DL ch. 8's GRU with
Luong attention, the TF 1.x Cookbook's NMT (ch. 6). A sequence-to-sequence net for Seq2SeqTask: teacher-forced
`forward`, and `start`/`step` for greedy and beam decoding."""

import torch
from torch import nn

from dlbook.errors import DlbookError, check_number
from dlbook.nets.seq2seq.attention import KINDS, AdditiveAttention, MultiplicativeAttention
from dlbook.nets.sequence.recurrent import RecurrentLayer


class RNNSeq2Seq(nn.Module):
    """Encoder: Embedding -> `num_layers` recurrent layers of `cell` units (`bidirectional` or not) over each
    source's real tokens. Decoder: Embedding -> `num_layers` layers of `cell` units, started from the encoder's
    final state (the two directions summed) -> Linear to target-vocabulary logits. `attention`:

    - none: the decoder knows the source only through the state it starts from (Sutskever et al.);
    - bahdanau: before each step the previous top-layer state scores every encoder output (additive, with
      `attention_size` units); the decoder reads the token's embedding beside the context, and the logits come
      from its output beside the context;
    - luong_dot / luong_general: after each step the decoder's output scores the encoder outputs (s^T h or s^T W h);
      the logits come from tanh(W_c [output; context]).

    `teacher_forcing` < 1: in training, each step reads the true previous token with that probability and the
    net's own prediction otherwise (scheduled sampling); 1 always reads the truth, and then the decoder runs over
    the whole target at once unless attention is bahdanau, which needs its state before every step.

    `max_source_length` and `max_target_length` are not needed: any length runs."""

    def __init__(self, source_vocab_size: int, target_vocab_size: int, pad_index: int = 0,
                 max_source_length: int | None = None, max_target_length: int | None = None, cell: str = "gru",
                 embed_dim: int = 128, hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 attention: str = "bahdanau", attention_size: int | None = None, dropout: float = 0.0,
                 teacher_forcing: float = 1.0, implementation: str = "torch"):
        super().__init__()
        if attention not in KINDS:
            raise DlbookError(f"model.net.attention={attention!r} is not one of {', '.join(KINDS)}.")
        check_number("model.net.teacher_forcing", teacher_forcing, least=0, most=1)
        self.pad_index, self.cell, self.attention_kind = pad_index, cell, attention
        self.teacher_forcing = teacher_forcing
        self.source_embedding = nn.Embedding(source_vocab_size, embed_dim, padding_idx=pad_index)
        self.target_embedding = nn.Embedding(target_vocab_size, embed_dim, padding_idx=pad_index)
        self.encoder = RecurrentLayer(cell, embed_dim, hidden_size, num_layers, bidirectional, dropout, implementation)
        memory_size = self.encoder.output_size
        decoder_input = embed_dim + (memory_size if attention == "bahdanau" else 0)
        self.decoder = RecurrentLayer(cell, decoder_input, hidden_size, num_layers, False, dropout, implementation)
        self.dropout = nn.Dropout(dropout)
        if attention == "bahdanau":
            self.attention = AdditiveAttention(hidden_size, memory_size, attention_size or hidden_size)
            features = hidden_size + memory_size
        elif attention.startswith("luong"):
            self.attention = MultiplicativeAttention(hidden_size, memory_size, general=attention == "luong_general")
            self.combine = nn.Linear(hidden_size + memory_size, hidden_size)
            features = hidden_size
        else:
            self.attention = None
            features = hidden_size
        self.output = nn.Linear(features, target_vocab_size)

    def start(self, source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode (B, S) ids: the decoding state, every tensor batch-first (beam search reorders its rows): the
        encoder's outputs, what attention reads of them, the real positions and the decoder's recurrent state."""
        mask = source != self.pad_index
        lengths = mask.sum(dim=1).clamp(min=1)
        memory, final = self.encoder(self.dropout(self.source_embedding(source)), lengths=lengths)
        directions = self.encoder.num_directions
        final = tuple(final) if isinstance(final, tuple) else (final,)
        # (layers * directions, B, H) -> (B, layers, H), the directions summed
        parts = [part.unflatten(0, (-1, directions)).sum(dim=1).transpose(0, 1) for part in final]
        state = {"memory": memory, "mask": mask, "hidden": parts[0]}
        if len(parts) == 2:
            state["cell"] = parts[1]
        if self.attention is not None:
            state["prepared"] = self.attention.prepare(memory)
        return state

    def recurrent_state(self, state: dict):
        """The decoder's state in torch's layout, (layers, B, H), a pair for the LSTM."""
        hidden = state["hidden"].transpose(0, 1).contiguous()
        return (hidden, state["cell"].transpose(0, 1).contiguous()) if "cell" in state else hidden

    @staticmethod
    def with_recurrent_state(state: dict, recurrent) -> dict:
        if isinstance(recurrent, tuple):
            return {**state, "hidden": recurrent[0].transpose(0, 1), "cell": recurrent[1].transpose(0, 1)}
        return {**state, "hidden": recurrent.transpose(0, 1)}

    def decode(self, inputs: torch.Tensor, state: dict):
        """(B, T) previous tokens -> logits (B, T, target_vocab), the state after them and the attention weights
        (B, T, S) (None without attention)."""
        embedded = self.dropout(self.target_embedding(inputs))
        recurrent, weights = self.recurrent_state(state), None
        if self.attention_kind == "bahdanau":
            outputs, contexts, weights = [], [], []
            for t in range(inputs.shape[1]):
                top = (recurrent[0] if isinstance(recurrent, tuple) else recurrent)[-1]
                context, weight = self.attention(top[:, None], state["memory"], state["mask"], state["prepared"])
                output, recurrent = self.decoder(torch.cat([embedded[:, t:t + 1], context], dim=-1), recurrent)
                outputs.append(output)
                contexts.append(context)
                weights.append(weight)
            features = torch.cat([torch.cat(outputs, dim=1), torch.cat(contexts, dim=1)], dim=-1)
            weights = torch.cat(weights, dim=1)
        else:
            features, recurrent = self.decoder(embedded, recurrent)
            if self.attention is not None:
                context, weights = self.attention(features, state["memory"], state["mask"], state["prepared"])
                features = torch.tanh(self.combine(torch.cat([features, context], dim=-1)))
        return self.output(self.dropout(features)), self.with_recurrent_state(state, recurrent), weights

    def step(self, tokens: torch.Tensor, state: dict):
        """One decoding step from the previous tokens (B,): the next token's logits (B, target_vocab), the new
        state and the step's attention weights (B, S) (None without attention)."""
        logits, state, weights = self.decode(tokens[:, None], state)
        return logits[:, 0], state, None if weights is None else weights[:, 0]

    def forward(self, source: torch.Tensor, target_inputs: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, target_vocab) for the target tokens after `target_inputs` (<sos> and the target but its
        last token)."""
        state = self.start(source)
        if not self.training or self.teacher_forcing >= 1.0:
            return self.decode(target_inputs, state)[0]
        tokens, logits = target_inputs[:, 0], []
        for t in range(target_inputs.shape[1]):
            step_logits, state, _ = self.step(tokens, state)
            logits.append(step_logits)
            if t + 1 < target_inputs.shape[1]:
                truth = torch.rand(len(tokens), device=tokens.device) < self.teacher_forcing
                tokens = torch.where(truth, target_inputs[:, t + 1], step_logits.argmax(dim=-1))
        return torch.stack(logits, dim=1)
