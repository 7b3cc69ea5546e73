"""Precision/recall and density/coverage on sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_core.metrics.prdc import knn_radii, prdc



def test_knn_radii_on_a_line():
    x = np.arange(6, dtype=float)[:, None] ** 2  # points 0, 1, 4, 9, 16, 25
    # distance to the 2nd nearest other point: 0 -> 4 (1, 4), 1 -> 3 (1, 3), 4 -> 4 (3, 4),
    # 9 -> 7 (5, 7), 16 -> 9 (7, 9), 25 -> 16 (9, 16)
    assert knn_radii(x, k=2).tolist() == [4.0, 3.0, 4.0, 7.0, 9.0, 16.0]
    assert knn_radii(x, k=2, chunk_size=4).tolist() == [4.0, 3.0, 4.0, 7.0, 9.0, 16.0]


@pytest.mark.parametrize("n, d, k", [(50, 3, 5), (120, 16, 5), (30, 2, 3)])
def test_identical_sets_score_one(n, d, k):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    res = prdc(x, x.copy(), k=k)
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["coverage"] == 1.0
    assert res["density"] == pytest.approx(1.0, abs=1e-12)


def test_far_apart_sets_score_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    res = prdc(x, x + 1000.0, k=5)
    assert res == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_mode_collapse_keeps_precision_but_loses_recall_and_coverage():
    rng = np.random.default_rng(0)
    real = np.r_[rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 10.0]  # two modes
    fake = rng.normal(size=(200, 2))  # only the first mode
    res = prdc(real, fake, k=5, chunk_size=64)  # small chunks exercise the block loop
    assert res["precision"] > 0.9
    assert res["recall"] == pytest.approx(0.5, abs=0.05)
    assert res["coverage"] == pytest.approx(0.5, abs=0.05)
    assert res == prdc(real, fake, k=5)  # chunking does not change the result


def test_hand_computed_one_dimensional_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1 radii: 1, 1, 1, 1
    fake = np.array([[0.5], [10.0], [11.5]])  # fake radii (k = 1): 9.5, 1.5, 1.5
    res = prdc(real, fake, k=1)
    # precision: 0.5 lies within 1 of reals 0 and 1; 10 and 11.5 in no ball -> 1/3
    # density: (2 + 0 + 0) / (1 * 3) = 2/3
    # recall: every real lies within 9.5 of fake 0.5 -> 1
    # coverage: nearest fake of 0 and 1 is at 0.5 < 1; of 2 and 3 at 1.5 and 2.5 -> 2/4
    assert res == pytest.approx({"precision": 1 / 3, "recall": 1.0, "density": 2 / 3, "coverage": 0.5})


def test_prdc_input_errors():
    with pytest.raises(ValueError, match="at least 6"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)), k=5)
    with pytest.raises(ValueError, match="feature columns"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)), k=5)
    with pytest.raises(ValueError, match="k must be"):
        prdc(np.zeros((10, 2)), np.zeros((10, 2)), k=0)
