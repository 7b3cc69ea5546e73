"""Every interval and test of the study, in one place.

Which interval for which number (STUDY.md, section 5: "statistics at the right unit"):

- :func:`t_interval`: ``mean +- t_{(1+level)/2, n-1} sd / sqrt(n)``; MS-SSIM over pairs, and
  utility metrics when only the seeds vary.
- :func:`seed_and_test_interval`: bootstrap over seeds *and* test cases (or their groups) at
  once; a utility metric whose uncertainty comes from both the training seed and the finite test set.
- :func:`paired_test`: t-interval of paired differences, paired t-test and Wilcoxon signed-rank;
  the best GAN arm against the best non-GAN arm over shared seeds. The Wilcoxon p is quoted only
  when the number of pairs lets it reach 0.05 (6 or more pairs).
- :func:`bootstrap_ci`: percentile bootstrap of a statistic over independent values; per-sample
  means (continuity, background error), Spearman correlations over inputs.
- :func:`cluster_bootstrap_ci`: percentile bootstrap resampling whole groups (patients, smears);
  values that are not independent within a group.
- :func:`bootstrap_resample_ci`: percentile bootstrap of any statistic of paired arrays, given
  the resampled indices; F1 over cases (Turing test).
- :func:`cluster_bootstrap_resample_ci`: the same resampling whole groups (optionally within
  strata, e.g. the real and the generated set); FID, KID, F1 or AUC over patient- or
  smear-clustered rows.
- :func:`shifted_percentile_interval`: the bootstrap values moved so that their median is the
  estimate; FID (``metrics/fid.py``), whose resamples repeat images and sit above the estimate.
- :func:`percentile_interval`: the central ``level`` share of samples; KID's bootstrap over
  images (``metrics/kid.py``) and every percentile bootstrap above.
- :func:`basic_bootstrap_interval`: ``[2 est - q_high, 2 est - q_low]`` (reverse percentile); kept
  for old callers, no longer used for FID (it excluded small FIDs, see its docstring).

Conventions:

- NaN and infinite values are dropped before any interval.
- An interval from fewer than :data:`MIN_VALUES` (3) values, seeds or groups is ``(nan, nan)``.
- No interval excludes its own estimate: every function that has an estimate checks it with
  :func:`include_estimate`, which widens the interval to the estimate and warns
  (:class:`EstimateOutsideIntervalWarning`) when it had to; the FID and KID intervals are built
  so that this does not happen.
- ``clip`` (a metric's range, e.g. ``(0, 1)`` or FID's ``(0, inf)``) is applied last, to the
  ends only; it never moves an interval off its estimate, and the callers say when they clip.
- A degenerate interval (zero width, e.g. every seed gave the same score) is returned as
  computed; :func:`format_ci` prints it as ``n/a`` and :func:`interval_note` says why.
- Every bootstrap takes a ``seed`` and draws its resamples from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
from scipy import stats as sps

__all__ = ["MIN_VALUES", "ALPHA", "EstimateOutsideIntervalWarning", "t_interval", "bootstrap_ci",
           "cluster_bootstrap_ci", "bootstrap_resample_ci", "cluster_bootstrap_resample_ci", "cluster_bootstrap_draws",
           "check_groups",
           "seed_and_test_interval", "basic_bootstrap_interval", "shifted_percentile_interval",
           "percentile_interval", "include_estimate", "paired_test", "wilcoxon_min_pvalue", "format_ci",
           "interval_note", "interval_contains"]

NAN = float("nan")
MIN_VALUES = 3  # the fewest values (seeds, groups, cases) an interval is computed from
ALPHA = 0.05  # the significance level a p-value must be able to reach to be quoted


class EstimateOutsideIntervalWarning(UserWarning):
    """An interval did not contain its estimate and was widened to it (see :func:`include_estimate`)."""


def _tails(level: float) -> tuple[float, float]:
    """``((1 - level) / 2, (1 + level) / 2)`` rounded to 12 decimals (0.95 gives exactly 0.025, 0.975)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1) (e.g. 0.95 for a 95% interval), got {level}.")
    alpha = round((1.0 - level) / 2.0, 12)
    return alpha, round(1.0 - alpha, 12)


