"""Restricted Boltzmann machines trained by contrastive divergence (Pro DL ch. 5; TF 1.x Cookbook ch. 7): the CD rule
updates the weights itself, so there is no optimizer (optimizer=none), as for k-means. Every stage logs the
mean-field reconstruction's squared error per pixel (`<stage>/mse`, comparable with the autoencoders') and the mean
free energy of its images (`<stage>/free_energy`); a validation free energy rising above the training one is
Hinton's sign of overfitting."""

from collections.abc import Callable

import torch
from torch import nn

from dlbook.data.spec import DataSpec, ImageSpec
from dlbook.errors import check_count, check_number
from dlbook.nets.autoencoder.rbm import binarized, check_threshold
from dlbook.plots import image_grid
from dlbook.tasks.unsupervised import SelfUpdatingTask

FILTERS_SHOWN = 64


class RBMTask(SelfUpdatingTask):
    """`lr` and `k`: the CD-k step. `persistent`: PCD (Tieleman 2008), negative chains kept from batch to batch (and
    in checkpoints) instead of restarted at the data. `binarize`: pixels above it are on, the others off (Pro DL's
    binarised MNIST); null feeds the intensities in [0, 1] as probabilities. `sample_steps`: Gibbs steps of each
    chain scripts/sample.py and the samples figure run from random states. `chains`: PCD's number of chains,
    started from uniformly random states."""

    accepts = (ImageSpec,)
    summary_metrics = (("test/mse", "Test reconstruction MSE"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, init_seed: int = 0, lr: float = 0.01, k: int = 1,
                 persistent: bool = False, chains: int = 100, binarize: float | None = 0.5, sample_steps: int = 1000,
                 shown: int = 8):
        super().__init__(data_spec, optimizer, scheduler, init_seed)
        check_count("model.k", k, note=" (Gibbs steps of each contrastive divergence update)")
        check_number("model.lr", lr, least=0)
        check_threshold("model.binarize", binarize)
        check_count("model.sample_steps", sample_steps, note=" (Gibbs steps of each sampled chain)")
        if persistent:
            check_count("model.chains", chains, note=" (persistent contrastive divergence's chains)")
        with torch.random.fork_rng():
            torch.manual_seed(init_seed)
            self.rbm = net(num_visible=self.num_features)
            self.register_buffer("chains", torch.bernoulli(torch.full((chains if persistent else 0,
                                                                       self.num_features), 0.5)))
        self.lr, self.k, self.persistent, self.binarize = lr, k, persistent, binarize
        self.sample_steps, self.shown = sample_steps, shown
        self.examples: dict[str, torch.Tensor] = {}

    def visible(self, rows: torch.Tensor) -> torch.Tensor:
        return binarized(rows, self.binarize)

    def learn(self, rows: torch.Tensor) -> None:
        v = self.visible(rows)
        negative = self.rbm.cd_update(v, self.lr, self.k, self.chains if self.persistent else None)
        if self.persistent:
            self.chains = negative
        self.log_errors("train", v)

    def log_errors(self, stage: str, v: torch.Tensor) -> None:
        self.log_epoch_mean(f"{stage}/mse", (self.rbm.reconstruct(v) - v).square().mean(), len(v))
        self.log_epoch_mean(f"{stage}/free_energy", self.rbm.free_energy(v).mean(), len(v))

    def evaluate(self, batch, stage: str) -> None:
        v = self.visible(self.rows(batch)[0])
        self.log_errors(stage, v)
        if stage not in self.examples:
            self.examples[stage] = v[:self.shown].cpu()

    def validation_step(self, batch, batch_idx):
        self.evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self.evaluate(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self.examples.pop("val", None)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """The hidden units' probabilities given the images."""
        return self.rbm.hidden_probs(self.visible(rows.flatten(1)))

    # -- what people look at ------------------------------------------------------------------------------
    def images(self, rows: torch.Tensor) -> list[torch.Tensor]:
        return list(rows.detach().float().cpu().view(-1, *self.data_spec.input_shape))

    @torch.no_grad()
    def gibbs_samples(self, n: int) -> torch.Tensor:
        """n chains from uniformly random states, `sample_steps` Gibbs steps each; the last step's visible
        probabilities, (n, visible)."""
        v = torch.bernoulli(torch.full((n, self.num_features), 0.5, device=self.device))
        v = self.rbm.gibbs(v, self.sample_steps - 1)
        return self.rbm.visible_probs(torch.bernoulli(self.rbm.hidden_probs(v)))

    def sample(self, n: int, inputs: torch.Tensor | None = None, **options) -> tuple[torch.Tensor, int, torch.Tensor]:
        if inputs is not None:
            with torch.no_grad():
                v = self.visible(inputs.to(self.device).flatten(1))
                rows = torch.cat([v, self.rbm.reconstruct(v)])
            images = torch.stack(self.images(rows)) * 2 - 1
            return images, len(inputs), images[len(inputs):]
        images = torch.stack(self.images(self.gibbs_samples(n))) * 2 - 1
        return images, max(1, round(n ** 0.5)), images

    @torch.no_grad()
    def figures(self, stage: str) -> dict:
        split = "val" if stage == "fit" else "test"
        figures = {}
        if split in self.examples:
            inputs = self.examples[split].to(self.device)
            figures[f"reconstructions_{split}"] = image_grid(
                self.images(torch.cat([inputs, self.rbm.reconstruct(inputs)])),
                ["input"] * len(inputs) + ["output"] * len(inputs), columns=len(inputs))
        if stage == "fit":
            weights = self.rbm.weight[:FILTERS_SHOWN]
            low = weights.min(dim=1, keepdim=True).values
            filters = (weights - low) / (weights.max(dim=1, keepdim=True).values - low).clamp(min=1e-8)
            figures["filters"] = image_grid(self.images(filters), [""] * len(filters))
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(0)  # the same chains at every run's end
                samples = self.gibbs_samples(64)
            figures["samples"] = image_grid(self.images(samples), [""] * len(samples))
        return figures
