"""Corruptions a denoising autoencoder learns to undo, applied to a batch of images in [0, 1] on its device; each
draws from `generator` when given one (evaluation's fixed draws), else from torch's stream."""

import torch

from dlbook.errors import DlbookError, check_number


class GaussianNoise:
    """x + std * N(0, 1), clipped back to [0, 1] (Hands-On ch. 10 with std 1.0; TF 1.x Cookbook ch. 8 with 0.3 and
    0.5; Pro DL ch. 5 with variance 0.1)."""

    def __init__(self, std: float = 0.5, clip: bool = True):
        check_number("model.corruption.std", std, above=0)
        self.std, self.clip = std, clip

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        noisy = images + self.std * noise
        return noisy.clamp(0, 1) if self.clip else noisy


class SaltAndPepper:
    """A `fraction` of the pixels set to 0 or 1 at random, half each (Pro DL ch. 5 with 5%)."""

    def __init__(self, fraction: float = 0.05):
        check_number("model.corruption.fraction", fraction, above=0, most=1, note=" (the share of pixels)")
        self.fraction = fraction

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        hit, salt = torch.rand((2, *images.shape), generator=generator, device=images.device) < torch.tensor(
            [self.fraction, 0.5], device=images.device).view(2, *[1] * images.dim())
        return torch.where(hit, salt.to(images.dtype), images)


CORRUPTIONS = {"gaussian": GaussianNoise, "salt_and_pepper": SaltAndPepper}


def corruption(kind: str = "gaussian", std: float = 0.5, fraction: float = 0.05, clip: bool = True):
    """The corruption a config names: gaussian (std, clip) or salt_and_pepper (fraction)."""
    if kind not in CORRUPTIONS:
        raise DlbookError(f"model.corruption.kind={kind!r} is not one of {', '.join(CORRUPTIONS)}.")
    return GaussianNoise(std, clip) if kind == "gaussian" else SaltAndPepper(fraction)