def _check_n_boot(n_boot: int) -> None:
    """Raise unless ``n_boot >= 2``."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}; use a few hundred or more for a 95% interval.")


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


def include_estimate(est: float, low: float, high: float, what: str = "interval") -> tuple[float, float]:
    """``(low, high)`` widened to contain ``est``, with a warning when that was needed.

    The study's rule is that no interval excludes its own estimate. A percentile interval can
    (the statistic is biased under resampling: a median with ties, an F1 near 0 or 1, FID's
    repeated images); rather than return such an interval silently, the end on the wrong side is
    moved to the estimate and :class:`EstimateOutsideIntervalWarning` names the interval.
    NaN inputs are returned unchanged.

    Args:
        est: the point estimate.
        low: lower end of its interval.
        high: upper end.
        what: how the interval is called in the warning (e.g. ``"bootstrap_ci"``).

    Returns:
        ``(min(low, est), max(high, est))``.
    """
    if not (np.isfinite(est) and np.isfinite(low) and np.isfinite(high)) or low <= est <= high:
        return low, high
    warnings.warn(f"{what}: the interval ({low:.4g} to {high:.4g}) excluded its estimate {est:.4g} and was "
                  "widened to it; the statistic is biased under resampling, so read the interval with care.",
                  EstimateOutsideIntervalWarning, stacklevel=3)
    return float(min(low, est)), float(max(high, est))


def t_interval(values: Any, level: float = 0.95,
               clip: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and t-interval of the mean: ``mean +- t_{(1+level)/2, n-1} sd / sqrt(n)``.

    Args:
        values: one number per independent unit (e.g. per seed), `(n,)`; NaN and inf are dropped.
        level: coverage of the interval, in (0, 1).
        clip: ``(lo, hi)``: clip both ends to the metric's range (e.g. ``(0, 1)``), or ``None``.

    Returns:
        ``(mean, low, high)``; the mean is NaN without values, the interval NaN with fewer than
        :data:`MIN_VALUES` (3) values (with 2 the t quantile is 12.7 and the interval says nothing).
    """
    _, q = _tails(level)
    v = _finite(values)
    n = len(v)
    mean = float(np.mean(v)) if n else NAN
    if n < MIN_VALUES:
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


def shifted_percentile_interval(estimate: float, boots: Any, level: float = 0.95,
                                clip: tuple[float, float] | None = None) -> tuple[float, float]:
    """Percentile interval of the bootstrap values moved so that their median is the estimate.

    ``[est + q_low - median, est + q_high - median]``. Use it when resampling itself shifts the
    statistic (FID: a resample repeats images, which raises FID): the shift is resampling bias,
    not information about the estimate, so it is removed and only the spread is kept. The
    interval contains the estimate by construction (``q_low <= median <= q_high``). Unlike
    :func:`basic_bootstrap_interval` it does not reflect the bootstrap distribution around the
    estimate, so it cannot end up entirely below a small FID.

    Args:
        estimate: the statistic on the full sample.
        boots: the statistic on each resample, `(B,)`; NaN and inf are dropped.
        level: coverage, in (0, 1).
        clip: ``(lo, hi)`` range both ends are clipped to (FID: ``(0, inf)``), or ``None``.

    Returns:
        ``(low, high)``, or ``(nan, nan)`` without finite resamples or estimate.
    """
    q_low, q_high = percentile_interval(boots, level)
    if not (np.isfinite(estimate) and np.isfinite(q_low)):
        return NAN, NAN
    shift = float(estimate) - float(np.median(_finite(boots, "boots")))
    return _clip(q_low + shift, q_high + shift, clip)


