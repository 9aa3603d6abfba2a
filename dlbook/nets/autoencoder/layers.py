"""Pieces the autoencoders share."""

import torch
import torch.nn.functional as F
from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError

UPSAMPLING = ("resize", "transposed")


class Upsample(nn.Module):
    """A feature map enlarged to an exact size: `resize`, nearest-neighbour resizing then a 3x3 convolution (the TF
    1.x Cookbook's decoder, free of the checkerboard artefacts strided transposed convolutions can draw), or
    `transposed`, a stride-2 4x4 transposed convolution told the size it must reach (2x, or 2x + 1 after a pooling
    that rounded down)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = "resize"):
        super().__init__()
        if mode not in UPSAMPLING:
            raise DlbookError(f"model.net.upsample={mode!r} is not one of {', '.join(UPSAMPLING)}.")
        self.mode = mode
        self.conv = (nn.Conv2d(in_channels, out_channels, 3, padding=1) if mode == "resize"
                     else nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.mode == "resize":
            return self.conv(F.interpolate(x, size=size, mode="nearest"))
        return self.conv(x, output_size=size)


def halved_sizes(height: int, width: int, levels: int, net: str) -> list[tuple[int, int]]:
    """The map sizes before each of `levels` halvings (rounding down), from the input's; a net whose smallest map
    would vanish is refused."""
    sizes = []
    for _ in range(levels):
        sizes.append((height, width))
        height, width = height // 2, width // 2
    if height < 1 or width < 1:
        raise IncompatibleDataError(f"{net} halves its maps {levels} times; {sizes[0][0]}x{sizes[0][1]} images "
                                    f"are too small for that (fewer model.net channels, or larger images)")
    return sizes
