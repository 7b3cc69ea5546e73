"""Background error and inter-slice continuity of sequences, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_core.metrics.sequence import background_error, continuity


def test_background_error_hand_values():
    ref = np.zeros((2, 3, 4, 4), np.float32)
    region = np.zeros(ref.shape, bool)
    region[:, :, :2] = True  # the top half of every slice is excluded
    out = ref.copy()
    out[0, :, :2] = 5.0  # inside the region: ignored
    out[0, :, 2:] = 0.5  # outside: |diff| 0.5 -> L1 0.5, MSE 0.25, PSNR 10 log10(4 / 0.25)
    out[1, 0, 3, 0] = 1.0  # one of 24 outside pixels off by 1 -> L1 = MSE = 1/24
    err = background_error(out, ref, region)
    assert list(err.columns) == ["l1", "psnr"] and len(err) == 2
    assert err.l1.tolist() == pytest.approx([0.5, 1 / 24])
    assert err.psnr.tolist() == pytest.approx([10 * np.log10(16.0), 10 * np.log10(4 * 24)])
    assert background_error(out, ref, region, data_range=1.0).psnr[0] == pytest.approx(10 * np.log10(4.0))


def test_background_error_identical_and_errors():
    x = np.random.default_rng(0).uniform(-1, 1, (3, 2, 5, 5))
    err = background_error(x, x, np.zeros(x.shape, bool))
    assert (err.l1 == 0).all() and err.psnr.tolist() == pytest.approx([10 * np.log10(4 / 1e-12)] * 3)  # the cap
    with pytest.raises(ValueError, match="one shape"):
        background_error(x, x[:2], np.zeros(x.shape, bool))
    with pytest.raises(ValueError, match="data_range"):
        background_error(x, x, np.zeros(x.shape, bool), data_range=0)


def test_continuity_hand_values():
    seqs = np.zeros((3, 3, 4, 4))
    region = np.zeros(seqs.shape, bool)
    # sequence 0: region pixels go 0 -> 1 -> 3 over the slices: |diffs| 1 and 2, mean 1.5
    seqs[0, 1, 1:3, 1:3], seqs[0, 2, 1:3, 1:3] = 1.0, 3.0
    seqs[0, 2, 0, 0] = 100.0  # outside the region: ignored
    region[0, 0, 1:3, 1:3] = True  # region on the first slice only: the union over slices counts
    # sequence 1: one region pixel alternating 0, 1, 0 -> mean |diff| 1
    seqs[1, 1, 0, 0] = 1.0
    region[1, 2, 0, 0] = True
    # sequence 2: empty region -> NaN
    got = continuity(seqs, region)
    assert got.dtype == np.float64 and got[:2].tolist() == pytest.approx([1.5, 1.0]) and np.isnan(got[2])


def test_continuity_checks_shapes():
    with pytest.raises(ValueError, match="T >= 2"):
        continuity(np.zeros((2, 1, 4, 4)), np.zeros((2, 1, 4, 4), bool))
    with pytest.raises(ValueError, match="T >= 2"):
        continuity(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 5), bool))


def test_masked_error_compares_only_the_masked_pixels():
    from medgan_core.metrics.sequence import background_error, masked_error
    ref = np.zeros((2, 3, 4, 4))
    out = ref.copy()
    where = np.zeros_like(ref, bool)
    where[:, :, :2, :2] = True
    out[where] = 0.5  # wrong inside the mask, right outside
    inside = masked_error(out, ref, where)
    assert np.allclose(inside["l1"], 0.5) and np.allclose(inside["psnr"], 10 * np.log10(4 / 0.25))
    assert np.allclose(background_error(out, ref, where)["l1"], 0.0)
    with pytest.raises(ValueError, match="one shape"):
        masked_error(out, ref, where[:1])
