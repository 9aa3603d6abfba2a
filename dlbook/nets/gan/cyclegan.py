"""CycleGAN's nets (Zhu et al. 2017, appendix 7.2), sized from the input shape.

ResnetGenerator: c7s1-f, d2f, d4f, `blocks` residual blocks R4f, u2f, uf, c7s1-C with tanh, where f is `features`
(64 in the paper) and C the image channels; InstanceNorm and ReLU after every convolution but the last, reflection
padding. The paper uses 6 blocks up to 128 px and 9 above; `blocks: null` picks that way.

PatchDiscriminator: the 70x70 PatchGAN, C64-C128-C256-C512 then a convolution to one score per patch; 4x4
kernels, LeakyReLU(0.2), InstanceNorm on all but the first layer. `layers` counts the stride-2 convolutions
(3 in the paper, whose C512 has stride 1); 2 fits images down to 12 px, with a smaller receptive field.
"""

import torch
from torch import nn

from dlbook.errors import IncompatibleDataError
from dlbook.nets.gan.dcgan import init_weights


def conv_block(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    # No bias: InstanceNorm subtracts each channel's mean right after.
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.InstanceNorm2d(c_out), nn.ReLU()]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), *conv_block(channels, channels, 3),
                                  nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
                                  nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], features: int = 64, blocks: int | None = None):
        super().__init__()
        channels, height, width = input_shape
        if height % 4 or width % 4 or min(height, width) < 8:
            raise IncompatibleDataError(f"The CycleGAN generator halves the image twice and needs sides that are "
                                        f"multiples of 4, at least 8; the data gives {height}x{width}")
        blocks = blocks if blocks is not None else 6 if max(height, width) <= 128 else 9
        f = features
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *conv_block(channels, f, 7),
                                   *conv_block(f, 2 * f, 3, 2, 1), *conv_block(2 * f, 4 * f, 3, 2, 1)]
        layers += [ResidualBlock(4 * f) for _ in range(blocks)]
        for c_in, c_out in ((4 * f, 2 * f), (2 * f, f)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=False),
                       nn.InstanceNorm2d(c_out), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(f, channels, 7), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class PatchDiscriminator(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], features: int = 64, layers: int = 3):
        super().__init__()
        channels, height, width = input_shape
        # Each stride-2 layer halves the map; the two stride-1 layers then take one pixel each and need >1 left.
        if min(height, width) >> layers < 3:
            raise IncompatibleDataError(f"The PatchGAN discriminator with model.discriminator.layers={layers} "
                                        f"needs images of at least {3 << layers} px, the data gives "
                                        f"{height}x{width}; lower the layers")
        widths = [features * 2 ** min(i, 3) for i in range(layers + 1)]  # 64, 128, 256, 512, capped at 8f
        modules: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):
            stride = 2 if i + 1 < layers else 1
            modules += [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=False), nn.InstanceNorm2d(c_out),
                        nn.LeakyReLU(0.2)]
        modules.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))  # one score per (receptive-field) patch
        self.layers = nn.Sequential(*modules)
        self.apply(init_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)
