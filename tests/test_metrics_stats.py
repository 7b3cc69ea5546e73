"""The statistics module: hand values, edge cases, and equality with the code it replaced.

``_old_*`` functions are frozen copies of the implementations that lived in ``metrics/utility.py``,
``experiments/sqaggan_study.py`` and ``metrics/turing.py`` before they called ``metrics/stats.py``;
the numbers must not have moved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from medgan_core.metrics.stats import (
    basic_bootstrap_interval,
    bootstrap_ci,
    bootstrap_resample_ci,
    cluster_bootstrap_ci,
    format_ci,
    interval_contains,
    paired_test,
    percentile_interval,
    t_interval,
)
from medgan_core.metrics.turing import bootstrap_f1_ci
from medgan_core.metrics.utility import paired_comparison, summarise


# ---- frozen copies of the old implementations --------------------------------------------------

def _old_t_interval(values):
    n = len(values)
    mean = float(np.mean(values)) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sd = float(np.std(values, ddof=1))
    half = float(sps.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    return mean, mean - half, mean + half, sd


def _old_paired(a, b):
    diffs = a - b
    mean, low, high, sd = _old_t_interval(diffs)
    if len(diffs) < 2:
        p_t = p_w = float("nan")
    elif sd == 0:
        p_t = 1.0 if mean == 0 else 0.0
        p_w = 1.0 if mean == 0 else float(sps.wilcoxon(diffs).pvalue)
    else:
        p_t = float(sps.ttest_rel(a, b).pvalue)
        p_w = 1.0 if not np.any(diffs) else float(sps.wilcoxon(diffs, zero_method="zsplit").pvalue)
    return mean, low, high, p_t, p_w


def _old_mean_ci(values, n_boot=1000, seed=0):
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    return float(v.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def _old_bootstrap_f1_ci(t, p, n_boot=1000, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), size=(n_boot, len(t)))
    tb, pb = t[idx], p[idx]
    tp = (tb & pb).sum(axis=1)
    denom = tb.sum(axis=1) + pb.sum(axis=1)
    vals = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


# ---- t interval ---------------------------------------------------------------------------------

def test_t_interval_hand_values_and_clip():
    half = sps.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # values 1, 2, 3: mean 2, sd 1
    assert t_interval([1.0, 2.0, 3.0]) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert half == pytest.approx(2.4841, abs=1e-4)
    assert t_interval([1.0, 2.0, 3.0], clip=(0.0, 3.0)) == pytest.approx((2.0, 0.0, 3.0))
    half90 = sps.t.ppf(0.95, 2) / np.sqrt(3)
    assert t_interval([1.0, 2.0, 3.0], level=0.9)[1] == pytest.approx(2.0 - half90)
    assert t_interval([1.0, np.nan, 2.0, 3.0, np.inf]) == t_interval([1.0, 2.0, 3.0])  # non-finite dropped


@pytest.mark.parametrize("values, mean", [([], np.nan), ([0.7], 0.7), ([np.nan, 0.4], 0.4)])
def test_t_interval_needs_two_values(values, mean):
    m, low, high = t_interval(values)
    assert (np.isnan(m) and np.isnan(mean)) or m == mean
    assert np.isnan(low) and np.isnan(high)


def test_t_interval_rejects_bad_level_and_shape():
    with pytest.raises(ValueError, match="level must lie in"):
        t_interval([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="one-dimensional"):
        t_interval(np.zeros((2, 2)))


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_t_interval_equals_the_old_utility_code(n):
    v = np.random.default_rng(n).uniform(0, 1, n)
    old = _old_t_interval(v)
    assert t_interval(v) == old[:3]  # bit for bit


def test_summarise_equals_the_old_code_with_its_clip():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"arm": np.repeat(["a", "b", "c"], 5), "seed": np.tile(range(5), 3),
                          "m": np.r_[rng.uniform(0.6, 0.9, 5), [0.0, 1.0, 1.0, 1.0, 1.0], rng.uniform(0, 1, 5)]})
    table.loc[14, "m"] = np.nan  # arm c has 4 values
    got = summarise(table, ["m"]).set_index("arm")
    for arm, grp in table.groupby("arm"):
        mean, low, high, sd = _old_t_interval(grp["m"].dropna().to_numpy(dtype=float))
        assert got.loc[arm, "mean"] == mean and got.loc[arm, "std"] == sd
        assert got.loc[arm, "ci_low"] == max(low, 0.0) and got.loc[arm, "ci_high"] == min(high, 1.0)
    assert got.loc["b", "ci_high"] == 1.0 and got.loc["c", "n_seeds"] == 4


# ---- paired test --------------------------------------------------------------------------------

def test_paired_test_hand_values():
    out = paired_test([0.6, 0.8, 1.0], [0.5, 0.6, 0.7])  # differences 0.1, 0.2, 0.3
    half = sps.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert out["mean_diff"] == pytest.approx(0.2) and out["n"] == 3
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((0.2 - half, 0.2 + half))
    assert out["t_pvalue"] == pytest.approx(sps.ttest_1samp([0.1, 0.2, 0.3], 0).pvalue)
    assert out["wilcoxon_pvalue"] == pytest.approx(0.25)  # smallest exact two-sided p with 3 pairs
    assert out["diffs"] == pytest.approx([0.1, 0.2, 0.3])


PAIRED_CASES = [
    (np.array([0.6, 0.8, 1.0, 0.7, 0.75]), np.array([0.5, 0.6, 0.7, 0.72, 0.7])),  # ordinary
    (np.array([0.75, 0.5, 1.0]), np.array([0.5, 0.25, 0.75])),  # every seed moved by exactly 0.25 (sd = 0)
    (np.array([0.6, 0.7, 0.8]), np.array([0.6, 0.7, 0.8])),  # no difference at all
    (np.array([0.6, 0.7, 0.8, 0.9]), np.array([0.6, 0.6, 0.8, 0.7])),  # zero differences among others
    (np.array([0.6]), np.array([0.5])),  # one seed
]


@pytest.mark.parametrize("a, b", PAIRED_CASES)
def test_paired_test_and_paired_comparison_equal_the_old_code(a, b):
    old = _old_paired(a, b)
    new = paired_test(a, b)
    got = (new["mean_diff"], new["ci_low"], new["ci_high"], new["t_pvalue"], new["wilcoxon_pvalue"])
    np.testing.assert_array_equal(got, old)  # NaN == NaN here
    table = pd.DataFrame({"arm": ["gan"] * len(a) + ["real"] * len(b), "seed": list(range(len(a))) * 2,
                          "balanced_accuracy": np.r_[a, b]})
    pt = paired_comparison(table, "gan", "real")
    np.testing.assert_array_equal((pt.mean_diff, pt.ci_low, pt.ci_high, pt.t_pvalue, pt.wilcoxon_pvalue), old)


def test_paired_test_drops_incomplete_pairs_and_checks_lengths():
    out = paired_test([0.6, np.nan, 0.8, 1.0], [0.5, 0.4, 0.6, 0.7])
    assert out["n"] == 3 and out["mean_diff"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="one length"):
        paired_test([1.0, 2.0], [1.0])


# ---- bootstraps ---------------------------------------------------------------------------------

def test_bootstrap_ci_hand_values():
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25, 0.25)  # nothing varies
    est, low, high = bootstrap_ci([0.0, 1.0], n_boot=2000)  # resample means are 0, 0.5 or 1
    assert (est, low, high) == (0.5, 0.0, 1.0)
    assert bootstrap_ci([np.nan, np.inf]) == pytest.approx((np.nan,) * 3, nan_ok=True)
    med = bootstrap_ci([1.0, 2.0, 3.0, 100.0], stat=np.median, n_boot=200)
    assert med[0] == 2.5 and med[2] <= 100.0


def test_bootstrap_ci_with_a_stat_without_axis():
    v = np.random.default_rng(1).normal(size=30)
    trimmed = lambda x: float(np.mean(np.sort(x)[1:-1]))  # noqa: E731  (takes no axis argument)
    est, low, high = bootstrap_ci(v, stat=trimmed, n_boot=200, seed=2)
    assert est == trimmed(v) and low < est < high


@pytest.mark.parametrize("seed", [0, 3])
def test_bootstrap_ci_equals_the_old_mean_ci(seed):
    v = np.r_[np.random.default_rng(seed).exponential(size=25), np.nan]
    assert bootstrap_ci(v, seed=seed) == _old_mean_ci(v, seed=seed)  # bit for bit


def test_bootstrap_resample_ci_and_f1_equal_the_old_turing_code():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=60) < 0.5
    said = np.where(rng.uniform(size=60) < 0.7, truth, ~truth)
    assert bootstrap_f1_ci(truth, said, n_boot=500, seed=4) == _old_bootstrap_f1_ci(truth, said, 500, 4)
    acc = lambda idx: (truth[idx] == said[idx]).mean(axis=1)  # noqa: E731
    est, low, high = bootstrap_resample_ci(60, acc, n_boot=500, seed=4)
    assert est == pytest.approx((truth == said).mean()) and low < est < high
    with pytest.raises(ValueError, match="one value per resample"):
        bootstrap_resample_ci(60, lambda idx: idx, n_boot=10)


def test_cluster_bootstrap_hand_values():
    # Group a holds 1, 1, 1 and group b holds 5: a resample of two groups is {a, a} (mean 1),
    # {a, b} (mean 2) or {b, b} (mean 5), with chances 1/4, 1/2, 1/4.
    est, low, high = cluster_bootstrap_ci([1.0, 1.0, 1.0, 5.0], ["a", "a", "a", "b"], n_boot=1000)
    assert (est, low, high) == (2.0, 1.0, 5.0)
    with pytest.raises(ValueError, match="one group label per value"):
        cluster_bootstrap_ci([1.0, 2.0], ["a"])


def test_cluster_bootstrap_is_wider_than_a_naive_one_for_clustered_values():
    rng = np.random.default_rng(0)
    patient_level = rng.normal(size=6)
    values = np.repeat(patient_level, 20) + rng.normal(scale=0.01, size=120)  # 20 near-copies per patient
    groups = np.repeat(np.arange(6), 20)
    _, lo_c, hi_c = cluster_bootstrap_ci(values, groups, seed=1)
    _, lo_n, hi_n = bootstrap_ci(values, seed=1)
    assert hi_c - lo_c > 2.5 * (hi_n - lo_n)


def test_cluster_bootstrap_with_singleton_groups_is_the_plain_bootstrap():
    v = np.random.default_rng(5).normal(size=15)
    single = cluster_bootstrap_ci(v, np.arange(15), seed=7)
    assert single == pytest.approx(bootstrap_ci(v, seed=7), rel=1e-12)


def test_basic_and_percentile_intervals_hand_values():
    samples = np.arange(101.0)  # quantiles 2.5 and 97.5
    assert percentile_interval(samples) == (2.5, 97.5)
    boots = samples + 10.0  # bootstrap values above the estimate 10: q = 12.5, 107.5
    assert basic_bootstrap_interval(10.0, boots) == (20.0 - 107.5, 20.0 - 12.5)
    assert basic_bootstrap_interval(10.0, boots, clip=(0.0, np.inf)) == (0.0, 7.5)
    assert np.isnan(percentile_interval([np.nan])).all()


# ---- reporting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("est, low, high, text", [
    (0.8123, 0.79, 0.8351, "0.812 (0.790 to 0.835)"),
    (0.8, np.nan, np.nan, "0.800 (n/a)"),  # one seed
    (1.0, 1.0, 1.0, "1.000 (n/a)"),  # every seed gave the same score
    (np.nan, 0.1, 0.2, "n/a"),
])
def test_format_ci(est, low, high, text):
    assert format_ci(est, low, high) == text


def test_interval_contains():
    assert interval_contains(0.5, 0.4, 0.6) and interval_contains(0.4, 0.4, 0.4)
    assert not interval_contains(0.3, 0.4, 0.6) and not interval_contains(0.5, np.nan, 0.6)
