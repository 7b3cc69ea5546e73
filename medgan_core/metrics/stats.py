"""Every interval and test of the study, in one place.

Which interval for which number (STUDY.md, section 5: "statistics at the right unit"):

- :func:`t_interval`: ``mean +- t_{(1+level)/2, n-1} sd / sqrt(n)``; utility metrics over seeds,
  MS-SSIM over pairs.
- :func:`paired_test`: t-interval of paired differences, paired t-test and Wilcoxon signed-rank;
  the best GAN arm against the best non-GAN arm over shared seeds.
- :func:`bootstrap_ci`: percentile bootstrap of a statistic over independent values; per-sample
  means (continuity, background error), Spearman correlations over inputs.
- :func:`cluster_bootstrap_ci`: percentile bootstrap resampling whole groups (patients, smears);
  values that are not independent within a group.
- :func:`bootstrap_resample_ci`: percentile bootstrap of any statistic of paired arrays, given
  the resampled indices; F1 over cases (Turing test).
- :func:`basic_bootstrap_interval`: ``[2 est - q_high, 2 est - q_low]`` (reverse percentile);
  FID, whose resamples are biased upwards.
- :func:`percentile_interval`: the central ``level`` share of samples; KID over subsets.

Conventions: NaN and infinite values are dropped before any interval; an interval that cannot be
computed (fewer than 2 values) is ``(nan, nan)``; a degenerate one (zero width, e.g. every seed
gave the same score) is returned as computed, and :func:`format_ci` prints it as ``n/a``.
Every bootstrap takes a ``seed`` and draws its resamples from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import stats as sps

__all__ = ["t_interval", "bootstrap_ci", "cluster_bootstrap_ci", "bootstrap_resample_ci",
           "basic_bootstrap_interval", "percentile_interval", "paired_test", "format_ci", "interval_contains"]

NAN = float("nan")


def _tails(level: float) -> tuple[float, float]:
    """``((1 - level) / 2, (1 + level) / 2)`` rounded to 12 decimals (0.95 gives exactly 0.025, 0.975)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1) (e.g. 0.95 for a 95% interval), got {level}.")
    alpha = round((1.0 - level) / 2.0, 12)
    return alpha, round(1.0 - alpha, 12)


def _finite(values: Any, name: str = "values") -> np.ndarray:
    """``values`` as a flat float64 array without NaN and infinite entries."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {v.shape}; pass one number per unit.")
    v = v.reshape(-1)
    return v[np.isfinite(v)]


def _clip(low: float, high: float, clip: tuple[float, float] | None) -> tuple[float, float]:
    """Clip both ends to ``clip = (lo, hi)``; NaN ends stay NaN."""
    if clip is None:
        return low, high
    lo, hi = clip
    return (float(np.clip(low, lo, hi)) if np.isfinite(low) else low,
            float(np.clip(high, lo, hi)) if np.isfinite(high) else high)


def t_interval(values: Any, level: float = 0.95,
               clip: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and t-interval of the mean: ``mean +- t_{(1+level)/2, n-1} sd / sqrt(n)``.

    Args:
        values: one number per independent unit (e.g. per seed), `(n,)`; NaN and inf are dropped.
        level: coverage of the interval, in (0, 1).
        clip: ``(lo, hi)``: clip both ends to the metric's range (e.g. ``(0, 1)``), or ``None``.

    Returns:
        ``(mean, low, high)``; the mean is NaN without values, the interval NaN with fewer than 2.
    """
    _, q = _tails(level)
    v = _finite(values)
    n = len(v)
    mean = float(np.mean(v)) if n else NAN
    if n < 2:
        return mean, NAN, NAN
    sd = float(np.std(v, ddof=1))
    half = float(sps.t.ppf(q, n - 1)) * sd / np.sqrt(n)
    low, high = _clip(mean - half, mean + half, clip)
    return mean, low, high


