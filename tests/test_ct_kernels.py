"""The simulated CT reconstruction-kernel styles of experiment 04 (data/ct_kernels.py)."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_core.data.ct_kernels import STYLES, KernelStyle, apply_style, kernel_pair, radial_frequency, to_unit


def phantom(n: int = 64) -> np.ndarray:
    """A disc with a sharp edge and a small bright square inside, in [0, 1]."""
    yy, xx = np.mgrid[:n, :n]
    img = np.where((yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 3) ** 2, 0.6, 0.1)
    img[n // 2 - 3:n // 2 + 3, n // 2 - 3:n // 2 + 3] = 0.9
    return img


def high_band_power(x: np.ndarray) -> float:
    f = radial_frequency(x.shape)
    return float((np.abs(np.fft.fft2(x - x.mean())) ** 2)[f > 0.25].sum())


def test_styles_are_deterministic_for_a_seed_and_differ_between_seeds():
    img = phantom()
    a, b, c = apply_style(img, "sharp", 3), apply_style(img, "sharp", 3), apply_style(img, "sharp", 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    s1, h1 = kernel_pair(img, 7)
    s2, h2 = kernel_pair(img, 7)
    assert np.array_equal(s1, s2) and np.array_equal(h1, h2)
    assert a.dtype == np.float32 and a.shape == img.shape and 0 <= a.min() and a.max() <= 1


def test_sharp_keeps_more_high_frequencies_than_smooth_and_both_keep_the_mean():
    img = phantom()
    smooth, sharp = kernel_pair(img, 0)
    assert high_band_power(sharp) > 10 * high_band_power(smooth)
    # M(0) = 1: the mean of a region far from the edges is kept (up to the noise)
    inner = (slice(26, 29), slice(40, 43))
    assert abs(smooth[inner].mean() - 0.6) < 0.02
    for style in STYLES.values():
        assert style.mtf(np.array([0.0]))[0] == pytest.approx(1.0)


def test_noise_has_the_style_sigma_on_a_flat_slice():
    flat = np.full((128, 128), 0.5)
    for name, style in STYLES.items():
        out = apply_style(flat, name, 1)
        assert out.std() == pytest.approx(style.sigma, rel=0.02)
        assert out.mean() == pytest.approx(0.5, abs=0.01)
    silent = KernelStyle("silent", f_cut=0.3)
    assert np.allclose(apply_style(flat, silent, 0), 0.5, atol=1e-6)


def test_bad_input_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="to_unit first"):
        apply_style(np.full((8, 8), 2.0), "smooth", 0)
    with pytest.raises(ValueError, match="2-D"):
        apply_style(np.zeros((2, 8, 8)), "smooth", 0)
    with pytest.raises(ValueError, match="unknown kernel style"):
        apply_style(np.zeros((8, 8)), "medium", 0)
    with pytest.raises(ValueError, match="f_cut > 0"):
        KernelStyle("bad", f_cut=0.0)
    with pytest.raises(ValueError, match="constant slice"):
        to_unit(np.ones((4, 4)))
    assert to_unit(np.array([[-1000.0, 0.0], [400.0, 3000.0]]), -1000, 400).tolist() == [[0.0, 1000 / 1400], [1.0, 1.0]]
