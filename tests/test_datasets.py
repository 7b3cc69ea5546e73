"""ArrayDataset and the batch converters: scaling, resizing, shapes, inverse, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medgan_core.data.datasets import ArrayDataset, to_tensor_images, to_uint8_images

RGB = np.random.default_rng(0).integers(0, 256, size=(5, 6, 6, 3), dtype=np.uint8)


@pytest.mark.parametrize("normalise, pixel, expected", [
    ("tanh", 0, -1.0), ("tanh", 255, 1.0), ("tanh", 51, -0.6), ("unit", 51, 0.2),
])
def test_scaling_hand_values(normalise, pixel, expected):
    images = np.full((1, 2, 2), pixel, dtype=np.uint8)
    x, y = ArrayDataset(images, [3], normalise=normalise)[0]
    assert x.shape == (1, 2, 2) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, expected)) and y.item() == 3 and y.dtype == torch.int64


def test_standard_normalisation():
    images = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    images[..., 1] = 255
    x = to_tensor_images(images, normalise="standard", mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 0.5))
    assert x[0, :, 0, 0].tolist() == [-2.0, 1.0, -1.0]
    back = to_uint8_images(x, normalise="standard", mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 0.5))
    assert np.array_equal(back, images)
    with pytest.raises(ValueError, match="needs mean and std"):
        to_tensor_images(images, normalise="standard")


@pytest.mark.parametrize("shape, size, out", [
    ((5, 6, 6, 3), None, (5, 3, 6, 6)), ((5, 6, 6, 3), 4, (5, 3, 4, 4)),
    ((5, 6, 6), 12, (5, 1, 12, 12)), ((5, 6, 6, 1), 3, (5, 1, 3, 3)),
])
def test_to_tensor_shapes(shape, size, out):
    images = np.zeros(shape, dtype=np.uint8)
    assert tuple(to_tensor_images(images, size, batch_size=2).shape) == out


def test_resize_keeps_constant_image_and_matches_dataset():
    const = np.full((2, 8, 8, 3), 200, dtype=np.uint8)
    x = to_tensor_images(const, 3)
    assert torch.allclose(x, torch.full_like(x, 200 / 127.5 - 1), atol=1e-6)
    batch = to_tensor_images(RGB, 4)
    ds = ArrayDataset(RGB, np.arange(5), size=4)
    assert torch.allclose(torch.stack([ds[i][0] for i in range(5)]), batch, atol=1e-6)


def test_roundtrip_uint8():
    back = to_uint8_images(to_tensor_images(RGB))
    assert back.dtype == np.uint8 and np.array_equal(back, RGB)
    gray = RGB[..., 0]
    assert np.array_equal(to_uint8_images(to_tensor_images(gray)), gray)
    assert to_uint8_images(to_tensor_images(gray), squeeze_gray=False).shape == (5, 6, 6, 1)
    clipped = to_uint8_images(torch.tensor([[[[2.0, -3.0]]]]))
    assert clipped.tolist() == [[[255, 0]]]


def test_transform_and_dataloader():
    ds = ArrayDataset(RGB, np.array([0, 1, 2, 1, 0]), size=4, transform=lambda x: torch.flip(x, dims=[2]))
    plain = ArrayDataset(RGB, np.array([0, 1, 2, 1, 0]), size=4)
    assert torch.equal(ds[2][0], torch.flip(plain[2][0], dims=[2]))
    x, y = next(iter(DataLoader(ds, batch_size=3, shuffle=False)))
    assert x.shape == (3, 3, 4, 4) and y.tolist() == [0, 1, 2]


@pytest.mark.parametrize("images, labels, error, match", [
    (RGB.astype(np.float32), np.arange(5), TypeError, "must be uint8"),
    (RGB, np.arange(4), ValueError, "one entry per image"),
    (RGB, np.array(["a"] * 5), TypeError, "integer class indices"),
    (np.zeros((5, 3, 6, 6), np.uint8), np.arange(5), ValueError, "channel-last"),
    (np.zeros((6, 6), np.uint8), np.arange(6), ValueError, "channel-last"),
])
def test_dataset_input_errors(images, labels, error, match):
    with pytest.raises(error, match=match):
        ArrayDataset(images, labels)


def test_bad_options():
    with pytest.raises(ValueError, match="normalise must be one of"):
        ArrayDataset(RGB, np.arange(5), normalise="minmax")
    with pytest.raises(ValueError, match="size must be a positive int"):
        to_tensor_images(RGB, size=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        to_uint8_images(torch.zeros(3, 4, 4))
