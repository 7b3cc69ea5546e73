"""Feature control: descriptors by hand, the regressor's ceiling, and fake generators that follow or ignore f."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from medgan_core.data.nodule_sequences import scale_features
from medgan_core.metrics.control import (feature_control, fit_feature_regressor, nodule_descriptors,
                                         regressor_validity, spearman_ci)
from medgan_core.metrics.stats import bootstrap_ci

S, T = 16, 3


def disk(radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:S, :S]
    return (yy - 7.5) ** 2 + (xx - 7.5) ** 2 <= radius ** 2


def brightness(rating: np.ndarray) -> np.ndarray:
    """The nodule intensity that goes with a rating 1..5: -0.6 .. 0.6."""
    return -0.6 + 0.3 * (np.asarray(rating, float) - 1)


def nodules(ratings: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences `(N, T, S, S)`: noisy dark lung, a disk of rating-dependent intensity; and the masks."""
    rng = np.random.default_rng(seed)
    n = len(ratings)
    x = rng.uniform(-1.0, -0.8, (n, T, S, S))
    m = np.zeros((n, T, S, S), bool)
    for i, r in enumerate(ratings):
        m[i] = disk(rng.uniform(3, 5))[None]
        x[i][m[i]] = brightness(r) + rng.normal(scale=0.03, size=m[i].sum())
    return x.astype(np.float32), m


@pytest.fixture(scope="module")
def regressor():
    ratings = np.tile(np.arange(1, 6), 10)
    x, m = nodules(ratings, seed=0)
    return fit_feature_regressor(x[:, T // 2], m[:, T // 2], ratings)


def test_nodule_descriptors_hand_values():
    x = np.full((1, S, S), -0.5)
    m = disk(3)[None]
    x[m] = 0.8
    d = nodule_descriptors(x, m)
    assert d.shape == (1, 74)
    assert d[0, :6] == pytest.approx([0.8, 0.0, 0.8, 0.8, 0.8, 0.8])  # mean, std, p10, p50, p90, max inside
    assert d[0, 6:8] == pytest.approx([-0.5, 1.3])  # ring mean, contrast
    assert d[0, 9] == pytest.approx(m.sum() / S ** 2)
    with pytest.raises(ValueError, match=r"\(N, S, S\)"):
        nodule_descriptors(x, m[:, :8])


def test_regressor_validity_on_held_out_nodules(regressor):
    truth = np.tile(np.arange(1, 6), 4)
    x, m = nodules(truth, seed=1)
    rho = regressor_validity(regressor, x[:, T // 2], m[:, T // 2], truth)
    pred = regressor.predict(nodule_descriptors(x[:, T // 2], m[:, T // 2]))
    assert rho == pytest.approx(spearmanr(truth, pred).statistic) and rho > 0.9  # as the notebook computed it
    assert np.isnan(regressor_validity(regressor, x[:, T // 2], m[:, T // 2], np.full(20, 3)))
    with pytest.raises(ValueError, match="two distinct values"):
        fit_feature_regressor(x[:, T // 2], m[:, T // 2], np.full(20, 3))


def test_spearman_ci_by_hand_and_as_the_old_mean_ci():
    requested = np.tile([1.0, 2.0, 3.0], 3)
    measured = np.r_[[1, 2, 3], [3, 2, 1], [2, 2, 2]].astype(float)  # rho 1, -1, constant -> 0
    groups = np.repeat([0, 1, 2], 3)
    rho, low, high = spearman_ci(requested, measured, groups, n_boot=200, seed=0)
    assert (rho, low, high) == bootstrap_ci([1.0, -1.0, 0.0], n_boot=200, seed=0)
    assert rho == 0.0 and low == -1.0 and high == 1.0
    with pytest.raises(ValueError, match="single requested level"):
        spearman_ci([1.0, 1.0], [1.0, 2.0], [0, 0])


def _inputs(n: int = 12):
    x, m = nodules(np.full(n, 3), seed=2)
    backgrounds = np.where(m, -0.9, x).astype(np.float32)  # nodules erased
    base_f = np.full((n, 2), 0.5, np.float32)
    return backgrounds, m, base_f


def test_a_generator_that_follows_the_request_scores_high(regressor):
    backgrounds, m, base_f = _inputs()
    asked = []

    def follows(x_in, masks, f):  # draws the nodule at the intensity of the requested rating
        asked.append(f[:, 1].copy())
        rating = 1 + 4 * f[:, 1]
        return np.where(masks, brightness(rating)[:, None, None, None], x_in)

    res = feature_control(follows, regressor, backgrounds, m, base_f, feature_index=1, seed=0)
    assert [a[0] for a in asked] == pytest.approx(scale_features(np.arange(1, 6)))  # 0, .25, .5, .75, 1
    assert res["rho"] == pytest.approx(1.0) and res["ci"] == pytest.approx((1.0, 1.0))
    assert res["mae"] < 0.5 and res["mode"] == "inject"
    assert list(res["per_level"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert np.all(np.diff(list(res["per_level"].values())) > 0)
    assert len(res["table"]) == 5 * len(backgrounds)


def test_a_generator_that_ignores_the_request_scores_near_zero(regressor):
    backgrounds, m, base_f = _inputs(20)
    rng = np.random.default_rng(3)

    def ignores(x_in, masks, f):  # a random rating per image, whatever was asked
        rating = rng.integers(1, 6, len(x_in))
        return np.where(masks, brightness(rating)[:, None, None, None], x_in)

    res = feature_control(ignores, regressor, backgrounds, m, base_f, feature_index=0, mode="reconstruct", seed=0)
    assert abs(res["rho"]) < 0.3 and res["ci"][0] < 0 < res["ci"][1]
    constant = feature_control(lambda x, mm, f: np.where(mm, 0.0, x), regressor, backgrounds, m, base_f, 0)
    assert (constant["rho"], *constant["ci"]) == (0.0, 0.0, 0.0)


def test_feature_control_checks_its_inputs(regressor):
    backgrounds, m, base_f = _inputs(4)
    with pytest.raises(ValueError, match="mode"):
        feature_control(lambda x, mm, f: x, regressor, backgrounds, m, base_f, 0, mode="edit")
    with pytest.raises(ValueError, match="generate_fn returned shape"):
        feature_control(lambda x, mm, f: x[:, :, None], regressor, backgrounds, m, base_f, 0)
    with pytest.raises(ValueError, match="feature_index"):
        feature_control(lambda x, mm, f: x, regressor, backgrounds, m, base_f, 5)
