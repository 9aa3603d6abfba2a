"""Autoencoders: a net trained to give back its input (Hands-On ch. 10; Pro DL ch. 5; TF 1.x Cookbook ch. 8 and 11;
Advanced DL ch. 5). The images arrive in [0, 1] (conf/family/reconstruction.yaml) and the nets give pixel logits,
so the loss is binary cross-entropy on the logits or the squared error of their sigmoid; every stage also logs
the reconstruction's mean squared error per pixel, `<stage>/mse`, by which runs and books are compared.
Figures: inputs over their reconstructions, and the test set's codes coloured by class."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MinMetric

from dlbook.data.spec import DataSpec, ImageSpec
from dlbook.errors import DlbookError, check_count, check_number
from dlbook.plots import image_grid, new_figure, principal_plane, scatter
from dlbook.tasks.base import LossTask
from dlbook.tasks.pretraining import greedy_layer

LOSSES = ("bce", "mse")
CODES_DRAWN = 2000  # test codes in the codes figure


def pixel_losses(logits: torch.Tensor, images: torch.Tensor, loss: str) -> torch.Tensor:
    """The loss of each pixel, shaped as the images."""
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, images, reduction="none")
    return (torch.sigmoid(logits) - images).square()


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) of each row, in closed form. Pro DL's code averages
    log_var - mean^2 - exp(log_var) + 0.5 log_var^2 over the dimensions instead, which is not this divergence."""
    return -0.5 * (1 + log_var - mean.square() - log_var.exp()).sum(dim=1)


