"""StackGAN's nets (Zhang et al. 2017), conditioned on class labels instead of text; 28, 32 or 64 px images.

No text encoder or captions are available offline, so a learned class embedding stands in for the text
embedding phi_t. Each stage has its own conditioning augmentation (CA): a linear layer gives the mean and log
variance of a Gaussian around the embedding, and the stage is conditioned on a sample c^ of it.

Stage I is a DCGAN generator at half the resolution fed [z, c^0]. Stage II refines its image, as in the paper:
a stride-2 convolution encodes it, c^ is replicated over the map and joined to it, residual blocks (BatchNorm,
ReLU) follow, and two nearest-neighbour upsamplings with 3x3 convolutions bring it to full resolution, tanh.
Each stage has a label-conditioned DCGAN discriminator (the label enters as one more image channel, where the
paper joins the compressed text embedding to the discriminator's last 4x4 map).
"""

import torch
from torch import nn

from dlbook.errors import IncompatibleDataError
from dlbook.nets.gan.dcgan import DCGANDiscriminator, DCGANGenerator, init_weights
from dlbook.nets.layers import conv_bn_relu

SIZES = (28, 32, 64)  # full resolution; Stage I draws half of it


def kl_to_standard_normal(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag(exp(log_variance))) || N(0, I)) averaged over the dimensions, as in the authors' code, and
    over the batch. Summed over 128 dimensions instead, at weight 1 it outweighs the GAN loss, and on the digits
    the generator then hardly follows the class."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).mean()


class ConditioningAugmentation(nn.Module):
    """phi -> (c^, KL): c^ = mu + sigma * eps, eps ~ N(0, I) (the reparameterisation trick), while training; in eval
    mode c^ = mu, so a fixed noise batch always draws the same images."""

    def __init__(self, embedding_dim: int, condition_dim: int):
        super().__init__()
        self.layer = nn.Linear(embedding_dim, 2 * condition_dim)

    def forward(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_variance = self.layer(phi).chunk(2, dim=1)
        condition = mean + (0.5 * log_variance).exp() * torch.randn_like(mean) if self.training else mean
        return condition, kl_to_standard_normal(mean, log_variance)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels),
                                  nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class StackGANGenerator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, latent_dim: int, features: int = 64,
                 embedding_dim: int = 128, condition_dim: int = 128, residual_blocks: int = 4):
        super().__init__()
        channels, height, width = input_shape
        if height != width or height not in SIZES:
            sizes = ", ".join(f"{size}x{size}" for size in SIZES)
            raise IncompatibleDataError(f"StackGAN draws square images of {sizes} pixels (Stage I at half that), "
                                        f"the data gives {height}x{width}")
        if num_classes < 2:
            raise IncompatibleDataError(f"StackGAN is conditioned on class labels, and its discriminators learn "
                                        f"from mismatched ones: it needs data of at least 2 classes, not {num_classes}")
        self.embedding = nn.Embedding(num_classes, embedding_dim)  # stands in for the text embedding phi_t
        self.augment1 = ConditioningAugmentation(embedding_dim, condition_dim)
        self.augment2 = ConditioningAugmentation(embedding_dim, condition_dim)
        self.stage1 = DCGANGenerator((channels, height // 2, width // 2), 0, latent_dim + condition_dim, features)
        f = features
        self.encode = nn.Sequential(nn.Conv2d(channels, f, 3, 1, 1), nn.ReLU(), conv_bn_relu(f, 2 * f, 4, 2))
        self.refine = nn.Sequential(
            conv_bn_relu(2 * f + condition_dim, 2 * f), *(ResidualBlock(2 * f) for _ in range(residual_blocks)),
            nn.Upsample(scale_factor=2), conv_bn_relu(2 * f, f),
            nn.Upsample(scale_factor=2), conv_bn_relu(f, f),
            nn.Conv2d(f, channels, 3, 1, 1), nn.Tanh())
        self.apply(init_weights)

    def stages(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Stage-I image at half resolution, Stage-II image, KL of both stages' conditioning augmentation)."""
        phi = self.embedding(labels)
        condition1, kl1 = self.augment1(phi)
        low_res = self.stage1(torch.cat([z, condition1], dim=1))
        condition2, kl2 = self.augment2(phi)
        encoded = self.encode(low_res)
        condition2 = condition2[:, :, None, None].expand(-1, -1, *encoded.shape[2:])
        return low_res, self.refine(torch.cat([encoded, condition2], dim=1)), kl1 + kl2

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.stages(z, labels)[1]


class StackGANDiscriminator(nn.Module):
    """One label-conditioned DCGAN discriminator per stage: `stage1` at half resolution, `stage2` at full."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, features: int = 64, norm: str = "batch"):
        super().__init__()
        channels, height, width = input_shape
        self.stage1 = DCGANDiscriminator((channels, height // 2, width // 2), num_classes, features, norm)
        self.stage2 = DCGANDiscriminator(input_shape, num_classes, features, norm)
