"""DCGAN (Radford et al. 2016), sized from the input: 14x14, 16x16, 28x28, 32x32 or 64x64 images (the small ones
are StackGAN's Stage I).

The generator projects the latent vector to a small feature map (7x7 for 14 and 28 pixels, else 4x4), then doubles
it with stride-2 transposed convolutions, halving the channels, to a tanh image; BatchNorm and ReLU
everywhere but the output. The discriminator mirrors it with stride-2 convolutions and LeakyReLU(0.2),
no normalisation on its first layer, and a last convolution over the whole map giving one logit.
`norm` chooses the discriminator's normalisation: a WGAN-GP critic must not use BatchNorm, since its
gradient penalty is per sample (Gulrajani et al. 2017 use layer normalisation). The discriminator's
`features` (its last feature map) feed InfoGAN's Q head; `score` finishes the forward pass.
"""

import torch
from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.gan.conditioning import LabelEmbedding

FIRST_MAP_SIZE = {14: 7, 16: 4, 28: 7, 32: 4, 64: 4}  # image size -> size of the generator's first feature map
NORMS = {"batch": nn.BatchNorm2d, "layer": lambda channels: nn.GroupNorm(1, channels), "none": lambda _: nn.Identity()}


def feature_map_sizes(input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(first feature map size, number of stride-2 blocks) for this image shape."""
    _, height, width = input_shape
    if height != width or height not in FIRST_MAP_SIZE:
        sizes = ", ".join(f"{size}x{size}" for size in FIRST_MAP_SIZE)
        raise IncompatibleDataError(f"DCGAN takes square images of {sizes} pixels, the data gives {height}x{width}")
    first = FIRST_MAP_SIZE[height]
    return first, (height // first).bit_length() - 1


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights, and N(1, 0.02) scales for normalisation layers, as in the paper."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, latent_dim: int, features: int = 64):
        super().__init__()
        first, blocks = feature_map_sizes(input_shape)
        channels = [features * 2 ** i for i in reversed(range(blocks))]  # e.g. 256, 128, 64 for 32x32
        self.label = LabelEmbedding(num_classes, (num_classes, 1, 1))
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim + self.label.width, channels[0], first, bias=False),
                                   nn.BatchNorm2d(channels[0]), nn.ReLU()]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(channels[-1], input_shape[0], 4, 2, 1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers(self.label(z[:, :, None, None], labels))


class DCGANDiscriminator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, features: int = 64, norm: str = "batch"):
        super().__init__()
        if norm not in NORMS:
            raise DlbookError(f"discriminator norm={norm!r} is not one of {', '.join(NORMS)}")
        last, blocks = feature_map_sizes(input_shape)
        channels = [features * 2 ** i for i in range(blocks)]  # e.g. 64, 128, 256 for 32x32
        in_channels, height, width = input_shape
        self.label = LabelEmbedding(num_classes, (1, height, width))  # the label as one more image channel
        layers: list[nn.Module] = [nn.Conv2d(in_channels + self.label.width, channels[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), NORMS[norm](c_out), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(channels[-1], 1, last))  # the whole last feature map -> one logit
        self.layers = nn.Sequential(*layers)
        self.feature_dim = channels[-1] * last * last
        self.apply(init_weights)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # score(features(x)) without slicing the Sequential, which builds a new module on every call
        return self.layers(self.label(images, labels)).flatten()

    def features(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, channels, size, size), feature_dim values per image: the map the last convolution reads."""
        return self.layers[:-1](self.label(images, labels))

    def score(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers[-1](features).flatten()
