"""Language modelling: next-token cross-entropy over windows of a token stream, with truncated backpropagation
through time. Perplexity (exp of the per-token cross-entropy) is the metric; samples of generated text show what
the model has learnt."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MinMetric

from dlbook.data.spec import DataSpec, TokenSpec
from dlbook.data.vectors import use_pretrained_vectors
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.tasks.base import LossTask

STATE_KEY = "dlbook_carried_state"  # checkpoint entry: the training state the next window starts from


def detached(state):
    return tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()


class LanguageModelTask(LossTask):
    """`carry_state`: each batch starts from the state the previous batch of its split ended in (detached, so
    gradients flow through `data.seq_length` steps: truncated BPTT), reset when an epoch starts; false starts
    every window from zeros. Logs `<stage>/loss` (nats per token), `<stage>/perplexity` and
    `<stage>/bits_per_token` (bits per character for a character model). `embedding.pretrained`: a word-vector
    file that starts a word model's embedding (dlbook/data/vectors.py)."""

    accepts = (TokenSpec,)
    summary_metrics = (("test/perplexity", "Test perplexity"), ("val/perplexity", "Validation perplexity"))

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, carry_state: bool = True, embedding: dict | None = None):
        super().__init__(data_spec, optimizer, scheduler)
        if data_spec.num_classes:
            raise IncompatibleDataError(f"it predicts the next token; the data gives sequences of "
                                        f"{data_spec.num_classes} classes")
        self.net = net(vocab_size=data_spec.vocab_size)
        use_pretrained_vectors(self.net, data_spec, **(embedding or {}))
        self.carry_state = carry_state
        self.criterion = nn.CrossEntropyLoss()
        self.states: dict[str, object] = {}  # the state each split's last batch ended in
        self.resumed_mid_epoch = False
        self.val_perplexity_best = self.best_of_run(MinMetric)

    def forward(self, tokens: torch.Tensor, state=None):
        return self.net(tokens, state)

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        inputs, targets = batch
        logits, state = self(inputs, self.states.get(stage) if self.carry_state else None)
        if self.carry_state:
            self.states[stage] = detached(state)
        loss = self.criterion(logits.flatten(0, 1), targets.flatten())
        self.log_epoch_mean(f"{stage}/loss", loss, targets.numel())
        return loss

    # Each epoch reads its split from the start, from a zero state; a run resumed mid-epoch goes on from the
    # state its checkpoint kept.
    def on_train_epoch_start(self) -> None:
        if not self.resumed_mid_epoch:
            self.states.pop("train", None)
        self.resumed_mid_epoch = False

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        if "train" in self.states and done < self.trainer.num_training_batches:  # mid-epoch
            checkpoint[STATE_KEY] = self.states["train"]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if STATE_KEY in checkpoint:
            state = checkpoint[STATE_KEY]
            self.states["train"] = tuple(state) if isinstance(state, (tuple, list)) else state
            self.resumed_mid_epoch = True

    def on_validation_epoch_start(self) -> None:
        self.states.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.states.pop("test", None)

    def log_perplexity(self, stage: str) -> torch.Tensor | None:
        loss = self.epoch_means.get(f"{stage}/loss")
        if loss is None:
            return None
        perplexity = loss.exp()
        self.log(f"{stage}/perplexity", perplexity, prog_bar=True)
        self.log(f"{stage}/bits_per_token", loss / torch.log(torch.tensor(2.0)))
        return perplexity

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_perplexity("train")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        perplexity = self.log_perplexity("val")
        if perplexity is not None:
            self.log_best("val/perplexity", perplexity, self.val_perplexity_best)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_perplexity("test")

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, length: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """The prompt's ids (P,) followed by `length` generated ones. temperature 0 is greedy (the most likely
        token each step); otherwise tokens are drawn from the softmax of logits / temperature, restricted to the
        `top_k` most likely with top_k. Drawn on the CPU from `generator`, so a seed gives the same text on
        every device."""
        if temperature < 0:
            raise DlbookError(f"temperature={temperature} must be 0 (greedy) or positive.")
        if top_k is not None and not 1 <= top_k <= self.data_spec.vocab_size:
            raise DlbookError(f"top_k={top_k} must lie in [1, {self.data_spec.vocab_size}] (the vocabulary), or be "
                              f"null for the whole vocabulary.")
        if len(prompt) == 0:
            raise DlbookError("The prompt is empty: give at least one token to start from.")
        training = self.training
        self.eval()
        logits, state = self(prompt.to(self.device)[None])
        generated = []
        for _ in range(length):
            scores = logits[0, -1].float().cpu()
            if temperature == 0:
                token = scores.argmax()
            else:
                scores = scores / temperature
                if top_k is not None:
                    scores[scores < scores.topk(top_k).values[-1]] = -float("inf")
                token = torch.multinomial(scores.softmax(dim=0), 1, generator=generator)[0]
            generated.append(token)
            logits, state = self(token.view(1, 1).to(self.device), state)
        self.train(training)
        return torch.cat([prompt.cpu(), torch.stack(generated)]) if generated else prompt.cpu()
