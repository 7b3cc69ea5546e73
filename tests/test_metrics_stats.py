"""The statistics module: hand values, edge cases, and equality with the code it replaced.

``_old_*`` functions are frozen copies of the implementations that lived in ``metrics/utility.py``,
``experiments/sqaggan_study.py`` and ``metrics/turing.py`` before they called ``metrics/stats.py``;
the numbers must not have moved, except where the study's rules changed them on purpose: no
interval from fewer than 3 values, no Wilcoxon p that cannot reach 0.05, no interval that
excludes its estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from medgan_core.metrics.stats import (
    EstimateOutsideIntervalWarning,
    basic_bootstrap_interval,
    bootstrap_ci,
    bootstrap_resample_ci,
    cluster_bootstrap_ci,
    cluster_bootstrap_resample_ci,
    format_ci,
    include_estimate,
    interval_contains,
    interval_note,
    paired_test,
    percentile_interval,
    seed_and_test_interval,
    shifted_percentile_interval,
    t_interval,
    wilcoxon_min_pvalue,
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


@pytest.mark.parametrize("values, mean", [([], np.nan), ([0.7], 0.7), ([np.nan, 0.4], 0.4), ([0.25, 0.75], 0.5)])
def test_t_interval_needs_three_values(values, mean):
    m, low, high = t_interval(values)
    assert (np.isnan(m) and np.isnan(mean)) or m == mean
    assert np.isnan(low) and np.isnan(high)


def test_t_interval_rejects_bad_level_and_shape():
    with pytest.raises(ValueError, match="level must lie in"):
        t_interval([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="one-dimensional"):
        t_interval(np.zeros((2, 2)))


@pytest.mark.parametrize("n", [3, 5, 12])
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
    assert np.isnan(out["wilcoxon_pvalue"])  # the smallest exact two-sided p with 3 pairs is 0.25
    assert out["wilcoxon_note"] == "with 3 pairs the smallest two-sided Wilcoxon p is 0.25, so it cannot reach 0.05"
    assert out["diffs"] == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.parametrize("n, smallest", [(0, 1.0), (1, 1.0), (3, 0.25), (5, 0.0625), (6, 0.03125), (10, 2 / 1024)])
def test_wilcoxon_min_pvalue_is_two_over_two_to_the_n(n, smallest):
    assert wilcoxon_min_pvalue(n) == smallest
    if n >= 1:  # reached when every difference has the same sign
        assert sps.wilcoxon(np.arange(1.0, n + 1)).pvalue == pytest.approx(smallest)


def test_wilcoxon_p_is_quoted_from_six_pairs_only():
    b = np.zeros(6)
    five = paired_test(np.arange(1.0, 6.0), b[:5])  # all five differences positive: p would be 0.0625
    assert np.isnan(five["wilcoxon_pvalue"]) and five["n"] == 5
    assert five["wilcoxon_note"] == "with 5 pairs the smallest two-sided Wilcoxon p is 0.0625, so it cannot reach 0.05"
    assert five["t_pvalue"] < 0.05  # the t-test is still reported
    six = paired_test(np.arange(1.0, 7.0), b)
    assert six["wilcoxon_pvalue"] == pytest.approx(0.03125) and six["wilcoxon_note"] == ""
    dropped = paired_test(np.r_[np.arange(1.0, 6.0), np.nan], b)  # the NaN pair leaves 5
    assert np.isnan(dropped["wilcoxon_pvalue"]) and "5 pairs" in dropped["wilcoxon_note"]


PAIRED_CASES = [
    (np.array([0.6, 0.8, 1.0, 0.7, 0.75]), np.array([0.5, 0.6, 0.7, 0.72, 0.7])),  # ordinary, 5 pairs
    (np.array([0.75, 0.5, 1.0]), np.array([0.5, 0.25, 0.75])),  # every seed moved by exactly 0.25 (sd = 0)
    (np.array([0.6, 0.7, 0.8]), np.array([0.6, 0.7, 0.8])),  # no difference at all
    (np.array([0.6, 0.7, 0.8, 0.9]), np.array([0.6, 0.6, 0.8, 0.7])),  # zero differences among others
    (np.array([0.6]), np.array([0.5])),  # one seed
    (np.array([0.6, 0.8, 1.0, 0.7, 0.75, 0.9, 0.5]), np.array([0.5, 0.6, 0.7, 0.72, 0.7, 0.9, 0.52])),  # 7 pairs
    (np.full(6, 0.75), np.full(6, 0.5)),  # 6 pairs, sd = 0
    (np.array([0.6, 0.7, 0.8, 0.9, 0.5, 0.4]), np.array([0.6, 0.6, 0.8, 0.7, 0.45, 0.4])),  # 6 pairs with zeros
]


@pytest.mark.parametrize("a, b", PAIRED_CASES)
def test_paired_test_equals_the_old_code_where_the_rules_allow(a, b):
    old_mean, old_low, old_high, old_t, old_w = _old_paired(a, b)
    new = paired_test(a, b)
    n = len(a)
    assert new["mean_diff"] == old_mean or (np.isnan(new["mean_diff"]) and np.isnan(old_mean))
    np.testing.assert_array_equal(new["t_pvalue"], old_t)  # NaN == NaN here
    if n >= 3:
        assert (new["ci_low"], new["ci_high"]) == (old_low, old_high)
    else:
        assert np.isnan(new["ci_low"]) and np.isnan(new["ci_high"])
    if n >= 6:
        assert new["wilcoxon_pvalue"] == old_w and new["wilcoxon_note"] == ""
    else:
        assert np.isnan(new["wilcoxon_pvalue"]) and f"with {n} pair" in new["wilcoxon_note"]


@pytest.mark.parametrize("a, b", PAIRED_CASES[:2] + PAIRED_CASES[5:6])
def test_paired_comparison_reports_paired_test(a, b):
    new = paired_test(a, b)
    table = pd.DataFrame({"arm": ["gan"] * len(a) + ["real"] * len(b), "seed": list(range(len(a))) * 2,
                          "balanced_accuracy": np.r_[a, b]})
    pt = paired_comparison(table, "gan", "real")
    np.testing.assert_array_equal((pt.mean_diff, pt.ci_low, pt.ci_high, pt.t_pvalue, pt.wilcoxon_pvalue),
                                  [new[k] for k in ("mean_diff", "ci_low", "ci_high", "t_pvalue", "wilcoxon_pvalue")])


def test_paired_test_keeps_a_bounded_difference_within_its_bounds():
    a, b = np.array([1.0, 1.0, 0.2]), np.array([0.0, 0.0, 0.1])  # differences 1, 1, 0.1: t-interval past 1
    free, bounded = paired_test(a, b), paired_test(a, b, bounds=(-1.0, 1.0))
    assert free["ci_high"] > 1.0 and bounded["ci_high"] == 1.0 and bounded["ci_low"] == free["ci_low"]
    assert bounded["ci_low"] <= bounded["mean_diff"] <= bounded["ci_high"]


def test_paired_test_drops_incomplete_pairs_and_checks_lengths():
    out = paired_test([0.6, np.nan, 0.8, 1.0], [0.5, 0.4, 0.6, 0.7])
    assert out["n"] == 3 and out["mean_diff"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="one length"):
        paired_test([1.0, 2.0], [1.0])


# ---- bootstraps ---------------------------------------------------------------------------------

def test_bootstrap_ci_hand_values():
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25, 0.25)  # nothing varies
    # resample means of 0, 1, 1 are 0 (chance 1/27 > 2.5%), 1/3, 2/3 or 1 (chance 8/27 > 2.5%)
    assert bootstrap_ci([0.0, 1.0, 1.0], n_boot=2000) == (2 / 3, 0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0]) == pytest.approx((0.5, np.nan, np.nan), nan_ok=True)  # fewer than 3 values
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


def test_a_percentile_interval_that_misses_its_estimate_is_widened_with_a_warning():
    # The number of distinct values: a sample of 30 distinct values has 30, a resample about 19
    # (it repeats some), so every resample lies below the estimate.
    distinct = lambda x: float(len(np.unique(x)))  # noqa: E731
    with pytest.warns(EstimateOutsideIntervalWarning, match="bootstrap_resample_ci"):
        est, low, high = bootstrap_ci(np.arange(30.0), stat=distinct, n_boot=200)
    assert est == 30.0 and high == 30.0 and low < 25.0 and interval_contains(est, low, high)


def test_include_estimate():
    assert include_estimate(0.5, 0.4, 0.6) == (0.4, 0.6)
    assert np.isnan(include_estimate(0.5, np.nan, 0.6)[0])
    with pytest.warns(EstimateOutsideIntervalWarning, match="my interval.*excluded its estimate 0.096"):
        assert include_estimate(0.096, 0.0, 0.065, "my interval") == (0.0, 0.096)


def test_cluster_bootstrap_resamples_whole_groups():
    groups = np.array(["a", "a", "a", "b", "c", "c"])
    seen = []

    def record(idx: np.ndarray) -> float:
        seen.append(idx.copy())
        return float(len(idx))

    est, _, _ = cluster_bootstrap_resample_ci(groups, record, n_boot=50, seed=0)
    assert est == 6.0 and np.array_equal(seen[0], np.arange(6))  # the estimate: every row, in order
    whole = {"a": [0, 1, 2], "b": [3], "c": [4, 5]}
    for idx in seen[1:]:
        parts, i = [], 0
        while i < len(idx):  # split the resample into its groups: each must be a whole group, in order
            label = groups[idx[i]]
            assert list(idx[i:i + len(whole[label])]) == whole[label]
            parts.append(label)
            i += len(whole[label])
        assert len(parts) == 3  # as many groups as there are
    # Group a holds 1, 1, 1, b holds 5, c holds 3, 3: the mean of every row is 14 / 6.
    est, low, high = cluster_bootstrap_ci([1.0, 1.0, 1.0, 5.0, 3.0, 3.0], groups, n_boot=1000)
    assert est == pytest.approx(14 / 6) and low == 1.0 and high == 5.0  # {a, a, a} and {b, b, b} occur
    assert cluster_bootstrap_ci([1.0, 1.0, 1.0, 5.0], ["a", "a", "a", "b"]) == pytest.approx(
        (2.0, np.nan, np.nan), nan_ok=True)  # two groups: no interval
    with pytest.raises(ValueError, match="one group label per value"):
        cluster_bootstrap_ci([1.0, 2.0], ["a"])


def test_cluster_bootstrap_within_strata_keeps_both_samples():
    # Two samples stacked: real rows clustered in 4 patients, generated rows one per image.
    rng = np.random.default_rng(0)
    real = np.repeat(rng.normal(size=4), 5)  # `(20,)` 5 near-copies per patient
    fake = rng.normal(size=12) + 1.0
    rows = np.r_[real, fake]
    groups = np.r_[np.repeat(np.arange(4), 5), 100 + np.arange(12)]
    strata = np.r_[np.zeros(20), np.ones(12)]
    counts = []

    def mean_gap(idx: np.ndarray) -> float:
        counts.append((int((strata[idx] == 0).sum()), int((strata[idx] == 1).sum())))
        return float(rows[idx][strata[idx] == 1].mean() - rows[idx][strata[idx] == 0].mean())

    est, low, high = cluster_bootstrap_resample_ci(groups, mean_gap, n_boot=200, seed=1, strata=strata)
    assert est == pytest.approx(fake.mean() - real.mean()) and low < est < high
    assert set(counts) == {(20, 12)}  # every resample holds 4 patients of 5 rows and 12 generated rows
    with pytest.raises(ValueError, match="spans the strata"):
        cluster_bootstrap_resample_ci(np.zeros(32), mean_gap, strata=strata)


def test_cluster_bootstrap_is_wider_than_the_iid_one_for_clustered_values():
    rng = np.random.default_rng(0)
    patient_level = rng.normal(size=6)
    values = np.repeat(patient_level, 30) + rng.normal(scale=0.01, size=180)  # 6 groups of 30 near-copies
    groups = np.repeat(np.arange(6), 30)
    est_c, lo_c, hi_c = cluster_bootstrap_ci(values, groups, seed=1)
    est_n, lo_n, hi_n = bootstrap_ci(values, seed=1)
    assert est_c == est_n and interval_contains(est_c, lo_c, hi_c)
    assert hi_c - lo_c > 3.0 * (hi_n - lo_n)  # 6 independent units, not 180


def test_cluster_bootstrap_with_singleton_groups_is_the_plain_bootstrap():
    v = np.random.default_rng(5).normal(size=15)
    single = cluster_bootstrap_ci(v, np.arange(15), seed=7)
    assert single == pytest.approx(bootstrap_ci(v, seed=7), rel=1e-12)


def test_basic_shifted_and_percentile_intervals_hand_values():
    samples = np.arange(101.0)  # quantiles 2.5 and 97.5, median 50
    assert percentile_interval(samples) == (2.5, 97.5)
    assert np.isnan(percentile_interval([np.nan])).all()
    boots = samples + 30.0  # bootstrap values above the estimate 40: q = 32.5, 127.5
    assert basic_bootstrap_interval(40.0, boots) == (80.0 - 127.5, 80.0 - 32.5)
    assert basic_bootstrap_interval(40.0, boots, clip=(0.0, np.inf)) == (0.0, 47.5)
    # shifted: the median 80 moved onto the estimate 40, so [32.5 - 40, 127.5 - 40]
    assert shifted_percentile_interval(40.0, boots) == (-7.5, 87.5)
    assert shifted_percentile_interval(40.0, boots, clip=(0.0, np.inf)) == (0.0, 87.5)
    assert np.isnan(shifted_percentile_interval(np.nan, boots)).all()


def test_basic_interval_that_excludes_its_estimate_is_widened_and_the_shifted_one_contains_it():
    boots = np.arange(101.0) + 10.0  # every resample above the estimate 10 (FID of near-identical sets)
    raw = (20.0 - 107.5, 20.0 - 12.5)  # (-87.5, 7.5): below the estimate
    assert not interval_contains(10.0, *raw)
    with pytest.warns(EstimateOutsideIntervalWarning, match="basic_bootstrap_interval"):
        assert basic_bootstrap_interval(10.0, boots) == (-87.5, 10.0)
    with pytest.warns(EstimateOutsideIntervalWarning):
        assert basic_bootstrap_interval(10.0, boots, clip=(0.0, np.inf)) == (0.0, 10.0)
    low, high = shifted_percentile_interval(10.0, boots, clip=(0.0, np.inf))
    assert (low, high) == (0.0, 57.5) and interval_contains(10.0, low, high)


# ---- seeds and test cases together ----------------------------------------------------------------

def _agreeing_seeds(n_seeds: int = 5, n_cases: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth `(N,)`, per-seed predictions `(S, N)` that differ in one case each, and correctness `(S, N)`."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_cases)
    base = np.where(rng.uniform(size=n_cases) < 0.7, truth, 1 - truth)  # about 70% right
    pred = np.repeat(base[None], n_seeds, axis=0)
    flip = rng.choice(n_cases, n_seeds, replace=False)
    pred[np.arange(n_seeds), flip] = 1 - pred[np.arange(n_seeds), flip]
    return truth, pred, (pred == truth).astype(float)


def test_seed_and_test_interval_is_wider_than_the_seed_only_interval_on_a_small_test_set():
    truth, pred, correct = _agreeing_seeds()
    per_seed = correct.mean(axis=1)  # accuracies 0.65 .. 0.75: the seeds agree
    mean, t_low, t_high = t_interval(per_seed)
    est, low, high = seed_and_test_interval(correct, n_boot=500, seed=0)
    assert est == pytest.approx(mean) and interval_contains(est, low, high)
    assert high - low > 2.0 * (t_high - t_low)  # 20 test cases: sampling the test set dominates
    assert (high - low) > 0.2  # about 2 * 1.96 * sqrt(0.7 * 0.3 / 20) = 0.4


def test_seed_and_test_interval_with_a_metric_and_with_groups():
    truth, pred, correct = _agreeing_seeds()
    accuracy = lambda y, p: float(np.mean(y == p))  # noqa: E731
    by_scores = seed_and_test_interval(correct, n_boot=200, seed=3)
    by_metric = seed_and_test_interval(pred, truth, metric=accuracy, n_boot=200, seed=3)
    assert by_metric == pytest.approx(by_scores, rel=1e-12)  # the same draws, the same numbers
    assert seed_and_test_interval(correct, groups=np.arange(20), n_boot=200, seed=3) == pytest.approx(by_scores)
    # cases in 4 groups of 5 copies: 4 independent units, a wider interval than 20 cases
    copies = np.repeat(correct[:, :4], 5, axis=1)
    _, lo_iid, hi_iid = seed_and_test_interval(copies, n_boot=300, seed=1)
    _, lo_grp, hi_grp = seed_and_test_interval(copies, groups=np.repeat(np.arange(4), 5), n_boot=300, seed=1)
    assert hi_grp - lo_grp > 1.5 * (hi_iid - lo_iid)


def test_seed_and_test_interval_edge_cases_and_errors():
    one_seed = seed_and_test_interval(np.array([[1.0, 0.0, 1.0, 1.0]]), n_boot=100)
    assert one_seed[0] == 0.75 and interval_contains(*one_seed)  # test cases still vary
    assert np.isnan(seed_and_test_interval(np.ones((3, 2)))[1])  # two test cases: no interval
    with pytest.raises(ValueError, match="n_seeds, n_cases"):
        seed_and_test_interval(np.ones(5))
    with pytest.raises(ValueError, match="y_true must be"):
        seed_and_test_interval(np.ones((2, 5)), metric=lambda y, p: 1.0)
    with pytest.raises(ValueError, match="only used with metric"):
        seed_and_test_interval(np.ones((2, 5)), y_true=np.ones(5))
    with pytest.raises(ValueError, match="one label per case"):
        seed_and_test_interval(np.ones((2, 5)), groups=[0, 1])


# ---- reporting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("est, low, high, text", [
    (0.8123, 0.79, 0.8351, "0.812 (0.790 to 0.835)"),
    (0.8, np.nan, np.nan, "0.800 (n/a)"),  # one seed
    (1.0, 1.0, 1.0, "1.000 (n/a)"),  # every seed gave the same score
    (np.nan, 0.1, 0.2, "n/a"),
    (0.096, 0.0, 0.065, "0.096 (0.000 to 0.065; excludes the estimate)"),  # never passed off as valid
])
def test_format_ci(est, low, high, text):
    assert format_ci(est, low, high) == text


def test_format_ci_and_interval_note_give_the_reason():
    same = [0.25] * 5
    mean, low, high = t_interval(same)
    assert (low, high) == (0.25, 0.25)
    assert interval_note(low, high, values=same, unit="seeds") == "n/a (all 5 seeds gave 0.250)"
    assert format_ci(mean, low, high, values=same, unit="seeds") == "0.250 (n/a: all 5 seeds gave 0.250)"
    two = [0.5, 0.7]
    mean, low, high = t_interval(two)
    assert interval_note(low, high, values=two, unit="seeds") == "n/a (2 seeds; an interval needs at least 3)"
    assert format_ci(mean, low, high, n=2, digits=2) == "0.60 (n/a: 2 values; an interval needs at least 3)"
    assert interval_note(np.nan, np.nan) == "n/a (no interval)"
    assert interval_note(0.3, 0.3) == "n/a (zero width at 0.300)"
    assert interval_note(0.2, 0.4, n=5) == "" and format_ci(0.3, 0.2, 0.4, n=5) == "0.300 (0.200 to 0.400)"


def test_interval_contains():
    assert interval_contains(0.5, 0.4, 0.6) and interval_contains(0.4, 0.4, 0.4)
    assert not interval_contains(0.3, 0.4, 0.6) and not interval_contains(0.5, np.nan, 0.6)


def test_cluster_bootstrap_draws_are_the_resample_ci_draws_and_check_groups_names_the_argument():
    from medgan_core.metrics.stats import check_groups, cluster_bootstrap_draws, cluster_bootstrap_resample_ci
    groups = np.repeat(["a", "b", "c", "d"], [3, 1, 2, 4])
    seen = []
    cluster_bootstrap_resample_ci(groups, lambda idx: seen.append(np.asarray(idx)) or 0.0, n_boot=20, seed=3)
    draws = cluster_bootstrap_draws(groups, n_boot=20, seed=3)
    assert len(draws) == 20 and all(np.array_equal(a, b) for a, b in zip(seen[1:], draws))  # seen[0]: the estimate
    assert all(len(set(groups[idx])) <= 4 and len(idx) >= 4 for idx in draws)
    assert cluster_bootstrap_draws(["a", "a", "b"], n_boot=5) == []  # 2 groups: no interval
    with pytest.raises(ValueError, match="groups_x has 2 labels but images has 3 rows; pass one patient id per row"):
        check_groups(["p", "q"], 3, "groups_x", "images")
