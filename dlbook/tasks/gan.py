"""Generative adversarial networks: one task for every variant, trained with Lightning's manual optimization.

Every batch takes one discriminator (critic) step; every `n_critic`-th batch also takes a generator step.
The variants differ only in `loss`, `n_critic`, weight clipping, the gradient penalty and the nets:

  non_saturating  BCE on logits; the generator maximises log D(G(z)) (Goodfellow et al. 2014)
  least_squares   LSGAN: squared distance of the scores to 1 (real) and 0 (fake) (Mao et al. 2017)
  wasserstein     WGAN: the critic maximises E D(real) - E D(fake); `clip_value` clips its weights (Arjovsky et al.)
  wasserstein_gp  WGAN-GP: as above plus a gradient penalty weighted `gradient_penalty_weight` (Gulrajani et al.)

`conditional: true` gives both nets the class label (CGAN). `train_generator: false` trains the discriminator
alone against the untrained generator's fakes (the DL Workshop's Ex. 7.03); `log_accuracy: true` logs the
discriminator's accuracy on the real and on the fake half of each batch (train/d_real_acc, train/d_fake_acc),
which the Workshop prints. VectorGANTask is the same GAN on unlabelled vectors (data of kind vectors).

InfoGAN (Chen et al. 2016) appends latent codes to the noise, a one-hot categorical code of `categorical_code`
classes and `continuous_codes` codes ~ U(-1, 1), and a Q head (`q_head`) on the discriminator's features predicts
them. The mutual-information loss, -log Q(c | G(z, c)) (cross-entropy, and a unit-variance Gaussian for the
continuous codes, both up to a constant), is weighted `info_weight` and added to the generator's loss; the Q
head's parameters are in the generator's optimizer, so it trains G and Q, while the discriminator's shared layers
learn from the adversarial loss only.

Each net has its own optimizer partial
(`generator_optimizer`, `discriminator_optimizer`); where one is null the run's top-level `optimizer` is used.
The run's `scheduler`, if any, gets one instance per optimizer.
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dlbook.data.spec import DataSpec, ImageSpec, VectorSpec
from dlbook.errors import DlbookError, IncompatibleDataError, check_count, check_gradient_clip_val, check_number
from dlbook.plots import decision_regions, new_figure, scatter
from dlbook.tasks.base import ManualOptimizationTask
from dlbook.utils.modes import eval_mode

LOSSES = ("non_saturating", "least_squares", "wasserstein", "wasserstein_gp")
SWEEP_STEPS = 10  # columns of an InfoGAN continuous code's grid


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


class GANTask(ManualOptimizationTask):
    accepts = (ImageSpec,)
    summary_metrics = (("val/fid", "FID"), ("val/frechet_distance", "Frechet distance in classifier features"))

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 data_spec: DataSpec, optimizer: Callable | None = None, scheduler: dict | None = None,
                 generator_optimizer: Callable | None = None, discriminator_optimizer: Callable | None = None,
                 loss: str = "non_saturating", latent_dim: int = 100, n_critic: int = 1,
                 clip_value: float | None = None, gradient_penalty_weight: float = 10.0, conditional: bool = False,
                 gradient_clip_val: float | None = None, gradient_clip_algorithm: str = "norm",
                 num_fixed_samples: int = 64, categorical_code: int = 0, continuous_codes: int = 0,
                 info_weight: float = 1.0, q_head: Callable[..., nn.Module] | None = None,
                 train_generator: bool = True, log_accuracy: bool = False):
        super().__init__(data_spec, optimizer, scheduler)
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r} is not one of {', '.join(LOSSES)}")
        check_count("model.n_critic", n_critic)
        check_count("model.latent_dim", latent_dim, note=" (the noise the generator starts from)")
        check_count("model.num_fixed_samples", num_fixed_samples)
        check_count("model.categorical_code", categorical_code, least=0)
        check_count("model.continuous_codes", continuous_codes, least=0)
        for key, weight in (("gradient_penalty_weight", gradient_penalty_weight), ("info_weight", info_weight)):
            check_number(f"model.{key}", weight, least=0, note=" (a negative weight rewards what it penalises)")
        check_gradient_clip_val("model.gradient_clip_val", gradient_clip_val)
        if clip_value is not None:  # clamping to [c, -c] with c <= 0 sets every weight to -c
            check_number("model.clip_value", clip_value, above=0)
        if clip_value is not None and loss != "wasserstein":
            raise DlbookError(f"model.clip_value={clip_value} clips a WGAN critic; it needs model.loss=wasserstein, "
                              f"not {loss!r}")
        if self.scheduler_config.get("monitor"):
            raise DlbookError(f"The scheduler watches {self.scheduler_config['monitor']}, which a GAN run does not "
                              f"log; choose scheduler=none, step, cosine or onecycle")
        if (categorical_code or continuous_codes) and (q_head is None or conditional):
            raise DlbookError("InfoGAN's codes (model.categorical_code, model.continuous_codes) need a model.q_head "
                              "and take the place of labels: model.conditional must be false")
        if log_accuracy and loss.startswith("wasserstein"):
            raise DlbookError(f"model.log_accuracy=true needs a discriminator that classifies; a WGAN critic "
                              f"(model.loss={loss}) scores without a threshold: set model.log_accuracy=false")
        self.generator_optimizer_factory = generator_optimizer or optimizer
        self.discriminator_optimizer_factory = discriminator_optimizer or optimizer
        self.loss, self.latent_dim, self.n_critic = loss, latent_dim, n_critic
        self.clip_value, self.gradient_penalty_weight = clip_value, gradient_penalty_weight
        self.gradient_clip_val, self.gradient_clip_algorithm = gradient_clip_val, gradient_clip_algorithm
        self.conditional = conditional
        self.train_generator, self.log_accuracy = train_generator, log_accuracy
        self.categorical_code, self.continuous_codes, self.info_weight = categorical_code, continuous_codes, info_weight
        code_width = categorical_code + continuous_codes
        # The nets see labels only when conditional; num_classes=0 tells them not to.
        num_classes = data_spec.num_classes if conditional else 0
        self.generator = generator(input_shape=data_spec.input_shape, num_classes=num_classes,
                                   latent_dim=latent_dim + code_width)
        self.discriminator = discriminator(input_shape=data_spec.input_shape, num_classes=num_classes)
        self.q_head = (q_head(in_features=self.discriminator.feature_dim, out_features=code_width)
                       if code_width else None)
        if loss == "wasserstein_gp" and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                            for m in self.discriminator.modules()):
            raise DlbookError("model.loss=wasserstein_gp penalises each sample's gradient, which BatchNorm in the "
                              "critic mixes across the batch; set model.discriminator.norm=layer (or none)")
        # Fixed inputs for sample grids, buffers so that a resumed run keeps drawing the same samples.
        noise, labels = self.sample_inputs(num_fixed_samples)
        self.register_buffer("fixed_noise", noise)
        self.register_buffer("fixed_labels", labels)
        self.register_buffer("fixed_sweeps", self.code_sweeps() if continuous_codes else None)

    # -- sampling ----------------------------------------------------------------------------------
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, labels)

    def with_codes(self, noise: torch.Tensor, categories: torch.Tensor | None = None,
                   continuous: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's input: noise, then InfoGAN's one-hot categorical code and continuous codes."""
        parts = [noise]
        if self.categorical_code:
            parts.append(F.one_hot(categories, self.categorical_code).to(noise.dtype))
        if self.continuous_codes:
            parts.append(continuous)
        return torch.cat(parts, dim=1)

    def random_latent(self, n: int) -> torch.Tensor:
        """n generator inputs drawn from the priors: N(0, 1) noise, uniform categories, U(-1, 1) codes."""
        noise = torch.randn(n, self.latent_dim, device=self.device)
        if self.q_head is None:
            return noise
        categories = torch.randint(self.categorical_code, (n,), device=self.device) if self.categorical_code else None
        return self.with_codes(noise, categories, torch.rand(n, self.continuous_codes, device=self.device) * 2 - 1)

    def sample_inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n generator inputs; when conditional also their labels. Conditional GANs and InfoGANs with a categorical
        code give n // classes of each class (category) in turn; InfoGAN's continuous codes are then 0."""
        rows = self.data_spec.num_classes if self.conditional else self.categorical_code
        if not rows:
            return self.random_latent(n), None
        classes = torch.arange(rows, device=self.device).repeat_interleave(max(1, n // rows))
        noise = torch.randn(len(classes), self.latent_dim, device=self.device)
        if self.conditional:
            return noise, classes
        return self.with_codes(noise, classes, noise.new_zeros(len(classes), self.continuous_codes)), None

    def code_sweeps(self, steps: int = SWEEP_STEPS) -> torch.Tensor:
        """(continuous codes, rows * steps, input width): for each continuous code one grid of inputs sharing one
        noise vector, a row per category, the code swept from -1 to 1 along the row and the other codes at 0."""
        categories = torch.arange(max(1, self.categorical_code), device=self.device).repeat_interleave(steps)
        values = torch.linspace(-1, 1, steps, device=self.device).repeat(len(categories) // steps)
        noise = torch.randn(1, self.latent_dim, device=self.device).expand(len(categories), -1)
        sweeps = []
        for code in range(self.continuous_codes):
            continuous = noise.new_zeros(len(categories), self.continuous_codes)
            continuous[:, code] = values
            sweeps.append(self.with_codes(noise, categories, continuous))
        return torch.stack(sweeps)

    def grid_columns(self, n: int) -> int:
        """Columns of a grid of n samples from sample_inputs: one row per class (category) where sample_inputs
        groups them, else square."""
        rows = self.data_spec.num_classes if self.conditional else self.categorical_code
        return n // rows if rows else math.ceil(math.sqrt(n))

    def sample_grids(self) -> dict[str, tuple[torch.Tensor, int]]:
        """The grids the sample-grid callback writes, by name: (images, columns). "samples" from the fixed noise,
        and for InfoGAN "code_<i>" sweeping continuous code i (from 1)."""
        grids = {"samples": (self.generate(self.fixed_noise, self.fixed_labels),
                             self.grid_columns(len(self.fixed_noise)))}
        for code, inputs in enumerate(self.fixed_sweeps if self.fixed_sweeps is not None else [], start=1):
            grids[f"code_{code}"] = (self.generate(inputs), SWEEP_STEPS)
        return grids

    def sample(self, n: int, inputs: torch.Tensor | None = None, **options) -> tuple[torch.Tensor, int, torch.Tensor]:
        if inputs is not None:
            raise DlbookError("input= is for models that transform images, such as a CycleGAN; a GAN draws from "
                              "noise: leave input= out.")
        noise, labels = self.sample_inputs(n)
        images = self.generate(noise, labels)
        return images, self.grid_columns(len(noise)), images

    def export_example(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        """The generator, from noise (and class labels, conditional) to images in [-1, 1]."""
        noise = self.fixed_noise[:2].cpu()
        return self.generator, (noise, torch.zeros(2, dtype=torch.long)) if self.conditional else (noise,)

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1], drawn in eval mode."""
        with eval_mode(self.generator):
            return self.generator(noise, labels)

    # -- training ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        if self.generator_optimizer_factory is None or self.discriminator_optimizer_factory is None:
            raise DlbookError("A GAN needs model.generator_optimizer and model.discriminator_optimizer, "
                              "or a top-level optimizer for the one left null")
        generator_side = [*self.generator.parameters(), *(self.q_head.parameters() if self.q_head else [])]
        optimizers = [self.build_optimizer(self.discriminator_optimizer_factory, self.discriminator.parameters(),
                                           "model.discriminator_optimizer"),
                      self.build_optimizer(self.generator_optimizer_factory, generator_side, "model.generator_optimizer")]
        # Under manual optimization Lightning does not step schedulers; the task does (step_schedulers).
        entries = [self.scheduler_for(optimizer) for optimizer in optimizers]
        return optimizers, [entry["scheduler"] for entry in entries if entry]

    def compile_nets(self, mode: str) -> None:
        if self.loss == "wasserstein_gp":
            raise DlbookError("torch.compile cannot train model.loss=wasserstein_gp: its gradient penalty "
                              "differentiates the critic's gradients (double backward), which torch.compile does "
                              "not support. Set compile=false.")
        super().compile_nets(mode)

    def training_step(self, batch, batch_idx):
        real, labels = batch[0], batch[1] if self.conditional else None
        d_optimizer, g_optimizer = self.optimizers()
        generator_step = self.train_generator and self.batches % self.n_critic == 0
        latent = self.random_latent(len(real))
        with torch.set_grad_enabled(generator_step):  # the fakes need a graph only when the generator learns
            fake = self.generator(latent, labels)

        real_scores = self.discriminator(real, labels)
        fake_scores = self.discriminator(fake.detach(), labels)
        d_loss = discriminator_loss(self.loss, real_scores, fake_scores)
        if self.loss.startswith("wasserstein"):
            self.log_epoch_mean("train/critic_estimate", real_scores.mean() - fake_scores.mean(), len(real))
        if self.loss == "wasserstein_gp":
            penalty = self.gradient_penalty(real, fake.detach(), labels)
            self.log_epoch_mean("train/gp", penalty, len(real))
            d_loss = d_loss + self.gradient_penalty_weight * penalty
        self._optimize(d_optimizer, d_loss)
        if self.clip_value is not None:  # WGAN keeps the critic Lipschitz by clipping its weights
            with torch.no_grad():
                for parameter in self.discriminator.parameters():
                    parameter.clamp_(-self.clip_value, self.clip_value)
        self.log_epoch_mean("train/d_loss", d_loss, len(real))
        if self.log_accuracy:
            self.log_epoch_mean("train/d_real_acc", (real_scores > self.threshold).float().mean(), len(real))
            self.log_epoch_mean("train/d_fake_acc", (fake_scores <= self.threshold).float().mean(), len(real))

        if generator_step:
            with self.toggled_optimizer(g_optimizer):  # no gradients for the discriminator's weights
                if self.q_head is None:
                    g_loss = generator_loss(self.loss, self.discriminator(fake, labels))
                    self._optimize(g_optimizer, g_loss)
                else:
                    features = self.discriminator.features(fake, labels)
                    g_loss = generator_loss(self.loss, self.discriminator.score(features))
                    info_loss = self.info_loss(self.q_head(features), latent)
                    self._optimize(g_optimizer, g_loss + self.info_weight * info_loss)
                    self.log_epoch_mean("train/info_loss", info_loss, len(real))
            self.log_epoch_mean("train/g_loss", g_loss, len(real))

    @property
    def threshold(self) -> float:
        """The score above which the discriminator calls a sample real: the midpoint of LSGAN's targets 1 and 0,
        else a logit of 0 (a probability of 0.5)."""
        return 0.5 if self.loss == "least_squares" else 0.0

    def info_loss(self, q_outputs: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """-log Q(c | x) up to a constant, averaged over the batch: the categorical code's cross-entropy plus half
        the squared error of the continuous codes' means (a Gaussian of unit variance)."""
        codes, k = latent[:, self.latent_dim:], self.categorical_code
        loss = 0.5 * (q_outputs[:, k:] - codes[:, k:]).pow(2).sum(dim=1).mean()
        if k:
            loss = loss + F.cross_entropy(q_outputs[:, :k], codes[:, :k].argmax(dim=1))
        return loss

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


class VectorGANTask(GANTask):
    """The GAN on unlabelled vectors (e.g. data=sine): what it makes are points, not images, so there are no sample
    grids to write; when training ends, its figure `samples` scatters the generated points of the fixed noise over
    the last batch of real ones, on the discriminator's decision regions (where it calls points real)."""

    accepts = (VectorSpec,)
    summary_metrics = ()

    def __init__(self, data_spec: DataSpec, conditional: bool = False, **kwargs):
        if conditional:
            raise IncompatibleDataError("model.conditional=true needs class labels, and vectors have none")
        super().__init__(data_spec=data_spec, **kwargs)
        self.last_real: torch.Tensor | None = None  # for the figure; not kept in checkpoints

    def training_step(self, batch, batch_idx):
        self.last_real = batch[0]
        super().training_step(batch, batch_idx)

    def sample_grids(self):
        raise DlbookError(f"{type(self).__name__} makes vectors, not images: there are no sample grids (its figure "
                          f"`samples` shows the points); remove callbacks.sample_grid")

    def sample(self, n: int, inputs: torch.Tensor | None = None, **options):
        raise DlbookError("this GAN makes vectors, not images, so there is no grid to write; its run directory's "
                          "figures/samples.png scatters generated points over real ones")

    def figures(self, stage: str) -> dict:
        if stage != "fit" or self.data_spec.dim != 2:
            return {}
        figure, axes = new_figure()
        fake = self.generate(self.fixed_noise)
        shown = fake if self.last_real is None else torch.cat([self.last_real, fake])
        with eval_mode(self.discriminator):
            decision_regions(axes, lambda grid: (self.discriminator(grid.to(self.device)) > self.threshold).long(),
                             shown)
        if self.last_real is not None:
            scatter(axes, self.last_real, color="tab:red", label="real")
        scatter(axes, fake, color="tab:blue", label=f"generated (batch {self.batches})")
        names = self.data_spec.feature_names or ("feature 1", "feature 2")
        axes.set(xlabel=names[0], ylabel=names[1], title="Shaded orange: where the discriminator calls points real")
        axes.legend(fontsize="small")
        return {"samples": figure}
