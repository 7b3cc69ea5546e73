"""MS-SSIM diversity (scales for small images, identical vs noise) and paired SSIM/PSNR/MAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from medgan_core.metrics.diversity import (
    DEFAULT_BETAS,
    images_to_unit_tensor,
    max_ms_ssim_scales,
    ms_ssim_betas,
    ms_ssim_diversity,
    paired_mae,
    paired_psnr,
    paired_scores,
    paired_ssim,
)


def noise(n: int, size: int, channels: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def smooth_image(size: int) -> np.ndarray:
    """One structured uint8 image `(size, size)`: a blurred blob pattern."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    return (127.5 + 120 * np.sin(6 * xx) * np.cos(4 * yy)).astype(np.uint8)


@pytest.mark.parametrize("size, scales", [(10, 0), (11, 1), (21, 1), (22, 2), (28, 2), (43, 2), (44, 3),
                                          (64, 3), (98, 3), (99, 4), (128, 4), (175, 4), (176, 5), (256, 5)])
def test_max_scales_table_and_torchmetrics_accepts_it(size, scales):
    assert max_ms_ssim_scales(size) == scales
    if scales:
        x = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))
        multiscale_structural_similarity_index_measure(x, x, data_range=1.0, betas=ms_ssim_betas(scales))


def test_betas_are_truncated_and_renormalised():
    betas = ms_ssim_betas(3)
    assert sum(betas) == pytest.approx(1.0)
    assert betas[1] / betas[0] == pytest.approx(DEFAULT_BETAS[1] / DEFAULT_BETAS[0])
    assert ms_ssim_betas(5) == pytest.approx(np.asarray(DEFAULT_BETAS) / sum(DEFAULT_BETAS))
    with pytest.raises(ValueError, match="between 1 and 5"):
        ms_ssim_betas(6)


def test_identical_images_have_ms_ssim_one_and_noise_much_lower():
    same = np.repeat(smooth_image(64)[None], 6, axis=0)
    res = ms_ssim_diversity(same, n_pairs=100, seed=0)
    assert res["ms_ssim"] == pytest.approx(1.0, abs=1e-5)
    assert res["n_pairs"] == 15 and res["scales"] == 3 and res["upsampled_to"] is None  # all 6*5/2 pairs
    diverse = ms_ssim_diversity(noise(12, 64), n_pairs=30, seed=0)
    assert diverse["n_pairs"] == 30 and diverse["ms_ssim"] < 0.2
    assert diverse["ci"][0] <= diverse["ms_ssim"] <= diverse["ci"][1]
    assert diverse == ms_ssim_diversity(noise(12, 64), n_pairs=30, seed=0)
    # the t-interval, as the module computed it before it called metrics/stats.py (bit for bit)
    m, sd, n = diverse["ms_ssim"], diverse["std"], diverse["n_pairs"]
    half = float(stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n))
    assert diverse["ci"] == (m - half, m + half)


def test_a_single_pair_has_no_interval():
    res = ms_ssim_diversity(noise(2, 32), n_pairs=5)
    assert res["n_pairs"] == 1 and res["std"] == 0.0 and np.isnan(res["ci"]).all()


