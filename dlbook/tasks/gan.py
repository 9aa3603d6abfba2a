"""Generative adversarial networks: one task for every variant, trained with Lightning's manual optimization.

Every batch takes one discriminator (critic) step; every `n_critic`-th batch also takes a generator step.
The variants differ only in `loss`, `n_critic`, weight clipping, the gradient penalty and the nets:

  non_saturating  BCE on logits; the generator maximises log D(G(z)) (Goodfellow et al. 2014)
  least_squares   LSGAN: squared distance of the scores to 1 (real) and 0 (fake) (Mao et al. 2017)
  wasserstein     WGAN: the critic maximises E D(real) - E D(fake); `clip_value` clips its weights (Arjovsky et al.)
  wasserstein_gp  WGAN-GP: as above plus a gradient penalty weighted `gradient_penalty_weight` (Gulrajani et al.)

`conditional: true` gives both nets the class label (CGAN). Each net has its own optimizer partial
(`generator_optimizer`, `discriminator_optimizer`); where one is null the run's top-level `optimizer` is used.
The run's `scheduler`, if any, gets one instance per optimizer.
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dlbook.data.spec import DataSpec
from dlbook.errors import DlbookError
from dlbook.tasks.base import Task

LOSSES = ("non_saturating", "least_squares", "wasserstein", "wasserstein_gp")
BATCHES_KEY = "dlbook_gan_batches"  # checkpoint entry: training batches seen, which paces n_critic and sampling


def discriminator_loss(loss: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    if loss == "non_saturating":
        return (F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores))
                + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores)))
    if loss == "least_squares":  # targets b=1 for real, a=0 for fake
        return 0.5 * ((real_scores - 1).pow(2).mean() + fake_scores.pow(2).mean())
    return fake_scores.mean() - real_scores.mean()  # the negated estimate of the Wasserstein distance


def generator_loss(loss: str, fake_scores: torch.Tensor) -> torch.Tensor:
    if loss == "non_saturating":  # -log D(G(z)): log(1 - D(G(z))) has no gradient while D wins easily
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))
    if loss == "least_squares":  # target c=1
        return 0.5 * (fake_scores - 1).pow(2).mean()
    return -fake_scores.mean()


class GANTask(Task):
    accepts = ("labelled_images",)

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 data_spec: DataSpec, optimizer: Callable | None = None, scheduler: dict | None = None,
                 generator_optimizer: Callable | None = None, discriminator_optimizer: Callable | None = None,
                 loss: str = "non_saturating", latent_dim: int = 100, n_critic: int = 1,
                 clip_value: float | None = None, gradient_penalty_weight: float = 10.0, conditional: bool = False,
                 gradient_clip_val: float | None = None, gradient_clip_algorithm: str = "norm",
                 num_fixed_samples: int = 64):
        super().__init__(data_spec, optimizer, scheduler)
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r} is not one of {', '.join(LOSSES)}")
        if n_critic < 1:
            raise DlbookError(f"model.n_critic={n_critic} must be a positive integer")
        if clip_value is not None and loss != "wasserstein":
            raise DlbookError(f"model.clip_value={clip_value} clips a WGAN critic; it needs model.loss=wasserstein, "
                              f"not {loss!r}")
        if self.scheduler_config.get("monitor"):
            raise DlbookError(f"The scheduler watches {self.scheduler_config['monitor']}, which a GAN run does not "
                              f"log; choose scheduler=none, step, cosine or onecycle")
        self.generator_optimizer_factory = generator_optimizer or optimizer
        self.discriminator_optimizer_factory = discriminator_optimizer or optimizer
        self.automatic_optimization = False  # two optimizers, stepped at different rates
        self.loss, self.latent_dim, self.n_critic = loss, latent_dim, n_critic
        self.clip_value, self.gradient_penalty_weight = clip_value, gradient_penalty_weight
        self.gradient_clip_val, self.gradient_clip_algorithm = gradient_clip_val, gradient_clip_algorithm
        self.conditional = conditional
        # The nets see labels only when conditional; num_classes=0 tells them not to.
        num_classes = data_spec.num_classes if conditional else 0
        self.generator = generator(input_shape=data_spec.input_shape, num_classes=num_classes, latent_dim=latent_dim)
        self.discriminator = discriminator(input_shape=data_spec.input_shape, num_classes=num_classes)
        if loss == "wasserstein_gp" and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                            for m in self.discriminator.modules()):
            raise DlbookError("model.loss=wasserstein_gp penalises each sample's gradient, which BatchNorm in the "
                              "critic mixes across the batch; set model.discriminator.norm=layer (or none)")
        self.batches = 0
        # Fixed inputs for sample grids, buffers so that a resumed run keeps drawing the same samples.
        noise, labels = self.sample_inputs(num_fixed_samples)
        self.register_buffer("fixed_noise", noise)
        self.register_buffer("fixed_labels", labels)

    # -- sampling ----------------------------------------------------------------------------------
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)

    def sample_inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n latent vectors; when conditional also their labels, n // classes of each class in turn."""
        if not self.conditional:
            return torch.randn(n, self.latent_dim, device=self.device), None
        per_class = max(1, n // self.data_spec.num_classes)
        labels = torch.arange(self.data_spec.num_classes, device=self.device).repeat_interleave(per_class)
        return torch.randn(len(labels), self.latent_dim, device=self.device), labels

    def grid_columns(self, n: int) -> int:
        """Columns of a grid of n samples from sample_inputs: one row per class when conditional, else square."""
        return n // self.data_spec.num_classes if self.conditional else math.ceil(math.sqrt(n))

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1]. In eval mode, so BatchNorm uses (and does not update) its running statistics."""
        was_training = self.generator.training
        self.generator.eval()
        images = self.generator(noise, labels)
        self.generator.train(was_training)
        return images

    # -- training ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        if self.generator_optimizer_factory is None or self.discriminator_optimizer_factory is None:
            raise DlbookError("A GAN needs model.generator_optimizer and model.discriminator_optimizer, "
                              "or a top-level optimizer for the one left null")
        optimizers = [self.discriminator_optimizer_factory(params=self.discriminator.parameters()),
                      self.generator_optimizer_factory(params=self.generator.parameters())]
        # Under manual optimization Lightning does not step schedulers; the task does (_step_schedulers).
        entries = [self.scheduler_for(optimizer) for optimizer in optimizers]
        return optimizers, [entry["scheduler"] for entry in entries if entry]

    def training_step(self, batch, batch_idx):
        real, labels = batch
        labels = labels if self.conditional else None
        d_optimizer, g_optimizer = self.optimizers()
        generator_step = self.batches % self.n_critic == 0
        noise = torch.randn(len(real), self.latent_dim, device=real.device)
        with torch.set_grad_enabled(generator_step):  # the fakes need a graph only when the generator learns
            fake = self.generator(noise, labels)

        real_scores = self.discriminator(real, labels)
        fake_scores = self.discriminator(fake.detach(), labels)
        d_loss = discriminator_loss(self.loss, real_scores, fake_scores)
        if self.loss.startswith("wasserstein"):
            self._log("train/critic_estimate", real_scores.mean() - fake_scores.mean(), len(real))
        if self.loss == "wasserstein_gp":
            penalty = self.gradient_penalty(real, fake.detach(), labels)
            self._log("train/gp", penalty, len(real))
            d_loss = d_loss + self.gradient_penalty_weight * penalty
        self._optimize(d_optimizer, d_loss)
        if self.clip_value is not None:  # WGAN keeps the critic Lipschitz by clipping its weights
            with torch.no_grad():
                for parameter in self.discriminator.parameters():
                    parameter.clamp_(-self.clip_value, self.clip_value)
        self._log("train/d_loss", d_loss, len(real))

        if generator_step:
            with self.toggled_optimizer(g_optimizer):  # no gradients for the discriminator's weights
                g_loss = generator_loss(self.loss, self.discriminator(fake, labels))
                self._optimize(g_optimizer, g_loss)
            self._log("train/g_loss", g_loss, len(real))
        self.batches += 1

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """E (|grad D(x)| - 1)^2 at points x on random lines between real and fake images."""
        mix = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
        points = (mix * real + (1 - mix) * fake).requires_grad_(True)
        (gradients,) = torch.autograd.grad(self.discriminator(points, labels).sum(), points, create_graph=True)
        return (gradients.flatten(1).norm(dim=1) - 1).pow(2).mean()

    def _optimize(self, optimizer, loss: torch.Tensor) -> None:
        self.watch_loss(loss)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, self.gradient_clip_val, self.gradient_clip_algorithm)
        optimizer.step()

    def _log(self, name: str, value: torch.Tensor, batch_size: int) -> None:
        # Accumulated on the device and reduced once per epoch: no host sync per step.
        self.log(name, value.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)

    def _step_schedulers(self, interval: str) -> None:
        if self.scheduler_config.get("interval", "epoch") != interval:
            return
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        self._step_schedulers("step")

    def on_train_epoch_end(self) -> None:
        self._step_schedulers("epoch")

    # -- checkpoints -------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[BATCHES_KEY] = self.batches

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.batches = checkpoint.get(BATCHES_KEY, 0)
