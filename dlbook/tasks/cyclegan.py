"""CycleGAN (Zhu et al. 2017): unpaired translation between image domains A and B, with manual optimization.

Two generators, G_AB: A -> B and G_BA: B -> A, and two discriminators: D_A tells real A images from G_BA's
fakes, D_B real B images from G_AB's.
Each batch (real A, real B) takes one step of both generators together, then one of both discriminators:

  generators      LSGAN  (D_B(G_AB(a)) - 1)^2 + (D_A(G_BA(b)) - 1)^2
                + cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)            (L1, means)
                + identity_weight * cycle_weight * (|G_AB(b) - b| + |G_BA(a) - a|)
  discriminators  LSGAN  0.5 (D(real) - 1)^2 + 0.5 D(fake)^2, for each; the fakes come through an image pool

Each discriminator sees fakes from a pool of the last `pool_size` ones (Shrivastava et al. 2017), which damps
oscillation. The pools are buffers, so a checkpoint holds them and a resumed run continues with them.
"""

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dlbook.data.spec import DataSpec, UnpairedImageSpec
from dlbook.errors import DlbookError, check_count
from dlbook.tasks.base import ManualOptimizationTask
from dlbook.tasks.gan import discriminator_loss
from dlbook.utils.modes import eval_mode

TRANSLATION_COLUMNS = 8  # of the grids of scripts/sample.py
FIXED_KEY = "dlbook_cyclegan_fixed_count"  # checkpoint entry: how many of the fixed A images have been taken


