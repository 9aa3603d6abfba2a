"""Augmentations applied to a whole batch on its device, after transfer."""

import torch
import torch.nn.functional as F

from dlbook.errors import DlbookError, check_number


def random_flip(images: torch.Tensor) -> torch.Tensor:
    """Mirror a random half of the batch left-right."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad by `padding` and cut a random crop of the original size per image (one gather, no loop)."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None].expand(n, c, h, w + 2 * padding)
    cropped = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :].expand(n, c, h, w)
    return cropped.gather(3, cols)


FILL_MODES = {"nearest": "border", "zeros": "zeros"}  # fill_mode -> grid_sample's padding_mode


def affine_matrices(size: tuple[int, int], angle: torch.Tensor, shear: torch.Tensor, zoom_x: torch.Tensor,
                    zoom_y: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor) -> torch.Tensor:
    """The (N, 2, 3) matrices of `F.affine_grid` for images of `size` (height, width), one per image, from per-image
    angles and shears in degrees, zoom factors and shifts as fractions of the width and height.

    As Keras' ImageDataGenerator composes them (rotation @ shift @ shear @ zoom): each output pixel, in pixels from
    the centre, is zoomed (a factor above 1 shows more of the image, so it looks smaller), sheared, shifted and
    rotated to the input point it samples. So the content is turned first and then shifted along the output's
    axes: a positive angle turns it counter-clockwise, a positive shift moves it right and down."""
    height, width = size
    angle, shear = torch.deg2rad(angle), torch.deg2rad(shear)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.stack([torch.stack([torch.ones_like(shear), -torch.sin(shear)], -1),
                            torch.stack([torch.zeros_like(shear), torch.cos(shear)], -1)], -2)
    linear = rotation @ shearing @ torch.diag_embed(torch.stack([zoom_x, zoom_y], -1))
    extent = torch.tensor([width, height], dtype=linear.dtype, device=linear.device)
    translation = rotation @ (-torch.stack([shift_x, shift_y], -1) * extent)[..., None]  # in pixels
    # Pixel offsets from the centre -> affine_grid's [-1, 1] coordinates, whose x and y scales differ when the
    # image is not square.
    half = extent / 2
    return torch.cat([linear * half / half[:, None], translation / half[:, None]], -1)


def warp(images: torch.Tensor, matrices: torch.Tensor, fill_mode: str = "nearest") -> torch.Tensor:
    """Each image resampled (bilinearly) through its own matrix; points outside it take the nearest edge pixel
    (fill_mode=nearest) or 0 (zeros)."""
    grid = F.affine_grid(matrices.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=FILL_MODES[fill_mode], align_corners=False)


class RandomAffine:
    """A random rotation, shift, shear and zoom per image of a batch, as Keras' ImageDataGenerator draws them:
    angle uniform in ±rotation_degrees, shifts in ±width_shift / ±height_shift of the image's size, shear angle in
    ±shear_degrees, and zoom factors for x and y drawn apart in [1 - zoom, 1 + zoom]. Drawn from torch's random
    stream on the batch's device, applied in one grid_sample."""

    def __init__(self, rotation_degrees: float = 0.0, width_shift: float = 0.0, height_shift: float = 0.0,
                 shear_degrees: float = 0.0, zoom: float = 0.0, fill_mode: str = "nearest"):
        if fill_mode not in FILL_MODES:
            raise DlbookError(f"data.fill_mode={fill_mode!r} is not one of {', '.join(FILL_MODES)}.")
        settings = dict(rotation_degrees=rotation_degrees, width_shift=width_shift, height_shift=height_shift,
                        shear_degrees=shear_degrees, zoom=zoom)
        share = ": a share of the image's size, not pixels (Keras reads values from 1 up as pixels; give pixels / size)"
        notes = dict(rotation_degrees=("", None), width_shift=(share, 1), height_shift=(share, 1),
                     shear_degrees=(": a shear of 90 degrees or more folds the image onto a line", 90),
                     zoom=(": zoom factors are drawn in [1 - zoom, 1 + zoom]", 1))
        for name, value in settings.items():  # each the half-width of the range its draws come from
            note, below = notes[name]
            check_number(f"data.{name}", value, least=0, below=below, note=note)
        self.ranges = settings
        self.fill_mode = fill_mode

    @property
    def enabled(self) -> bool:
        return any(self.ranges.values())

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return images
        n = images.shape[0]
        r = self.ranges
        uniform = torch.rand(6, n, device=images.device) * 2 - 1  # in [-1, 1], scaled per setting below
        matrices = affine_matrices(images.shape[-2:], angle=uniform[0] * r["rotation_degrees"],
                                   shear=uniform[1] * r["shear_degrees"], zoom_x=1 + uniform[2] * r["zoom"],
                                   zoom_y=1 + uniform[3] * r["zoom"], shift_x=uniform[4] * r["width_shift"],
                                   shift_y=uniform[5] * r["height_shift"])
        return warp(images, matrices, self.fill_mode)