def basic_bootstrap_interval(estimate: float, boots: Any, level: float = 0.95,
                             clip: tuple[float, float] | None = None) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval ``[2 est - q_high, 2 est - q_low]``.

    It reflects the bootstrap distribution around the estimate. When the resamples sit above the
    estimate by more than half the interval's width (FID of two small, nearly identical sets),
    the reflected interval lies entirely below the estimate; the published reference FID 0.096
    with interval [0, 0.065] was such a case. This function therefore checks the result with
    :func:`include_estimate` (widen and warn); FID now uses :func:`shifted_percentile_interval`.

    Args:
        estimate: the statistic on the full sample.
        boots: the statistic on each resample, `(B,)`.
        level: coverage, in (0, 1).
        clip: ``(lo, hi)`` range both ends are clipped to (FID: ``(0, inf)``), or ``None``.

    Returns:
        ``(low, high)``, containing ``estimate`` when all three are finite.
    """
    q_low, q_high = percentile_interval(boots, level)
    low, high = _clip(float(2.0 * estimate - q_high), float(2.0 * estimate - q_low), clip)
    return include_estimate(float(estimate), low, high, "basic_bootstrap_interval")


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
        ``(estimate, low, high)``: the statistic on the units in their order, and the interval
        (NaN with fewer than :data:`MIN_VALUES` units; widened to the estimate if it missed it).
    """
    if n_units < 1:
        raise ValueError(f"n_units must be at least 1, got {n_units}: nothing to resample.")
    _check_n_boot(n_boot)
    _tails(level)
    estimate = float(np.asarray(stat_of_indices(np.arange(n_units)[None]), dtype=np.float64).reshape(-1)[0])
    if n_units < MIN_VALUES:
        return estimate, NAN, NAN
    idx = np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))
    boots = np.asarray(stat_of_indices(idx), dtype=np.float64).reshape(-1)
    if boots.shape != (n_boot,):
        raise ValueError(f"stat_of_indices must return one value per resample ({n_boot},), got {boots.shape}; "
                         "reduce over axis=1.")
    low, high = include_estimate(estimate, *percentile_interval(boots, level), "bootstrap_resample_ci")
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
        ``(estimate, low, high)``; all NaN without finite values, the interval NaN with fewer than
        :data:`MIN_VALUES`.
    """
    v = _finite(values)
    if len(v) == 0:
        _tails(level)
        return NAN, NAN, NAN
    rows = _rowwise(stat)
    _, low, high = bootstrap_resample_ci(len(v), lambda idx: rows(v[idx]), n_boot=n_boot, seed=seed, level=level)
    est = float(stat(v))
    return est, *include_estimate(est, low, high, "bootstrap_ci")


def _group_rows(groups: Any, strata: Any = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Row indices of each group, and the groups of each stratum (one stratum when ``strata`` is None)."""
    g = np.asarray(groups).reshape(-1)
    labels, inverse = np.unique(g, return_inverse=True)
    rows = [np.flatnonzero(inverse == i) for i in range(len(labels))]
    if strata is None:
        return rows, [np.arange(len(labels))]
    s = np.asarray(strata).reshape(-1)
    if len(s) != len(g):
        raise ValueError(f"strata has {len(s)} entries but groups has {len(g)}; pass one stratum label per row.")
    stratum_of = []
    for label, r in zip(labels, rows):
        own = np.unique(s[r])
        if len(own) != 1:
            raise ValueError(f"group {label!r} spans the strata {own.tolist()}; a group must lie in one stratum "
                             "(give the real and the generated rows different group labels).")
        stratum_of.append(own[0])
    stratum_of = np.asarray(stratum_of)
    return rows, [np.flatnonzero(stratum_of == k) for k in np.unique(stratum_of)]


