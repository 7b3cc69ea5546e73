"""AffineAug, the Keras ImageDataGenerator recipe: identity at zero ranges, exact flips, seeded draws, geometry."""

from __future__ import annotations

import math

import pytest
import torch

from medgan_core.data.augment import AffineAug, affine_warp

SHAPES = [  # (n, C, H, W): RGB dermoscopy-like, grayscale, non-square
    (4, 3, 16, 16),
    (3, 1, 28, 28),
    (2, 3, 12, 20),
]


def images(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform noise in [-1, 1] with a few pixels at exactly -1 and 1."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    x[:, :, 0, 0], x[:, :, -1, -1] = -1.0, 1.0
    return x


def identity_params(n: int) -> dict[str, torch.Tensor]:
    """affine_warp's parameters of the identity, `(n,)` each."""
    zeros, ones = torch.zeros(n), torch.ones(n)
    return {"angle": zeros, "zoom_row": ones, "zoom_col": ones, "shear": zeros, "shift_row": zeros, "shift_col": zeros}


@pytest.mark.parametrize("shape", SHAPES)
def test_zero_ranges_without_flip_are_the_identity(shape):
    x = images(shape)
    out = AffineAug(rotation=0, zoom=0, shear=0, shift=0, flip=False)(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and torch.allclose(out, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_pure_flip_is_exactly_x_flip_3_for_about_half_the_images(shape):
    x = images((64,) + shape[1:])
    out = AffineAug(rotation=0, zoom=0, shear=0, shift=0, flip=True)(x, torch.Generator().manual_seed(2))
    flipped = torch.tensor([torch.allclose(o, i.flip(2), atol=1e-5, rtol=0) for o, i in zip(out, x)])
    kept = torch.tensor([torch.allclose(o, i, atol=1e-5, rtol=0) for o, i in zip(out, x)])
    assert (flipped | kept).all()  # every image is either flipped left-right or left alone
    assert 16 <= int(flipped.sum()) <= 48  # p = 1/2 over 64 images


@pytest.mark.parametrize("shape", SHAPES)
def test_default_recipe_is_seeded_and_keeps_shape_and_range(shape):
    x = images(shape)
    aug = AffineAug()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)  # the generator decides every draw
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= -1.0 and a.max() <= 1.0 and not torch.allclose(a, x)
    gen = torch.Generator().manual_seed(5)
    aug(x, gen)
    assert not torch.equal(aug(x, gen), aug(x, torch.Generator().manual_seed(5)))  # draws advance the generator


def test_constant_images_stay_constant_under_the_edge_fill():
    """Keras' fill_mode="nearest" repeats edge pixels: no zeros come in from outside (unlike zero padding)."""
    x = torch.full((32, 3, 16, 16), 0.7)
    out = AffineAug(rotation=45, zoom=0.5, shear=0.5, shift=0.3)(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5, rtol=0)


def test_fixed_rotations_of_symmetric_patterns():
    x = images((2, 3, 16, 16))
    p = identity_params(2)
    quarter = affine_warp(x, **(p | {"angle": torch.full((2,), 90.0)}))
    assert torch.allclose(quarter, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5, rtol=0)  # positive: clockwise
    half = affine_warp(x, **(p | {"angle": torch.full((2,), 180.0)}))
    assert torch.allclose(half, x.flip(2, 3), atol=1e-5, rtol=0)
    # A centred Gaussian blob is unchanged by any rotation, up to bilinear interpolation.
    yy, xx = torch.meshgrid(torch.arange(32.0) - 15.5, torch.arange(32.0) - 15.5, indexing="ij")
    blob = (torch.exp(-(yy ** 2 + xx ** 2) / 36.0) * 2 - 1)[None, None]  # `(1, 1, 32, 32)`, sd 4.2 px
    for angle in (15.0, 37.0):
        turned = affine_warp(blob, **(identity_params(1) | {"angle": torch.tensor([angle])}))
        assert (turned - blob).abs().max() < 0.03


def test_shifts_zoom_and_shear_follow_keras_geometry():
    ramp = torch.arange(20.0).expand(1, 1, 8, 20).clone()  # value = column index
    p = identity_params(1)
    shifted = affine_warp(ramp, **(p | {"shift_col": torch.tensor([0.1])}))  # 0.1 of 20 px: 2 px
    assert torch.allclose(shifted[..., :18], ramp[..., 2:])  # content moved 2 px left
    rows = torch.arange(8.0)[:, None].expand(1, 1, 8, 20).clone()  # value = row index
    up = affine_warp(rows, **(p | {"shift_row": torch.tensor([0.25])}))  # 0.25 of 8 px: 2 px
    assert torch.allclose(up[..., :6, :], rows[..., 2:, :])
    zoomed = affine_warp(ramp, **(p | {"zoom_col": torch.tensor([0.5])}))  # factor < 1 magnifies
    assert torch.allclose(zoomed[0, 0, 0, 1:] - zoomed[0, 0, 0, :-1], torch.full((19,), 0.5))
    assert torch.allclose(zoomed[..., 9:11].mean(), ramp[..., 9:11].mean())  # about the centre
    sheared = affine_warp(rows, **(p | {"shear": torch.tensor([math.pi / 6])}))  # row_in = row - sin(s) col
    slope = sheared[0, 0, 4, 11] - sheared[0, 0, 4, 10]
    assert slope == pytest.approx(-math.sin(math.pi / 6), abs=1e-5)


def test_affine_aug_drives_the_classifier_loop():
    from medgan_core.models.classifier import SmallCNN, fit_classifier

    torch.manual_seed(0)
    x, y = images((8, 3, 16, 16)), torch.arange(8) % 2
    fit = fit_classifier(SmallCNN(3, 2, width=4, image_size=16), x, y, num_epochs=1, batch_size=4,
                         augment=AffineAug())
    assert fit.epochs_run == 1 and math.isfinite(fit.history.train_loss[0])


def test_errors_name_the_argument():
    for name, value in (("rotation", -1.0), ("zoom", 1.0), ("shear", 2.0), ("shift", 1.5)):
        with pytest.raises(ValueError, match=f"AffineAug: {name} must lie in"):
            AffineAug(**{name: value})
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        AffineAug()(torch.zeros(3, 16, 16), torch.Generator())
    with pytest.raises(ValueError, match="one parameter per image"):
        affine_warp(torch.zeros(2, 1, 8, 8), **identity_params(3))
