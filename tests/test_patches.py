"""Random patches of two image sets drawn by step: shapes, determinism, pairing, crops, errors (data/patches.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan_core.data.patches import PatchPairs


def coded_images(n: int = 4, h: int = 40, w: int = 40) -> torch.Tensor:
    """`(n, 1, h, w)` in [-1, 1] whose every pixel value is unique: the value tells the image, row and column."""
    return (torch.arange(n * h * w, dtype=torch.float32) / (n * h * w) * 2 - 1).reshape(n, 1, h, w)


def decode(value: float, n: int = 4, h: int = 40, w: int = 40) -> tuple[int, int, int]:
    """``(image, row, col)`` of a pixel value of :func:`coded_images`."""
    k = round((value + 1) / 2 * n * h * w)
    return k // (h * w), k // w % h, k % w


def random_images(n: int = 4, size: int = 40, channels: int | None = 1, seed: int = 0) -> torch.Tensor:
    shape = (n, size, size) if channels is None else (n, channels, size, size)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def find_crop(patch: torch.Tensor, images: torch.Tensor) -> list[tuple[int, int, int]]:
    """Every ``(image, row, col)`` where ``patch`` `(C, p, p)` is exactly ``images[image, :, row:row+p, col:col+p]``."""
    p = patch.shape[-1]
    windows = images.unfold(2, p, 1).unfold(3, p, 1)  # `(N, C, H-p+1, W-p+1, p, p)`
    hits = (windows == patch[None, :, None, None]).all(-1).all(-1).all(1)  # `(N, H-p+1, W-p+1)`
    return [tuple(int(v) for v in idx) for idx in torch.nonzero(hits)]


@pytest.mark.parametrize("x_shape,y_shape,patch,batch_size,out_shape", [
    ((4, 40, 40), (3, 40, 40), 32, 2, (2, 1, 32, 32)),  # (N, H, W): a channel axis is added
    ((4, 1, 40, 40), (5, 1, 40, 40), 24, 3, (3, 1, 24, 24)),
    ((2, 3, 40, 48), (6, 3, 36, 44), 36, 5, (5, 3, 36, 36)),  # RGB, rectangular, different sizes per domain
    ((2, 1, 16, 16), (2, 1, 16, 16), 1, 1, (1, 1, 1, 1)),
])
def test_batch_shapes_and_pixels_per_step(x_shape, y_shape, patch, batch_size, out_shape):
    g = torch.Generator().manual_seed(0)
    data = PatchPairs(torch.rand(x_shape, generator=g) * 2 - 1, torch.rand(y_shape, generator=g) * 2 - 1,
                      patch=patch, batch_size=batch_size)
    x, y = data.batch(0)
    assert x.shape == out_shape and y.shape == out_shape
    assert x.dtype == torch.float32 and y.dtype == torch.float32 and x.device.type == "cpu"
    assert data.x.ndim == 4 and data.y.ndim == 4  # (N, H, W) gets its channel axis
    assert data.pixels_per_step == batch_size * patch ** 2


def test_numpy_input_and_channel_axis_match_the_tensor():
    x = random_images(channels=None).numpy()  # `(4, 40, 40)` float32 array
    a = PatchPairs(x, x, patch=16, batch_size=3, seed=5)
    b = PatchPairs(torch.from_numpy(x)[:, None], torch.from_numpy(x)[:, None], patch=16, batch_size=3, seed=5)
    assert a.x.shape == (4, 1, 40, 40)
    for step in range(3):
        assert all(torch.equal(u, v) for u, v in zip(a.batch(step), b.batch(step)))


def test_same_step_same_batch_another_step_or_seed_another():
    x, y = random_images(seed=0), random_images(seed=1)
    data = PatchPairs(x, y, patch=32, batch_size=4, seed=3)
    first = data.batch(7)
    data.batch(8)  # drawing other steps in between changes nothing
    again, fresh = data.batch(7), PatchPairs(x, y, patch=32, batch_size=4, seed=3).batch(7)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(torch.equal(a, b) for a, b in zip(first, fresh))
    other_step = data.batch(6)
    other_seed = PatchPairs(x, y, patch=32, batch_size=4, seed=4).batch(7)
    for other in (other_step, other_seed):
        assert not torch.equal(first[0], other[0]) and not torch.equal(first[1], other[1])


def test_paired_takes_the_same_image_and_corner_from_both_sets():
    x = random_images(n=6)
    data = PatchPairs(x, -x, patch=32, batch_size=8, seed=0, paired=True)
    for step in range(5):
        bx, by = data.batch(step)
        assert torch.equal(by, -bx)


def test_unpaired_draws_the_two_sets_independently():
    x = random_images(n=6)
    data = PatchPairs(x, -x, patch=32, batch_size=8, seed=0, paired=False)
    same = [bool((by[i] == -bx[i]).all()) for bx, by in map(data.batch, range(5)) for i in range(8)]
    assert sum(same) <= 2  # a pair matches only by chance: same image (1/6) and same corner (1/81)
    bx, by = data.batch(0)  # each patch is still a crop of its own set
    assert all(find_crop(p, x) for p in bx) and all(find_crop(-p, x) for p in by)


@pytest.mark.parametrize("paired", [False, True])
def test_patches_are_true_crops_of_the_source_images(paired):
    x = coded_images()
    data = PatchPairs(x, x.flip(0), patch=24, batch_size=6, seed=1, paired=paired)
    for step in range(4):
        for images, patches in zip((data.x, data.y), data.batch(step)):
            for p in patches:
                (i, r, c), = find_crop(p, images)  # exactly one place: the values are unique
                assert torch.equal(p, images[i, :, r:r + 24, c:c + 24])


def test_images_and_corners_cover_their_whole_range():
    """Every image is drawn and the corner reaches both 0 and ``H - patch`` (the last valid row and column)."""
    data = PatchPairs(coded_images(), coded_images(), patch=32, batch_size=16, seed=0)
    corners = [decode(float(p[0, 0, 0])) for step in range(20) for p in data.batch(step)[0]]
    images, rows, cols = (set(v) for v in zip(*corners))
    assert images == {0, 1, 2, 3}
    assert rows == set(range(9)) and cols == set(range(9))  # 40 - 32 + 1 corners per side


def test_patch_equal_to_the_image_side_returns_whole_images():
    x = random_images(n=3)
    bx, by = PatchPairs(x, -x, patch=40, batch_size=5, seed=2).batch(0)
    for px, py in zip(bx, by):
        assert any(torch.equal(px, img) for img in x) and any(torch.equal(py, -img) for img in x)


@pytest.mark.parametrize("x,y,kw,message", [
    (torch.rand(2, 1, 40, 40) * 255, random_images(2), {}, r"x must be finite and in \[-1, 1\]"),
    (random_images(2), torch.full((2, 1, 40, 40), -1.5), {}, r"y must be finite and in \[-1, 1\]"),
    (np.full((2, 40, 40), np.nan, np.float32), random_images(2), {}, "finite"),
    (random_images(2, channels=None), random_images(2, channels=3), {}, "1 channels and y 3"),
    (random_images(2, 40), random_images(3, 40), {"paired": True}, "paired=True needs x and y of the same shape"),
    (random_images(2, 40), random_images(2, 32), {"paired": True}, "same shape"),
    (random_images(2, 40), random_images(2, 36), {"patch": 37}, r"patch <= 36 \(the smallest image side\)"),
    (random_images(2, 40), random_images(2, 40), {"patch": 41}, "got patch 41"),
    (random_images(2, 40), random_images(2, 40), {"patch": 0}, "1 <= patch"),
    (random_images(2, 40), random_images(2, 40), {"batch_size": 0}, "batch_size >= 1"),
    (np.zeros((0, 40, 40), np.float32), random_images(2), {}, "x must be a non-empty"),
    (random_images(2), torch.zeros(0, 1, 40, 40), {}, "y must be a non-empty"),
    (np.zeros((40, 40), np.float32), random_images(2), {}, r"\(N, H, W\) or \(N, C, H, W\)"),
])
def test_bad_input_is_refused_with_a_clear_error(x, y, kw, message):
    with pytest.raises(ValueError, match=message):
        PatchPairs(x, y, **{"patch": 32, "batch_size": 2, **kw})


def test_negative_seed_is_refused_when_built():
    with pytest.raises(ValueError, match="seed"):
        PatchPairs(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), patch=4, batch_size=1, seed=-1)
