"""Sequence to sequence: a net reads a source sequence and writes its target (a sentence's translation, a sequence
reversed), trained with teacher forcing on the next-token cross-entropy and judged on what it writes on its own:
greedy or beam-search decoding, BLEU (torchmetrics) and the share of targets written exactly. Attention heatmaps
of a few decoded examples are the run's figures."""

import logging
from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.text import BLEUScore

from dlbook.data.pairs import source_tokens, target_tokens
from dlbook.data.spec import DataSpec, PairSpec
from dlbook.errors import check_count, check_number
from dlbook.nets.seq2seq.search import beam_search, greedy_decode
from dlbook.tasks.base import LossTask

log = logging.getLogger("dlbook")


class Seq2SeqTask(LossTask):
    """The net is sized by the data's PairSpec and takes `(source, target_inputs)` to logits, teacher-forced, and
    `start`/`step` to decode. Logs `<stage>/loss` (nats per target token), and on validation and test data, from
    the net's own decoding: `<stage>/token_acc` (teacher-forced), `<stage>/bleu` (corpus BLEU-4 on the targets'
    tokens) and `<stage>/sequence_acc` (targets written exactly, <eos> included).

    `beam_size` 1 decodes greedily; more runs beam search, its finished targets ranked by log-probability /
    length ** `length_penalty`. `max_decode_length`: the most tokens written (null: the data's longest target).
    `label_smoothing` as in Vaswani et al. (0.1 there). `num_examples`: decoded validation and test examples kept
    for the attention figures and the log."""

    accepts = (PairSpec,)
    summary_metrics = (("test/bleu", "Test BLEU"), ("val/bleu", "Validation BLEU"))

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, beam_size: int = 1, length_penalty: float = 0.0,
                 max_decode_length: int | None = None, label_smoothing: float = 0.0, num_examples: int = 4):
        super().__init__(data_spec, optimizer, scheduler)
        check_count("model.beam_size", beam_size, note=" (1: greedy)")
        if max_decode_length is not None:  # 0 meant the data's longest target, not a length
            check_count("model.max_decode_length", max_decode_length, note=", or null for the longest target")
        check_number("model.label_smoothing", label_smoothing, 0, 1)  # torch checks it only in the first step
        spec = data_spec
        self.net = net(source_vocab_size=spec.source_vocab_size, target_vocab_size=spec.target_vocab_size,
                       pad_index=spec.pad_index, max_source_length=spec.max_source_length,
                       max_target_length=spec.max_target_length)
        self.beam_size, self.length_penalty = beam_size, length_penalty
        # <sos> is given, not written
        self.max_decode_length = spec.max_target_length - 1 if max_decode_length is None else max_decode_length
        self.num_examples = num_examples
        self.criterion = nn.CrossEntropyLoss(ignore_index=spec.pad_index, label_smoothing=label_smoothing)
        self.bleu = nn.ModuleDict({stage: BLEUScore(n_gram=4) for stage in ("val", "test")})
        self.val_bleu_best = self.best_of_run(MaxMetric)
        self.examples: dict[str, tuple] = {}  # stage -> (sources, decoded, attention or None), on the CPU

    def forward(self, source: torch.Tensor, target_inputs: torch.Tensor) -> torch.Tensor:
        return self.net(source, target_inputs)

    def decode(self, source: torch.Tensor, max_length: int | None = None):
        """(tokens (B, L) without <sos>, log-probabilities (B,), attention (B, L, S) or None) of greedy decoding
        or beam search, as `beam_size` says."""
        spec, length = self.data_spec, max_length or self.max_decode_length
        ids = dict(start_index=spec.start_index, end_index=spec.end_index, pad_index=spec.pad_index,
                   max_length=length)
        if self.beam_size == 1:
            return greedy_decode(self.net, source, **ids)
        return beam_search(self.net, source, beam_size=self.beam_size, length_penalty=self.length_penalty, **ids)

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        source, target = batch
        logits = self(source, target[:, :-1])
        truth = target[:, 1:]
        loss = self.criterion(logits.flatten(0, 1), truth.flatten())
        self.log_epoch_mean(f"{stage}/loss", loss, len(source))
        if stage != "train":
            real = truth != self.data_spec.pad_index
            self.log_epoch_sum(f"{stage}/token_acc", ((logits.argmax(dim=-1) == truth) & real).sum(), int(real.sum()))
            self.score_decoding(source, truth, stage)
        return loss

    def score_decoding(self, source: torch.Tensor, truth: torch.Tensor, stage: str) -> None:
        decoded, _, attention = self.decode(source)
        width = max(decoded.shape[1], truth.shape[1])
        pad = self.data_spec.pad_index
        exact = (nn.functional.pad(decoded, (0, width - decoded.shape[1]), value=pad)
                 == nn.functional.pad(truth, (0, width - truth.shape[1]), value=pad)).all(dim=1)
        self.log_epoch_sum(f"{stage}/sequence_acc", exact.sum(), len(source))
        spec = self.data_spec
        self.bleu[stage].update([" ".join(target_tokens(row, spec)) for row in decoded.cpu()],
                                [[" ".join(target_tokens(row, spec))] for row in truth.cpu()])
        if stage not in self.examples:  # the epoch's first batch
            n = self.num_examples
            self.examples[stage] = (source[:n].cpu(), decoded[:n].cpu(), None if attention is None
                                    else attention[:n].float().cpu(), truth[:n].cpu())

    def log_bleu(self, stage: str) -> torch.Tensor:
        bleu = self.bleu[stage].compute()
        self.bleu[stage].reset()
        self.log(f"{stage}/bleu", bleu, prog_bar=True)
        return bleu

    def on_validation_epoch_start(self) -> None:
        self.examples.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.examples.pop("test", None)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log_best("val/bleu", self.log_bleu("val"), self.val_bleu_best)
        if not self.trainer.sanity_checking:
            self.log_examples("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_bleu("test")
        self.log_examples("test")

    def example_lines(self, stage: str) -> list[str]:
        """`source -> decoded (reference)` for the kept examples."""
        if stage not in self.examples:
            return []
        sources, decoded, _, truth = self.examples[stage]
        separator = self.data_spec.separator
        return [f"{separator.join(source_tokens(s, self.data_spec))} -> "
                f"{separator.join(target_tokens(d, self.data_spec))} "
                f"(reference: {separator.join(target_tokens(t, self.data_spec))})"
                for s, d, t in zip(sources, decoded, truth)]

    def log_examples(self, stage: str) -> None:
        if self.trainer.is_global_zero:
            for line in self.example_lines(stage):
                log.info(f"{stage} example: {line}")

    def figures(self, stage: str) -> dict:
        """attention_val and attention_test: the attention of each kept example (validation's after fitting, test's
        after testing)."""
        split = "val" if stage == "fit" else "test"
        kept = self.examples.get(split)
        if kept is None or kept[2] is None:
            return {}
        return {f"attention_{split}": attention_figure(*kept[:3], self.data_spec)}


def attention_figure(sources: torch.Tensor, decoded: torch.Tensor, attention: torch.Tensor, spec: PairSpec):
    """Heatmaps of how much each written token (a row) attended to each source token (a column), one per source."""
    from dlbook.plots import attention_maps

    maps = []
    for source, written, weights in zip(sources.cpu(), decoded.cpu(), attention.float().cpu()):
        columns, rows = source_tokens(source, spec), target_tokens(written, spec)
        rows = rows + ["<eos>"] if len(rows) < len(written) else rows
        maps.append((columns, rows, weights[:len(rows), :len(columns)]))
    return attention_maps(maps)