def percentile_interval(samples: Any, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` share of ``samples`` (linear-interpolated quantiles).

    Args:
        samples: bootstrap or subset values, `(B,)`; NaN and inf are dropped.
        level: coverage, in (0, 1).

    Returns:
        ``(low, high)``, or ``(nan, nan)`` without finite samples.
    """
    lo_q, hi_q = _tails(level)
    s = _finite(samples, "samples")
    if len(s) == 0:
        return NAN, NAN
    low, high = np.quantile(s, [lo_q, hi_q])
    return float(low), float(high)


def basic_bootstrap_interval(estimate: float, boots: Any, level: float = 0.95,
                             clip: tuple[float, float] | None = None) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval ``[2 est - q_high, 2 est - q_low]``.

    It corrects for a bootstrap distribution that is shifted from the estimate (FID's resamples,
    which repeat images, sit above it), so it may lie partly below a biased estimate.

    Args:
        estimate: the statistic on the full sample.
        boots: the statistic on each resample, `(B,)`.
        level: coverage, in (0, 1).
        clip: ``(lo, hi)`` range both ends are clipped to (FID: ``(0, inf)``), or ``None``.

    Returns:
        ``(low, high)``.
    """
    q_low, q_high = percentile_interval(boots, level)
    return _clip(float(2.0 * estimate - q_high), float(2.0 * estimate - q_low), clip)


def bootstrap_resample_ci(n_units: int, stat_of_indices: Callable[[np.ndarray], np.ndarray], n_boot: int = 1000,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Percentile bootstrap of a statistic of paired arrays (e.g. F1 of truth and answers over cases).

    All resamples are drawn at once, ``idx = rng.integers(0, n_units, (n_boot, n_units))``, and
    handed to ``stat_of_indices``, which returns one value per row, so a statistic written with
    array operations costs one call.

    Args:
        n_units: number of independent units (cases, images) resampled with replacement, >= 1.
        stat_of_indices: ``idx (B, n) -> (B,)``: the statistic of each resample, e.g.
            ``lambda idx: (truth[idx] == said[idx]).mean(axis=1)``.
        n_boot: resamples, >= 2.
        seed: seed of the resampling.
        level: coverage, in (0, 1).

    Returns:
        ``(estimate, low, high)``: the statistic on the units in their order, and the interval.
    """
    if n_units < 1:
        raise ValueError(f"n_units must be at least 1, got {n_units}: nothing to resample.")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    _tails(level)
    estimate = float(np.asarray(stat_of_indices(np.arange(n_units)[None]), dtype=np.float64).reshape(-1)[0])
    idx = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    boots = np.asarray(stat_of_indices(idx), dtype=np.float64).reshape(-1)
    if boots.shape != (n_boot,):
        raise ValueError(f"stat_of_indices must return one value per resample ({n_boot},), got {boots.shape}; "
                         "reduce over axis=1.")
    low, high = percentile_interval(boots, level)
    return estimate, low, high


def _rowwise(stat: Callable[..., Any]) -> Callable[[np.ndarray], np.ndarray]:
    """``samples (B, n) -> (B,)``: ``stat(samples, axis=1)`` when ``stat`` takes ``axis``, else row by row."""
    def apply(samples: np.ndarray) -> np.ndarray:
        try:
            out = np.asarray(stat(samples, axis=1), dtype=np.float64)
            if out.shape == (samples.shape[0],):
                return out
        except TypeError:
            pass
        return np.array([stat(row) for row in samples], dtype=np.float64)
    return apply


def bootstrap_ci(values: Any, stat: Callable[..., Any] = np.mean, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Percentile bootstrap interval of ``stat`` over independent values (resampled with replacement).

    Args:
        values: one number per independent unit, `(n,)`; NaN and inf are dropped.
        stat: the statistic (default the mean); called as ``stat(x, axis=1)`` on the `(n_boot, n)`
            resamples when it accepts ``axis``, else once per resample.
        n_boot: resamples, >= 2.
        seed: seed of the resampling.
        level: coverage, in (0, 1).

    Returns:
        ``(estimate, low, high)``; all NaN without finite values.
    """
    v = _finite(values)
    if len(v) == 0:
        _tails(level)
        return NAN, NAN, NAN
    rows = _rowwise(stat)
    _, low, high = bootstrap_resample_ci(len(v), lambda idx: rows(v[idx]), n_boot=n_boot, seed=seed, level=level)
    return float(stat(v)), low, high


def cluster_bootstrap_ci(values: Any, groups: Any, stat: Callable[..., Any] = np.mean, n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Cluster bootstrap: resample whole groups (patients, smears) with replacement, pool their values.

    Use it when several values come from one independent unit (slices of one patient, cells of
    one smear): resampling single values would pretend they are independent and give too narrow
    an interval.

    Args:
        values: `(n,)` numbers; NaN and inf are dropped (with their group label).
        groups: `(n,)` the unit each value belongs to (any hashable labels).
        stat: the statistic of the pooled values of a resample (default the mean).
        n_boot: resamples, >= 2.
        seed: seed of the resampling of groups.
        level: coverage, in (0, 1).

    Returns:
        ``(estimate, low, high)``: ``stat`` of all values and the percentile interval.
    """
    v, g = np.asarray(values, dtype=np.float64).reshape(-1), np.asarray(groups).reshape(-1)
    if len(v) != len(g):
        raise ValueError(f"values has {len(v)} entries but groups has {len(g)}; pass one group label per value.")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    _tails(level)
    keep = np.isfinite(v)
    v, g = v[keep], g[keep]
    if len(v) == 0:
        return NAN, NAN, NAN
    labels, inverse = np.unique(g, return_inverse=True)
    parts = [v[inverse == i] for i in range(len(labels))]
    idx = np.random.default_rng(seed).integers(0, len(parts), size=(n_boot, len(parts)))
    boots = np.array([stat(np.concatenate([parts[i] for i in row])) for row in idx], dtype=np.float64)
    low, high = percentile_interval(boots, level)
    return float(stat(v)), low, high


def paired_test(a: Any, b: Any, level: float = 0.95) -> dict[str, Any]:
    """Paired comparison of ``a - b`` (e.g. two arms over shared seeds): t-interval, paired t and Wilcoxon.

    Pairs where either value is NaN or infinite are dropped. Special cases: with fewer than 2
    pairs both p-values are NaN; when every difference is the same (sd = 0) the t-test p is 1
    if they are all 0 and 0 otherwise, and Wilcoxon is 1 if all are 0; Wilcoxon splits zero
    differences between the signs (``zero_method="zsplit"``).

    Args:
        a: `(n,)` scores of the first condition, paired by position with ``b``.
        b: `(n,)` scores of the second condition.
        level: coverage of the interval of the mean difference.

    Returns:
        ``{"mean_diff", "ci_low", "ci_high", "t_pvalue", "wilcoxon_pvalue", "n", "diffs"}`` (two-sided p).
    """
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired arrays of one length, got {len(a)} and {len(b)}.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diffs = a - b
    mean, low, high = t_interval(diffs, level)
    if len(diffs) < 2:
        p_t = p_w = NAN
    elif float(np.std(diffs, ddof=1)) == 0:
        p_t = 1.0 if mean == 0 else 0.0  # every pair moved by exactly the same amount
        p_w = 1.0 if mean == 0 else float(sps.wilcoxon(diffs).pvalue)
    else:
        p_t = float(sps.ttest_rel(a, b).pvalue)
        p_w = 1.0 if not np.any(diffs) else float(sps.wilcoxon(diffs, zero_method="zsplit").pvalue)
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "t_pvalue": p_t, "wilcoxon_pvalue": p_w,
            "n": int(len(diffs)), "diffs": diffs.tolist()}


def interval_contains(est: float, low: float, high: float) -> bool:
    """Whether ``low <= est <= high`` (False when any of the three is NaN).

    Args:
        est: the point estimate.
        low: lower end of its interval.
        high: upper end.
    """
    return bool(np.isfinite(est) and np.isfinite(low) and np.isfinite(high) and low <= est <= high)


def format_ci(est: float, low: float, high: float, digits: int = 3) -> str:
    """``"0.812 (0.790 to 0.835)"``; the interval reads ``n/a`` when it is non-finite or of zero width.

    Args:
        est: the point estimate (``"n/a"`` alone when it is not finite).
        low: lower end of the interval.
        high: upper end.
        digits: decimals.
    """
    if not np.isfinite(est):
        return "n/a"
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return f"{est:.{digits}f} (n/a)"
    return f"{est:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"
