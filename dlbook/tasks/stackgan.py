"""StackGAN (Zhang et al. 2017; Hands-On Deep Learning Algorithms, ch. 9) on class labels, both stages in one run.

The paper trains Stage I first and then Stage II on the frozen Stage I; here, as in StackGAN++ (Zhang et al.
2018), both stages train together and Stage II's loss reaches Stage I through its input. Each batch:

  discriminators  for each stage, the GAN loss with real images (downsampled 2x for Stage I) scored as real, and
                  fakes and matching-aware pairs (real images with a wrong label, Reed et al. 2016) as fake, the
                  two weighted 1/2 each as in StackGAN's code: loss(real, cat[fake, mismatched])
  generator       the sum over both stages of the GAN loss, + kl_weight * KL of both conditioning augmentations

Only `loss: non_saturating` (the paper's) and `least_squares` apply. The sampling, optimizers, n_critic,
gradient clipping and checkpointing are GANTask's; the sample grids add "stage1", Stage I's images of the same
fixed noise.
"""

import torch
from torch.nn import functional as F

from dlbook.errors import DlbookError
from dlbook.tasks.gan import GANTask, discriminator_loss, generator_loss
from dlbook.utils.modes import eval_mode

LOSSES = ("non_saturating", "least_squares")
STAGES = ("stage1", "stage2")


class StackGANTask(GANTask):
    def __init__(self, *args, loss: str = "non_saturating", conditional: bool = True, kl_weight: float = 1.0,
                 **kwargs):
        if loss not in LOSSES:
            raise DlbookError(f"model.loss={loss!r}: StackGAN trains with {' or '.join(LOSSES)}")
        if not conditional:
            raise DlbookError("StackGAN is conditioned on class labels (they stand in for its text); "
                              "model.conditional must be true")
        super().__init__(*args, loss=loss, conditional=True, **kwargs)
        self.kl_weight = kl_weight

    def training_step(self, batch, batch_idx):
        real, labels = batch
        reals = (F.avg_pool2d(real, 2), real)
        num_classes = self.data_spec.num_classes
        mismatched = (labels + torch.randint_like(labels, 1, num_classes)) % num_classes  # any other class
        d_optimizer, g_optimizer = self.optimizers()
        generator_step = self.batches % self.n_critic == 0
        with torch.set_grad_enabled(generator_step):  # the fakes need a graph only when the generator learns
            *fakes, kl = self.generator.stages(self.random_latent(len(real)), labels)

        nets = [getattr(self.discriminator, stage) for stage in STAGES]
        d_losses = [discriminator_loss(self.loss, net(real_images, labels),
                                       torch.cat([net(fake.detach(), labels), net(real_images, mismatched)]))
                    for net, real_images, fake in zip(nets, reals, fakes)]
        self._optimize(d_optimizer, sum(d_losses))
        self.log_stages("train/d_loss", d_losses, len(real))

        if generator_step:
            with self.toggled_optimizer(g_optimizer):  # no gradients for the discriminators' weights
                g_losses = [generator_loss(self.loss, net(fake, labels)) for net, fake in zip(nets, fakes)]
                self._optimize(g_optimizer, sum(g_losses) + self.kl_weight * kl)
            self.log_stages("train/g_loss", g_losses, len(real))
            self.log_epoch_mean("train/kl_loss", kl, len(real))

    def log_stages(self, name: str, losses: list[torch.Tensor], batch_size: int) -> None:
        """`name`: the sum over the stages; `name`_stage1, `name`_stage2: each stage's."""
        self.log_epoch_mean(name, sum(losses), batch_size)
        for stage, loss in zip(STAGES, losses):
            self.log_epoch_mean(f"{name}_{stage}", loss, batch_size)

    def compiled_modules(self) -> list:
        # training_step calls generator.stages() and each stage's discriminator, not the nets' forward
        generator, discriminator = self.generator, self.discriminator
        return [generator.stage1, generator.encode, generator.refine, discriminator.stage1, discriminator.stage2]

    @torch.no_grad()
    def sample_grids(self) -> dict[str, tuple[torch.Tensor, int]]:
        """"samples": the full-resolution images of the fixed noise; "stage1": Stage I's images of the same."""
        with eval_mode(self.generator):
            low_res, high_res, _ = self.generator.stages(self.fixed_noise, self.fixed_labels)
        columns = self.grid_columns(len(self.fixed_noise))
        return {"samples": (high_res, columns), "stage1": (low_res, columns)}