class ReconstructionTask(LossTask):
    """`loss`: bce or mse, averaged over the pixels. `corruption` (a denoising autoencoder): noise applied to the
    inputs of every stage on the device, the clean images the target; `<stage>/noise_mse` is then the noisy
    input's own error, the level a denoiser must beat. `penalty`: a term on the code added to the loss (sparsity,
    contraction), logged as `<stage>/penalty`. `layerwise_epochs` > 0: greedy layer-wise pretraining of a stacked
    net first, that many epochs for each layer (the layers below it fixed), then the whole net."""

    accepts = (ImageSpec,)
    summary_metrics = (("test/mse", "Test reconstruction MSE"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, loss: str = "bce", corruption: Callable | None = None,
                 penalty: Callable | None = None, layerwise_epochs: int = 0, shown: int = 8):
        super().__init__(data_spec, optimizer, scheduler)
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r} is not one of {', '.join(LOSSES)}.")
        check_count("model.layerwise_epochs", layerwise_epochs, least=0, note=" (epochs per layer)")
        self.net = self.build_net(net, data_spec)
        if penalty is not None and hasattr(penalty, "check"):
            penalty.check(self.net)
        if layerwise_epochs and not hasattr(self.net, "layer_reconstruction"):
            raise DlbookError(f"model.layerwise_epochs={layerwise_epochs}: {type(self.net).__name__} has no layers "
                              f"to pretrain one by one; stacked MLP autoencoders (model=deep_ae) do.")
        self.loss, self.corruption, self.penalty = loss, corruption, penalty
        self.layerwise_epochs = layerwise_epochs
        self.shown = shown
        self.val_mse_best = self.best_of_run(MinMetric)
        self.examples: dict[str, list[torch.Tensor]] = {}  # stage -> [inputs, (noisy,) outputs] of its first batch
        self.test_codes: list[tuple[torch.Tensor, torch.Tensor]] = []  # (codes, labels), on the CPU
        self.eval_generators: dict[str, torch.Generator] = {}

    def build_net(self, net: Callable[..., nn.Module], data_spec: ImageSpec) -> nn.Module:
        return net(input_shape=data_spec.input_shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstructions' pixel logits."""
        return self.net(images)

    def corrupt(self, images: torch.Tensor, stage: str = "train") -> torch.Tensor:
        return self.corruption(images, self.draws(stage)) if self.corruption is not None else images

    def draws(self, stage: str) -> torch.Generator | None:
        """Where a stage's random draws (noise, codes) come from: torch's stream in training, a generator seeded
        afresh at each validation and test epoch otherwise, so eval.py measures the same draws train.py did."""
        return None if stage == "train" else self.eval_generators[stage]

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        inputs = self.corrupt(images, stage)
        layer = (greedy_layer(self.current_epoch, self.layerwise_epochs, self.net.depth)
                 if stage == "train" and self.layerwise_epochs else None)
        if layer is None:
            code = self.net.encode(inputs)
            logits = self.net.decode(code)
        elif layer == 0:  # greedy pretraining's first layer reconstructs the images, its code unpenalised
            code, logits = None, self.net.layer_reconstruction(0, inputs)
        else:
            return self.layer_loss(images, inputs, layer)
        loss = pixel_losses(logits, images, self.loss).mean()
        if self.penalty is not None and code is not None:
            penalty = self.penalty(self.net, inputs, code)
            self.log_epoch_mean(f"{stage}/penalty", penalty, len(images))
            loss = loss + penalty
        self.log_epoch_mean(f"{stage}/loss", loss, len(images))
        self.log_outputs(stage, images, inputs, logits)
        if stage == "test" and sum(len(codes) for codes, _ in self.test_codes) < CODES_DRAWN:
            self.test_codes.append((code.detach().flatten(1).float().cpu(), labels.cpu()))
        return loss

    def layer_loss(self, images: torch.Tensor, inputs: torch.Tensor, layer: int) -> torch.Tensor:
        """Greedy pretraining of a layer above the first: the squared error of its reconstruction of the (fixed)
        outputs of the layers below. train/mse is still the whole net's."""
        with torch.no_grad():
            below = inputs.flatten(1)
            for index in range(layer):
                below = self.net.encode_layer(index, below)
        loss = F.mse_loss(self.net.layer_reconstruction(layer, below), below)
        self.log_epoch_mean("train/loss", loss, len(inputs))
        with torch.no_grad():  # where the whole net stands meanwhile
            whole = torch.sigmoid(self.net(inputs))
            self.log_epoch_mean("train/mse", F.mse_loss(whole, images), len(images))
        return loss

    def log_outputs(self, stage: str, images: torch.Tensor, inputs: torch.Tensor, logits: torch.Tensor) -> None:
        """Log the reconstruction's MSE per pixel (and the noisy input's), and keep the stage's first images."""
        outputs = torch.sigmoid(logits.detach())
        self.log_epoch_mean(f"{stage}/mse", F.mse_loss(outputs, images), len(images))
        if self.corruption is not None:
            self.log_epoch_mean(f"{stage}/noise_mse", F.mse_loss(inputs, images), len(images))
        if stage != "train" and stage not in self.examples:
            kept = [images, inputs, outputs] if self.corruption is not None else [images, outputs]
            self.examples[stage] = [part[:self.shown].detach().float().cpu() for part in kept]

    def on_validation_epoch_start(self) -> None:
        self.examples.pop("val", None)
        self.eval_generators["val"] = torch.Generator(device=self.device).manual_seed(0)

    def on_test_epoch_start(self) -> None:
        self.examples.pop("test", None)
        self.test_codes = []
        self.eval_generators["test"] = torch.Generator(device=self.device).manual_seed(0)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if "val/mse" in self.epoch_means:
            self.log_best("val/mse", self.epoch_means["val/mse"], self.val_mse_best)

    # -- what people look at ------------------------------------------------------------------------------
    def figures(self, stage: str) -> dict:
        split = "val" if stage == "fit" else "test"
        figures = {}
        if split in self.examples:
            rows = self.examples[split]
            titles = ["input", "noisy", "output"] if len(rows) == 3 else ["input", "output"]
            figures[f"reconstructions_{split}"] = image_grid(
                [image for row in rows for image in row],
                [title for title, row in zip(titles, rows) for _ in row], columns=len(rows[0]))
        if stage == "test" and self.test_codes:
            figures["codes_test"] = self.codes_figure()
        return figures

    def codes_figure(self):
        codes = torch.cat([codes for codes, _ in self.test_codes])[:CODES_DRAWN]
        labels = torch.cat([labels for _, labels in self.test_codes])[:CODES_DRAWN]
        figure, axes = new_figure(6, 5)
        scatter(axes, principal_plane(codes), labels, self.data_spec.class_names)
        width = codes.shape[1]
        axes.set(title=f"Test images' {width}-D codes" + (", first two principal components" if width > 2 else ""))
        return figure

    def sample(self, n: int, inputs: torch.Tensor | None = None, **options) -> tuple[torch.Tensor, int, torch.Tensor]:
        """Reconstructions of `inputs`: a grid of the inputs over (their noisy versions and) their reconstructions,
        in [-1, 1]."""
        if inputs is None:
            raise DlbookError("an autoencoder reconstructs images it is given, it does not draw new ones: pass "
                              "input=<folder of images> (a VAE or an RBM draws samples).")
        with torch.no_grad():
            noisy = self.corrupt(inputs.to(self.device))
            outputs = torch.sigmoid(self(noisy))
        rows = [inputs.to(self.device), *([noisy] if self.corruption is not None else []), outputs]
        return torch.cat(rows).cpu() * 2 - 1, len(inputs), outputs.cpu() * 2 - 1

    @torch.no_grad()
    def embeddings(self, kind: str = "codes", limit: int | None = None, datamodule=None
                   ) -> tuple[torch.Tensor, list[str]]:
        """(codes (N, D), class names) of the first `limit` test images (scripts/embed.py)."""
        if kind != "codes":
            raise DlbookError(f"kind={kind!r}: an autoencoder's vectors are its codes (kind=codes).")
        if datamodule.data_test is None:
            datamodule.setup("test")
        count = len(datamodule.data_test) if limit is None else min(limit, len(datamodule.data_test))
        images, labels = datamodule.on_after_batch_transfer(datamodule.data_test.__getitems__(list(range(count))), 0)
        codes = self.codes(images.to(self.device), labels.to(self.device))
        names = self.data_spec.class_names
        return codes.flatten(1).float().cpu(), [names[i] if i < len(names) else str(i) for i in labels.tolist()]

    def codes(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net.encode(images)


class VAETask(ReconstructionTask):
    """A variational autoencoder trained on the negative ELBO per image, reconstruction (the pixel losses summed, as
    the books' BCE * 784) plus `beta` times the closed-form KL(q(z|x) || N(0, I)); `<stage>/loss` is that sum,
    `<stage>/reconstruction` and `<stage>/kl` its terms. `conditional`: a CVAE, given the labels. Figures add
    samples from the prior (one row per class when conditional) and, for a 2-D code, the latent manifold: images
    decoded on a `manifold_size` x `manifold_size` grid of the prior's quantiles."""

    summary_metrics = (("test/loss", "Test negative ELBO per image"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, loss: str = "bce", beta: float = 1.0, conditional: bool = False,
                 corruption: Callable | None = None, shown: int = 8, manifold_size: int = 20):
        check_number("model.beta", beta, least=0, note=" (the KL term's weight; a negative one rewards codes far "
                                                       "from the prior)")
        check_count("model.manifold_size", manifold_size, note=" (the latent manifold's rows and columns)")
        self.conditional = conditional
        super().__init__(net, data_spec, optimizer, scheduler, loss=loss, corruption=corruption, shown=shown)
        self.beta, self.manifold_size = beta, manifold_size

    def build_net(self, net: Callable[..., nn.Module], data_spec: ImageSpec) -> nn.Module:
        return net(input_shape=data_spec.input_shape, num_classes=data_spec.num_classes if self.conditional else 0)

    def given(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels if self.conditional else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images, labels)

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        inputs, given = self.corrupt(images, stage), self.given(labels)
        mean, log_var = self.net.encode(inputs, given)
        noise = torch.randn(mean.shape, generator=self.draws(stage), device=mean.device, dtype=mean.dtype)
        z = mean + noise * torch.exp(0.5 * log_var)  # the reparameterisation trick
        logits = self.net.decode(z, given)
        reconstruction = pixel_losses(logits, images, self.loss).flatten(1).sum(dim=1)
        kl = gaussian_kl(mean, log_var)
        loss = (reconstruction + self.beta * kl).mean()
        self.log_epoch_mean(f"{stage}/loss", loss, len(images))
        self.log_epoch_mean(f"{stage}/reconstruction", reconstruction.mean(), len(images))
        self.log_epoch_mean(f"{stage}/kl", kl.mean(), len(images))
        self.log_outputs(stage, images, inputs, logits)
        if stage == "test" and sum(len(codes) for codes, _ in self.test_codes) < CODES_DRAWN:
            self.test_codes.append((mean.detach().float().cpu(), labels.cpu()))
        return loss

    def codes(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net.encode(images, self.given(labels))[0]

    @torch.no_grad()
    def decoded(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] decoded from codes z, in eval mode."""
        training = self.net.training
        self.net.eval()
        try:
            return torch.sigmoid(self.net.decode(z.to(self.device), labels)).cpu()
        finally:
            self.net.train(training)

    def prior_samples(self, n: int) -> tuple[torch.Tensor, int]:
        """n images decoded from z ~ N(0, I) (n // classes of each class in turn when conditional), and the
        grid's columns."""
        if not self.conditional:
            return self.decoded(torch.randn(n, self.net.latent_dim)), max(1, round(n ** 0.5))
        classes = self.data_spec.num_classes
        labels = torch.arange(classes).repeat_interleave(max(1, n // classes))
        return self.decoded(torch.randn(len(labels), self.net.latent_dim), labels.to(self.device)), max(1, n // classes)

    def sample(self, n: int, inputs: torch.Tensor | None = None, **options) -> tuple[torch.Tensor, int, torch.Tensor]:
        """n samples from the prior; with `inputs`, their reconstructions (unconditional VAEs)."""
        if inputs is not None:
            if self.conditional:
                raise DlbookError("a conditional VAE reconstructs an image given its label, which input= files do "
                                  "not carry: leave input= out to draw samples of each class.")
            return super().sample(n, inputs)
        images, columns = self.prior_samples(n)
        return images * 2 - 1, columns, images * 2 - 1

    def figures(self, stage: str) -> dict:
        figures = super().figures(stage)
        if stage != "fit":
            return figures
        with torch.random.fork_rng():  # the same codes at every run's end, so runs can be compared by eye
            torch.manual_seed(0)
            images, columns = self.prior_samples(64 if not self.conditional else 8 * self.data_spec.num_classes)
        figures["samples"] = image_grid(list(images), [""] * len(images), columns=columns)
        if self.net.latent_dim == 2 and not self.conditional:
            figures["latent_manifold"] = self.manifold_figure()
        return figures

    def manifold_figure(self):
        """Images decoded on a grid of z over the prior's quantiles 0.05 ... 0.95 in each dimension."""
        quantiles = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, self.manifold_size))
        z2, z1 = torch.meshgrid(quantiles.flip(0), quantiles, indexing="ij")  # z2 grows upwards
        images = self.decoded(torch.stack([z1.flatten(), z2.flatten()], dim=1))
        return image_grid(list(images), [""] * len(images), columns=self.manifold_size)
