"""Decoding a sequence-to-sequence net token by token, for any net with `start(source) -> state` (a dict of
batch-first tensors) and `step(tokens, state) -> (logits, state, attention or None)`: greedy decoding, and beam
search, which keeps the `beam_size` likeliest partial targets of each source (Sutskever et al. 2014)."""

import torch
from torch import nn


def reorder(state: dict[str, torch.Tensor], rows: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: tensor.index_select(0, rows) for name, tensor in state.items()}


@torch.no_grad()
def beam_search(net: nn.Module, source: torch.Tensor, start_index: int, end_index: int, pad_index: int,
                max_length: int, beam_size: int = 1, length_penalty: float = 0.0):
    """Each source's likeliest target under the beam: (tokens (B, L) without <sos>, ending with <eos> unless cut at
    max_length and post-padded, their log-probabilities (B,), attention (B, L, S) or None).

    Every step extends each of a source's `beam_size` partial targets by every token and keeps the beam_size
    likeliest extensions; a target that has emitted <eos> is finished and carried on unchanged. Finished targets
    are ranked by log-probability / length ** length_penalty (0: the sum itself; 1: the mean per token, which
    favours no length). beam_size=1 is greedy decoding."""
    batch, k = len(source), beam_size
    state = reorder(net.start(source), torch.arange(batch, device=source.device).repeat_interleave(k))
    scores = torch.full((batch, k), float("-inf"), device=source.device)
    scores[:, 0] = 0.0  # the beams start identical: only one of them may expand
    tokens = torch.full((batch * k,), start_index, dtype=torch.long, device=source.device)
    history, attention_history = [], []
    finished = torch.zeros(batch, k, dtype=torch.bool, device=source.device)
    lengths = torch.zeros(batch, k, device=source.device)
    for _ in range(max_length):
        logits, state, attention = net.step(tokens, state)
        log_probs = logits.float().log_softmax(dim=-1).view(batch, k, -1)
        # A finished target adds padding at no cost, and nothing else.
        carried = torch.full_like(log_probs[0, 0], float("-inf"))
        carried[pad_index] = 0.0
        log_probs = torch.where(finished[..., None], carried, log_probs)
        vocab = log_probs.shape[-1]
        scores, best = (scores[..., None] + log_probs).view(batch, -1).topk(k, dim=-1)
        origin, tokens = best // vocab, best % vocab
        rows = (origin + torch.arange(batch, device=source.device)[:, None] * k).view(-1)
        state = reorder(state, rows)
        history = [step.index_select(0, rows) for step in history] + [tokens.view(-1)]
        if attention is not None:
            attention_history = [step.index_select(0, rows) for step in attention_history]
            attention_history.append(attention.index_select(0, rows))
        finished, lengths = finished.gather(1, origin), lengths.gather(1, origin)
        lengths = lengths + (~finished).float()
        finished = finished | (tokens == end_index)
        tokens = tokens.view(-1)
        if finished.all():
            break
    ranking = scores / lengths.clamp(min=1) ** length_penalty
    chosen = ranking.argmax(dim=-1) + torch.arange(batch, device=source.device) * k
    decoded = torch.stack(history, dim=1).index_select(0, chosen)
    weights = torch.stack(attention_history, dim=1).index_select(0, chosen) if attention_history else None
    return decoded, scores.view(-1).index_select(0, chosen), weights


@torch.no_grad()
def greedy_decode(net: nn.Module, source: torch.Tensor, start_index: int, end_index: int, pad_index: int,
                  max_length: int):
    """Each step's likeliest token, fed back as the next step's input: (tokens (B, L) without <sos>, post-padded
    after each target's <eos>, their log-probabilities (B,), attention (B, L, S) or None)."""
    state = net.start(source)
    tokens = torch.full((len(source),), start_index, dtype=torch.long, device=source.device)
    finished = torch.zeros(len(source), dtype=torch.bool, device=source.device)
    score = torch.zeros(len(source), device=source.device)
    decoded, attentions = [], []
    for _ in range(max_length):
        logits, state, attention = net.step(tokens, state)
        log_probs = logits.float().log_softmax(dim=-1)
        tokens = log_probs.argmax(dim=-1).masked_fill(finished, pad_index)  # a finished target reads on padding
        score = score + torch.where(finished, 0.0, log_probs.gather(1, tokens[:, None])[:, 0])
        decoded.append(tokens)
        if attention is not None:
            attentions.append(attention)
        finished = finished | (tokens == end_index)
        if finished.all():
            break
    return torch.stack(decoded, dim=1), score, torch.stack(attentions, dim=1) if attentions else None
