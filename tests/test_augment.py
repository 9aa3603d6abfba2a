"""The random affine augmentation of image batches: hand-checked rotations, shifts and zooms, one draw per image."""

import pytest
import torch

from dlbook.data.augment import RandomAffine, affine_matrices, warp
from dlbook.data.digits import DigitsDataModule
from dlbook.errors import DlbookError


def matrices(size, n=1, angle=0.0, shear=0.0, zoom_x=1.0, zoom_y=1.0, shift_x=0.0, shift_y=0.0):
    value = lambda v: torch.full((n,), float(v))
    return affine_matrices(size, value(angle), value(shear), value(zoom_x), value(zoom_y), value(shift_x),
                           value(shift_y))


def test_a_quarter_turn_is_rot90():
    images = torch.randn(3, 2, 5, 5)
    turned = warp(images, matrices((5, 5), n=3, angle=90))
    torch.testing.assert_close(turned, torch.rot90(images, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_shifts_move_whole_pixels_and_fill():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    right = warp(image, matrices((3, 4), shift_x=0.25))  # a quarter of 4 pixels: one pixel right
    assert right[0, 0].tolist() == [[0, 0, 1, 2], [4, 4, 5, 6], [8, 8, 9, 10]]  # nearest: the edge column repeats
    down = warp(image, matrices((3, 4), shift_y=1 / 3), fill_mode="zeros")  # one pixel down, zeros above
    assert down[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 2, 3], [4, 5, 6, 7]]


def test_a_shift_moves_the_turned_content_along_the_outputs_axes():
    # Keras shifts after turning: a width shift is a horizontal move in the output whatever the angle.
    images = torch.randn(2, 1, 4, 4)
    moved = warp(images, matrices((4, 4), n=2, angle=90, shift_x=0.25), fill_mode="zeros")
    turned = torch.rot90(images, 1, dims=(-2, -1))
    torch.testing.assert_close(moved[..., 1:], turned[..., :-1], atol=1e-5, rtol=0)  # one pixel right
    torch.testing.assert_close(moved[..., 0], torch.zeros(2, 1, 4), atol=1e-5, rtol=0)


def test_zoom_below_one_magnifies_about_the_centre():
    row = torch.arange(4.0).repeat(4, 1).view(1, 1, 4, 4)
    zoomed = warp(row, matrices((4, 4), zoom_x=0.5))
    # pixel centres 1.5 pixels either side of the middle sample the points half as far out
    torch.testing.assert_close(zoomed[0, 0, 0], torch.tensor([0.75, 1.25, 1.75, 2.25]))


def test_identity_settings_leave_the_batch_alone():
    images = torch.randn(4, 1, 6, 6)
    assert RandomAffine()(images) is images
    torch.testing.assert_close(warp(images, matrices((6, 6), n=4)), images, atol=1e-5, rtol=0)


def test_each_image_gets_its_own_transform_and_keeps_shape_and_dtype():
    image = torch.randn(1, 1, 12, 10, dtype=torch.float64)
    torch.manual_seed(0)
    augment = RandomAffine(rotation_degrees=40, width_shift=0.1, height_shift=0.1, shear_degrees=10, zoom=0.2)
    out = augment(image.repeat(8, 1, 1, 1))
    assert out.shape == (8, 1, 12, 10) and out.dtype == torch.float64 and out.device == image.device
    assert all(not torch.allclose(out[i], out[j]) for i in range(8) for j in range(i))
    torch.manual_seed(0)
    assert torch.equal(augment(image.repeat(8, 1, 1, 1)), out)  # seeded by torch's stream


@pytest.mark.parametrize("settings, named", [
    (dict(fill_mode="reflect"), "fill_mode='reflect'"), (dict(zoom=1.0), "zoom=1.0"),
    (dict(rotation_degrees=-5), r"rotation_degrees=-5 must be a finite number from 0 up"),
    (dict(rotation_degrees="abc"), "rotation_degrees=abc must be a finite number"),  # was a TypeError
    # Keras reads a shift of 1 and up as pixels; as a share of the size it moved every image out of view
    (dict(width_shift=4), "width_shift=4 must be a finite number from 0 to below 1: a share of the image's size, not"),
    (dict(height_shift=1.0), "height_shift=1.0 must be a finite number from 0 to below 1"),
    (dict(shear_degrees=100), "shear_degrees=100 must be a finite number from 0 to below 90: a shear of 90"),
    (dict(zoom=1), r"zoom=1 must be a finite number from 0 to below 1: zoom factors are drawn in \[1 - zoom"),
])
def test_bad_settings_are_refused(settings, named):
    with pytest.raises(DlbookError, match=named):
        RandomAffine(**settings)


def test_image_datamodules_augment_training_batches_only():
    datamodule = DigitsDataModule(normalization="unit", rotation_degrees=30, zoom=0.1)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(datamodule.preprocess(images, augment=False), images / 255)
    assert not torch.allclose(datamodule.preprocess(images, augment=True), images / 255)


@pytest.mark.parametrize("data", ["digits", "mnist", "fashion_mnist", "cifar10", "image_folder", "unpaired_folders"])
def test_every_image_data_choice_takes_crop_and_flip(run_config, data):
    # mnist had neither key: data.flip=true was refused by Hydra as a key the config lacks
    cfg = run_config([f"data={data}", "data.flip=true", "data.crop_padding=2"])
    assert cfg.data.flip is True and cfg.data.crop_padding == 2


def test_a_negative_crop_padding_is_refused():
    with pytest.raises(DlbookError, match=r"data.crop_padding=-2 must be a non-negative integer"):
        DigitsDataModule(crop_padding=-2)