def test_float_tensors_in_minus_one_one_give_the_same_value_as_uint8():
    x_u8 = noise(6, 32, channels=3, seed=1)
    x_float = torch.from_numpy(x_u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # `(N, 3, H, W)` in [-1, 1]
    a = ms_ssim_diversity(x_u8, n_pairs=10, seed=2)
    b = ms_ssim_diversity(x_float, n_pairs=10, seed=2)
    assert a["ms_ssim"] == pytest.approx(b["ms_ssim"], abs=1e-5)


def test_small_images_use_fewer_scales_or_upsample():
    x = noise(5, 28)  # PneumoniaMNIST size
    res = ms_ssim_diversity(x, n_pairs=10)
    assert res["scales"] == 2 and res["betas"] == ms_ssim_betas(2) and res["image_size"] == (28, 28)
    with pytest.raises(ValueError, match="upsample_to=44"):
        ms_ssim_diversity(x, n_pairs=10, scales=3)
    up = ms_ssim_diversity(x[:3], n_pairs=3, upsample_to=176)
    assert up["scales"] == 5 and up["upsampled_to"] == 176 and up["image_size"] == (176, 176)
    with pytest.raises(ValueError, match="smaller than the 11-px"):
        ms_ssim_diversity(noise(3, 8), n_pairs=3)


@pytest.mark.parametrize("images, message", [
    (torch.full((2, 1, 32, 32), 2.0), r"\[-1, 1\]"),
    (torch.zeros((2, 32, 32, 3)), "channels first"),
    (np.zeros((2, 32, 32, 5), dtype=np.uint8), "C = 1 or 3"),
    (np.zeros((2, 32, 32), dtype=np.int64), "dtype"),
])
def test_image_format_errors(images, message):
    with pytest.raises(ValueError, match=message):
        images_to_unit_tensor(images)


def test_diversity_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        ms_ssim_diversity(noise(1, 32), n_pairs=5)


def test_paired_ssim_and_psnr_hand_values():
    a = np.zeros((3, 32, 32), dtype=np.uint8)
    b = np.full((3, 32, 32), 51, dtype=np.uint8)  # 51 / 255 = 0.2 -> MSE 0.04 -> PSNR 10 log10(25)
    psnr = paired_psnr(a, b)
    assert psnr["per_pair"].shape == (3,)
    assert psnr["mean"] == pytest.approx(10 * np.log10(25.0), rel=1e-5)
    x = noise(4, 32, seed=3)
    ssim = paired_ssim(x, x)
    assert np.allclose(ssim["per_pair"], 1.0) and ssim["mean"] == pytest.approx(1.0)
    assert paired_ssim(x, noise(4, 32, seed=4))["mean"] < 0.1
    with pytest.raises(ValueError, match="same shape"):
        paired_ssim(x, x[:2])


def test_paired_mae_hand_values():
    x = noise(3, 16, seed=5)
    same = paired_mae(x, x)
    assert same["per_pair"].shape == (3,) and np.all(same["per_pair"] == 0) and same["mean"] == 0
    a = np.zeros((3, 16, 16), dtype=np.uint8)
    b = np.full((3, 16, 16), 51, dtype=np.uint8)  # 51 / 255 = 0.2
    assert paired_mae(a, b)["per_pair"] == pytest.approx([0.2] * 3)
    f = torch.zeros(3, 1, 16, 16)
    g = f + torch.tensor([0.0, 0.2, -0.6])[:, None, None, None]  # offsets in [-1, 1]: half of them in [0, 1]
    mae = paired_mae(f, g)
    assert mae["per_pair"] == pytest.approx([0.0, 0.1, 0.3]) and mae["mean"] == pytest.approx(0.4 / 3)
    assert paired_mae(g, f)["per_pair"] == pytest.approx(mae["per_pair"])  # symmetric
    black, half = f - 1.0, f - 1.0
    half[:, :, :8] = 1.0  # half the pixels black to white: off by 1 in [0, 1]
    assert paired_mae(black, half)["per_pair"] == pytest.approx([0.5] * 3)


def test_paired_scores_one_row_per_image_agreeing_with_each_metric():
    pred, truth = noise(4, 32, channels=3, seed=6), noise(4, 32, channels=3, seed=7)
    truth[0] = pred[0]  # one perfect translation
    table = paired_scores(pred, truth)
    assert list(table.columns) == ["psnr", "ssim", "mae"] and len(table) == 4
    np.testing.assert_allclose(table["psnr"], paired_psnr(pred, truth)["per_pair"])
    np.testing.assert_allclose(table["ssim"], paired_ssim(pred, truth)["per_pair"])
    np.testing.assert_allclose(table["mae"], paired_mae(pred, truth)["per_pair"])
    assert table.loc[0, "mae"] == 0 and table.loc[0, "ssim"] == pytest.approx(1.0)
    assert (table.loc[1:, "mae"] > 0.2).all()  # independent uniform noise: about 1/3
    floats = torch.from_numpy(pred).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    same = paired_scores(floats, torch.from_numpy(truth).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    np.testing.assert_allclose(same["mae"], table["mae"], atol=1e-6)  # uint8 and [-1, 1] floats agree


@pytest.mark.parametrize("fn", [paired_mae, paired_scores])
def test_paired_mae_and_scores_need_the_same_shape(fn):
    x = noise(4, 32, seed=3)
    with pytest.raises(ValueError, match="same shape"):
        fn(x, x[:2])
    with pytest.raises(ValueError, match="same shape"):
        fn(x, noise(4, 24, seed=3))