def _draw_groups(pools: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`(n_boot, n_groups)` group indices: each stratum's groups resampled with replacement, strata side by side."""
    return np.concatenate([pool[rng.integers(0, len(pool), size=(n_boot, len(pool)))] for pool in pools], axis=1)


def check_groups(groups: Any, n_rows: int, name: str, rows_name: str, unit: str = "patient id per row") -> np.ndarray:
    """``groups`` as a flat array with one label per row of ``rows_name``, or a ValueError naming ``name``.

    Args:
        groups: the group (patient, smear) of each row.
        n_rows: how many rows there are.
        name: the argument's name, quoted in the error.
        rows_name: what the rows are, quoted in the error.
        unit: what to pass instead, quoted in the error.
    """
    g = np.asarray(groups).reshape(-1)
    if len(g) != n_rows:
        raise ValueError(f"{name} has {len(g)} labels but {rows_name} has {n_rows} rows; pass one {unit}.")
    return g


def cluster_bootstrap_draws(groups: Any, n_boot: int = 1000, seed: int = 0, strata: Any = None) -> list[np.ndarray]:
    """The row indices of each resample of :func:`cluster_bootstrap_resample_ci` (same seed, same draws).

    For statistics that need every draw at once (several sets resampled on the same patients, a
    cache of repeated draws). Empty with fewer than :data:`MIN_VALUES` groups in a stratum: then
    no interval is given.

    Args:
        groups: `(n,)` the group of each row.
        n_boot: resamples, >= 2.
        seed: seed of the resampling.
        strata: `(n,)` optional stratum of each row.

    Returns:
        ``n_boot`` arrays of row indices (a group drawn twice contributes its rows twice), or ``[]``.
    """
    _check_n_boot(n_boot)
    if len(np.asarray(groups).reshape(-1)) == 0:
        raise ValueError("groups is empty: pass one group label per row.")
    rows, pools = _group_rows(groups, strata)
    if min(len(pool) for pool in pools) < MIN_VALUES:
        return []
    return [np.concatenate([rows[j] for j in row]) for row in _draw_groups(pools, n_boot, np.random.default_rng(seed))]


def cluster_bootstrap_resample_ci(groups: Any, stat_of_indices: Callable[[np.ndarray], float], n_boot: int = 1000,
                                  seed: int = 0, level: float = 0.95,
                                  strata: Any = None) -> tuple[float, float, float]:
    """Percentile bootstrap of any statistic of rows, resampling whole groups (patients, smears).

    Each resample draws as many groups as there are, with replacement (within each stratum when
    ``strata`` is given, so a two-sample statistic keeps both samples and their group counts),
    and passes the row indices of the drawn groups, concatenated, to ``stat_of_indices``. A group
    drawn twice contributes its rows twice. Typical uses, with rows indexing one or two arrays:

    - F1 or AUC over test images clustered by patient: ``groups`` = patient of each image.
    - FID/KID of real rows clustered by smear against generated rows: stack both sets, ``groups``
      = smear for real rows and a fresh label per generated row, ``strata`` = real/generated;
      ``stat_of_indices`` splits ``idx`` by stratum and computes the distance.

    Args:
        groups: `(n,)` the group of each row (any sortable labels); rows of one group are resampled together.
        stat_of_indices: ``idx (m,) -> float``: the statistic of the rows ``idx`` (repeats allowed);
            called once with ``np.arange(n)`` for the estimate and once per resample.
        n_boot: resamples, >= 2.
        seed: seed of the resampling.
        level: coverage, in (0, 1).
        strata: `(n,)` optional stratum of each row (e.g. 0 real, 1 generated); every group must lie in one.

    Returns:
        ``(estimate, low, high)``: the statistic of all rows and the percentile interval (NaN with
        fewer than :data:`MIN_VALUES` groups in a stratum; widened to the estimate if it missed it).
    """
    _tails(level)
    draws = cluster_bootstrap_draws(groups, n_boot, seed, strata)
    estimate = float(stat_of_indices(np.arange(len(np.asarray(groups).reshape(-1)))))
    if not draws:
        return estimate, NAN, NAN
    boots = np.array([stat_of_indices(idx) for idx in draws], dtype=np.float64)
    low, high = include_estimate(estimate, *percentile_interval(boots, level), "cluster_bootstrap_resample_ci")
    return estimate, low, high


def cluster_bootstrap_ci(values: Any, groups: Any, stat: Callable[..., Any] = np.mean, n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Cluster bootstrap: resample whole groups (patients, smears) with replacement, pool their values.

    Use it when several values come from one independent unit (slices of one patient, cells of
    one smear): resampling single values would pretend they are independent and give too narrow
    an interval. The resampling is :func:`cluster_bootstrap_resample_ci`.

    Args:
        values: `(n,)` numbers; NaN and inf are dropped (with their group label).
        groups: `(n,)` the unit each value belongs to (any sortable labels).
        stat: the statistic of the pooled values of a resample (default the mean).
        n_boot: resamples, >= 2.
        seed: seed of the resampling of groups.
        level: coverage, in (0, 1).

    Returns:
        ``(estimate, low, high)``: ``stat`` of all values and the percentile interval (NaN with
        fewer than :data:`MIN_VALUES` groups).
    """
    v, g = np.asarray(values, dtype=np.float64).reshape(-1), np.asarray(groups).reshape(-1)
    if len(v) != len(g):
        raise ValueError(f"values has {len(v)} entries but groups has {len(g)}; pass one group label per value.")
    _check_n_boot(n_boot)
    _tails(level)
    keep = np.isfinite(v)
    v, g = v[keep], g[keep]
    if len(v) == 0:
        return NAN, NAN, NAN
    return cluster_bootstrap_resample_ci(g, lambda idx: float(stat(v[idx])), n_boot=n_boot, seed=seed, level=level)


def seed_and_test_interval(per_seed: Any, y_true: Any = None,
                           metric: Callable[[np.ndarray, np.ndarray], float] | None = None, groups: Any = None,
                           n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean utility over seeds with an interval covering both seed variation and test-set sampling.

    A t-interval over seeds treats the test set as fixed: five seeds that agree give a narrow
    interval even on 20 test images. Here every resample draws the seeds with replacement *and*
    the test cases (or whole groups of them, e.g. patients) with replacement, recomputes the
    metric of each drawn seed on the drawn cases and averages over the drawn seeds; the interval
    is the percentile interval of those averages. Resampling both ways at once (Owen 2007, "the
    pigeonhole bootstrap") counts the seed-by-case interaction twice, so the interval is slightly
    conservative.

    Two layouts, both one row per seed over the same ``N`` test cases:

    - ``metric=None``: ``per_seed`` holds per-case scores `(S, N)` (e.g. 1.0 where the seed's
      classifier was right); the metric is their mean (accuracy, mean loss).
    - ``metric(y_true, y_pred) -> float``: ``per_seed`` holds each seed's predictions, labels
      `(S, N)` or probabilities `(S, N, K)`, and ``y_true`` `(N,)`; e.g.
      ``sklearn.metrics.balanced_accuracy_score``. It is called on each resample's cases, so it
      should return NaN rather than raise when a resample lacks a class (NaN resamples are dropped).

    Args:
        per_seed: `(S, N)` per-case scores, or `(S, N[, K])` per-seed predictions when ``metric`` is given.
        y_true: `(N,)` true labels; required with ``metric``, unused without.
        metric: ``metric(y_true, y_pred) -> float``, or ``None`` for the mean of per-case scores.
        groups: `(N,)` optional group of each test case; whole groups are resampled.
        n_boot: resamples, >= 2.
        seed: seed of the resampling.
        level: coverage, in (0, 1).

    Returns:
        ``(estimate, low, high)``: the mean over seeds of the metric on all cases, and the interval
        (NaN with fewer than :data:`MIN_VALUES` test cases or groups).
    """
    _check_n_boot(n_boot)
    _tails(level)
    pred = np.asarray(per_seed)
    if pred.ndim < 2 or pred.shape[0] < 1 or pred.shape[1] < 1:
        raise ValueError(f"per_seed must have shape (n_seeds, n_cases[, ...]), got {pred.shape}; "
                         "stack one row per seed, e.g. np.stack([pred_seed0, pred_seed1, ...]).")
    n_seeds, n_cases = pred.shape[:2]
    if metric is None:
        if y_true is not None:
            raise ValueError("y_true is only used with metric; pass metric=... or per-case scores without y_true.")
        scores = pred.astype(np.float64)
        if scores.ndim != 2 or not np.isfinite(scores).all():
            raise ValueError(f"Without metric, per_seed must be finite per-case scores (n_seeds, n_cases), got shape "
                             f"{scores.shape}; drop NaN cases or pass metric=... with predictions.")
    else:
        truth = np.asarray(y_true)
        if y_true is None or truth.shape[:1] != (n_cases,):
            raise ValueError(f"With metric, y_true must be the ({n_cases},) true labels of the test cases, "
                             f"got {None if y_true is None else truth.shape}.")

    def seed_values(cases: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The metric of each seed in ``seeds`` on the test cases ``cases``, `(len(seeds),)`."""
        if metric is None:
            return scores[seeds][:, cases].mean(axis=1)
        return np.array([metric(truth[cases], pred[s][cases]) for s in seeds], dtype=np.float64)

    estimate = float(np.mean(seed_values(np.arange(n_cases), np.arange(n_seeds))))
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # `(B, S)`
    if groups is None:
        if n_cases < MIN_VALUES:
            return estimate, NAN, NAN
        case_draws = list(rng.integers(0, n_cases, size=(n_boot, n_cases)))  # B arrays `(N,)`
    else:
        g = np.asarray(groups).reshape(-1)
        if len(g) != n_cases:
            raise ValueError(f"groups has {len(g)} entries but there are {n_cases} test cases; "
                             "pass one label per case.")
        rows, pools = _group_rows(g)
        if len(pools[0]) < MIN_VALUES:
            return estimate, NAN, NAN
        case_draws = [np.concatenate([rows[j] for j in row]) for row in _draw_groups(pools, n_boot, rng)]
    boots = np.empty(n_boot)
    for b, (seeds_b, cases_b) in enumerate(zip(seed_draws, case_draws)):
        drawn = np.bincount(seeds_b, minlength=n_seeds)  # how often each seed was drawn, `(S,)`
        used = np.flatnonzero(drawn)
        boots[b] = float(np.average(seed_values(cases_b, used), weights=drawn[used]))
    low, high = include_estimate(estimate, *percentile_interval(boots, level), "seed_and_test_interval")
    return estimate, low, high


def wilcoxon_min_pvalue(n_pairs: int) -> float:
    """The smallest two-sided exact Wilcoxon signed-rank p-value with ``n_pairs`` pairs: ``2 / 2^n``.

    It is reached when every difference has the same sign (no zeros, no ties): one of the
    ``2^n`` equally likely sign patterns at each extreme.

    Args:
        n_pairs: number of pairs, >= 0.
    """
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be non-negative, got {n_pairs}.")
    return min(1.0, 2.0 / 2.0 ** n_pairs)


def paired_test(a: Any, b: Any, level: float = 0.95, bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Paired comparison of ``a - b`` (e.g. two arms over shared seeds): t-interval, paired t and Wilcoxon.

    Pairs where either value is NaN or infinite are dropped. Special cases: with fewer than 2
    pairs both p-values are NaN (and the interval with fewer than :data:`MIN_VALUES`); when every
    difference is the same (sd = 0) the t-test p is 1 if they are all 0 and 0 otherwise. The
    Wilcoxon p is quoted only when it can reach :data:`ALPHA` with this many pairs, i.e. when
    :func:`wilcoxon_min_pvalue` ``(n) = 2 / 2^n <= 0.05`` (n >= 6); otherwise it is NaN and
    ``wilcoxon_note`` says why. When quoted: 1 if every difference is 0, else scipy's test with
    zero differences split between the signs (``zero_method="zsplit"``).

    Args:
        a: `(n,)` scores of the first condition, paired by position with ``b``.
        b: `(n,)` scores of the second condition.
        level: coverage of the interval of the mean difference.
        bounds: the range a difference can take (``(-1, 1)`` for two scores in [0, 1]); the interval
            is clipped to it (the mean difference always lies inside, so it stays in its interval).

    Returns:
        ``{"mean_diff", "ci_low", "ci_high", "t_pvalue", "wilcoxon_pvalue", "wilcoxon_note", "n",
        "diffs"}`` (two-sided p; ``wilcoxon_note`` is ``""`` when the p is quoted).
    """
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired arrays of one length, got {len(a)} and {len(b)}.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diffs = a - b
    n = len(diffs)
    mean, low, high = t_interval(diffs, level, clip=bounds)
    if n < 2:
        p_t = NAN
    elif float(np.std(diffs, ddof=1)) == 0:
        p_t = 1.0 if mean == 0 else 0.0  # every pair moved by exactly the same amount
    else:
        p_t = float(sps.ttest_rel(a, b).pvalue)
    min_p = wilcoxon_min_pvalue(n)
    if min_p > ALPHA:
        p_w = NAN
        note = (f"with {n} pair{'s' if n != 1 else ''} the smallest two-sided Wilcoxon p is {min_p:.4g}, "
                f"so it cannot reach {ALPHA:g}")
    else:
        note = ""
        if not np.any(diffs):
            p_w = 1.0
        elif float(np.std(diffs, ddof=1)) == 0:
            p_w = float(sps.wilcoxon(diffs).pvalue)
        else:
            p_w = float(sps.wilcoxon(diffs, zero_method="zsplit").pvalue)
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "t_pvalue": p_t, "wilcoxon_pvalue": p_w,
            "wilcoxon_note": note, "n": int(n), "diffs": diffs.tolist()}


def interval_contains(est: float, low: float, high: float) -> bool:
    """Whether ``low <= est <= high`` (False when any of the three is NaN).

    Args:
        est: the point estimate.
        low: lower end of its interval.
        high: upper end.
    """
    return bool(np.isfinite(est) and np.isfinite(low) and np.isfinite(high) and low <= est <= high)


def _why_no_interval(low: float, high: float, n: int | None, values: Any, unit: str, digits: int) -> str:
    """Why ``(low, high)`` cannot be shown ("" when it can)."""
    if values is not None:
        v = _finite(values)
        n = len(v)
        if n >= MIN_VALUES and np.ptp(v) == 0:
            return f"all {n} {unit} gave {v[0]:.{digits}f}"
    if n is not None and n < MIN_VALUES:
        one = unit[:-1] if n == 1 and unit.endswith("s") else unit  # "1 seed", "2 seeds"
        return f"{n} {one}; an interval needs at least {MIN_VALUES}"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    if high <= low:
        return f"zero width at {low:.{digits}f}"
    return ""


def interval_note(low: float, high: float, n: int | None = None, values: Any = None, unit: str = "values",
                  digits: int = 3) -> str:
    """``"n/a (reason)"`` for an interval that cannot be shown, ``""`` for one that can.

    Reasons, checked in this order: every value the same (``"n/a (all 5 seeds gave 0.250)"``,
    needs ``values``), fewer than :data:`MIN_VALUES` values (``"n/a (2 seeds; an interval needs at
    least 3)"``, needs ``n`` or ``values``), a missing interval (``"n/a (no interval)"``) and a
    zero-width one (``"n/a (zero width at 0.250)"``).

    Args:
        low: lower end of the interval.
        high: upper end.
        n: number of values the interval came from, if known.
        values: the values themselves (`(n,)`, NaN dropped), if at hand; they give ``n`` too.
        unit: what one value is, plural (``"seeds"``, ``"groups"``).
        digits: decimals of the numbers in the note.
    """
    reason = _why_no_interval(low, high, n, values, unit, digits)
    return f"n/a ({reason})" if reason else ""


def format_ci(est: float, low: float, high: float, digits: int = 3, n: int | None = None, values: Any = None,
              unit: str = "values") -> str:
    """``"0.812 (0.790 to 0.835)"``; an interval that cannot be shown reads ``n/a``.

    Without ``n`` and ``values`` a missing or zero-width interval reads ``"0.800 (n/a)"``; with
    either, the reason is added (``"0.250 (n/a: all 5 seeds gave 0.250)"``, see
    :func:`interval_note`). An interval that excludes its estimate (none of this module's do) is
    printed with ``"; excludes the estimate"`` rather than passed off as valid.

    Args:
        est: the point estimate (``"n/a"`` alone when it is not finite).
        low: lower end of the interval.
        high: upper end.
        digits: decimals.
        n: number of values the interval came from, for the reason.
        values: the values themselves, for the reason.
        unit: what one value is, plural (``"seeds"``).
    """
    if not np.isfinite(est):
        return "n/a"
    reason = _why_no_interval(low, high, n, values, unit, digits)
    if reason:
        return f"{est:.{digits}f} (n/a)" if n is None and values is None else f"{est:.{digits}f} (n/a: {reason})"
    flag = "" if low <= est <= high else "; excludes the estimate"
    return f"{est:.{digits}f} ({low:.{digits}f} to {high:.{digits}f}{flag})"