class ImagePool(nn.Module):
    """The last `size` fakes shown to a discriminator. Once full, each new fake is, with probability 1/2, shown
    as is, else swapped for a random stored one, which is shown instead. No host sync: the fill count is a
    Python int (in the state dict as extra state), the swaps are drawn on the device."""

    def __init__(self, size: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.filled = 0

    def forward(self, fakes: torch.Tensor) -> torch.Tensor:
        fakes = fakes.detach().to(self.images.dtype)
        size = len(self.images)
        fresh = min(len(fakes), size - self.filled)  # while filling up, store and show them as they are
        self.images[self.filled:self.filled + fresh] = fakes[:fresh]
        self.filled += fresh
        rest = fakes[fresh:]
        if len(rest) == 0:
            return fakes
        swap = (torch.rand(len(rest), device=rest.device) < 0.5)[:, None, None, None]
        slots = torch.randint(size, (len(rest),), device=rest.device)
        stored = self.images[slots]
        self.images[slots] = torch.where(swap, rest, stored)
        return torch.cat([fakes[:fresh], torch.where(swap, stored, rest)])

    def get_extra_state(self) -> int:
        return self.filled

    def set_extra_state(self, state: int) -> None:
        self.filled = state


def generator_adversarial_loss(scores: torch.Tensor) -> torch.Tensor:
    # Zhu et al.'s LSGAN generator term, without the 1/2 of gan.generator_loss: it balances cycle_weight 10.
    return F.mse_loss(scores, torch.ones_like(scores))


class CycleGANTask(ManualOptimizationTask):
    accepts = (UnpairedImageSpec,)

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 data_spec: DataSpec, optimizer: Callable | None = None, scheduler: dict | None = None,
                 generator_optimizer: Callable | None = None, discriminator_optimizer: Callable | None = None,
                 cycle_weight: float = 10.0, identity_weight: float = 0.5, pool_size: int = 50,
                 num_fixed_samples: int = 8):
        super().__init__(data_spec, optimizer, scheduler)
        if self.scheduler_config.get("monitor"):
            raise DlbookError(f"The scheduler watches {self.scheduler_config['monitor']}, which a CycleGAN run "
                              f"does not log; choose scheduler=linear_decay, none, step or cosine")
        check_count("model.pool_size", pool_size, note=" (images)")
        self.generator_optimizer_factory = generator_optimizer or optimizer
        self.discriminator_optimizer_factory = discriminator_optimizer or optimizer
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        shape = data_spec.input_shape
        self.generator_ab, self.generator_ba = generator(input_shape=shape), generator(input_shape=shape)
        self.discriminator_a, self.discriminator_b = discriminator(input_shape=shape), discriminator(input_shape=shape)
        self.pool_a, self.pool_b = ImagePool(pool_size, shape), ImagePool(pool_size, shape)
        # The first training images of A, translated A -> B -> A in every sample grid; a buffer, so a resumed
        # run keeps showing the same ones.
        self.register_buffer("fixed_images", torch.zeros(num_fixed_samples, *shape))
        self.fixed_count = 0

    # -- translating -------------------------------------------------------------------------------
    def forward(self, images_a: torch.Tensor) -> torch.Tensor:
        return self.generator_ab(images_a)

    @torch.no_grad()
    def translate_and_back(self, images: torch.Tensor, direction: str = "AB") -> tuple[torch.Tensor, torch.Tensor]:
        """(G_AB(a), G_BA(G_AB(a))) for A images, or with direction="BA" (G_BA(b), G_AB(G_BA(b))) for B images,
        in eval mode; the nets' InstanceNorm keeps no running statistics, so this matters only to nets given
        dropout."""
        there, back = {"AB": (self.generator_ab, self.generator_ba),
                       "BA": (self.generator_ba, self.generator_ab)}[direction]
        with eval_mode(self):
            translated = there(images)
            return translated, back(translated)

    def sample(self, n: int, inputs: torch.Tensor | None = None, direction: str = "AB",
               **options) -> tuple[torch.Tensor, int, torch.Tensor]:
        """The first n inputs translated a block of TRANSLATION_COLUMNS at a time: the grid's rows are each
        block's inputs, translations and translations back."""
        if inputs is None:
            raise DlbookError(f"a CycleGAN translates images: give input=<folder of {direction[0]} images> "
                              f"(direction={direction}).")
        inputs = inputs[:n]
        columns = min(len(inputs), TRANSLATION_COLUMNS)
        rows, translations = [], []
        for block in inputs.split(columns):
            translated, reconstructed = self.translate_and_back(block, direction)
            translations.append(translated)
            # A short last block is filled out with black, so that each of its rows starts in the first column.
            blank = block.new_full((columns - len(block), *block.shape[1:]), -1.0)
            rows += [torch.cat([row, blank]) for row in (block, translated, reconstructed)]
        return torch.cat(rows), columns, torch.cat(translations)

    def sample_grids(self) -> dict[str, tuple[torch.Tensor, int]]:
        """For the sample-grid callback: three rows, the fixed A images, their B translations, and those
        translated back to A."""
        real = self.fixed_images[:self.fixed_count]
        return {"samples": (torch.cat([real, *self.translate_and_back(real)]), max(1, len(real)))}

    # -- training ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        if self.generator_optimizer_factory is None or self.discriminator_optimizer_factory is None:
            raise DlbookError("CycleGAN needs model.generator_optimizer and model.discriminator_optimizer, "
                              "or a top-level optimizer for the one left null")
        generators = [*self.generator_ab.parameters(), *self.generator_ba.parameters()]
        discriminators = [*self.discriminator_a.parameters(), *self.discriminator_b.parameters()]
        optimizers = [self.build_optimizer(self.discriminator_optimizer_factory, discriminators,
                                           "model.discriminator_optimizer"),
                      self.build_optimizer(self.generator_optimizer_factory, generators, "model.generator_optimizer")]
        # Under manual optimization Lightning does not step schedulers; the task does (step_schedulers).
        entries = [self.scheduler_for(optimizer) for optimizer in optimizers]
        return optimizers, [entry["scheduler"] for entry in entries if entry]

    def training_step(self, batch, batch_idx):
        real_a, real_b = batch
        if self.fixed_count < len(self.fixed_images):
            self._keep_fixed(real_a)
        d_optimizer, g_optimizer = self.optimizers()

        with self.toggled_optimizer(g_optimizer):  # no gradients for the discriminators' weights
            fake_b, fake_a = self.generator_ab(real_a), self.generator_ba(real_b)
            adversarial = (generator_adversarial_loss(self.discriminator_b(fake_b))
                           + generator_adversarial_loss(self.discriminator_a(fake_a)))
            cycle = F.l1_loss(self.generator_ba(fake_b), real_a) + F.l1_loss(self.generator_ab(fake_a), real_b)
            g_loss = adversarial + self.cycle_weight * cycle
            if self.identity_weight:  # a generator shown its own target domain should leave it alone
                identity = F.l1_loss(self.generator_ab(real_b), real_b) + F.l1_loss(self.generator_ba(real_a), real_a)
                g_loss = g_loss + self.identity_weight * self.cycle_weight * identity
                self.log_epoch_mean("train/identity_loss", identity, len(real_a))
            self.manual_step(g_optimizer, g_loss)

        d_loss = (discriminator_loss("least_squares", self.discriminator_a(real_a),
                                     self.discriminator_a(self.pool_a(fake_a)))
                  + discriminator_loss("least_squares", self.discriminator_b(real_b),
                                       self.discriminator_b(self.pool_b(fake_b))))
        self.manual_step(d_optimizer, d_loss)
        for name, value in (("d_loss", d_loss), ("g_loss", g_loss), ("cycle_loss", cycle)):
            self.log_epoch_mean(f"train/{name}", value, len(real_a))

    def _keep_fixed(self, real_a: torch.Tensor) -> None:
        taken = real_a[:len(self.fixed_images) - self.fixed_count]
        self.fixed_images[self.fixed_count:self.fixed_count + len(taken)] = taken
        self.fixed_count += len(taken)

    # -- checkpoints -------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[FIXED_KEY] = self.fixed_count

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.fixed_count = checkpoint.get(FIXED_KEY, 0)
