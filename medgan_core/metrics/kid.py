"""Kernel Inception Distance with the unbiased estimator (Binkowski et al. 2018).

KID is the squared maximum mean discrepancy (MMD^2) between two feature sets under the cubic
polynomial kernel ``k(x, y) = (x . y / d + 1)^3``. For subsets ``X`` and ``Y`` of size ``m`` the
unbiased estimator is

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
              - 2/m^2 sum_{i, j} k(x_i, y_j)

Unlike FID, the estimator has no bias from the sample size, so KIDs from sets of different sizes
can be compared; it can be slightly negative when the two sets come from the same distribution.
It is computed on ``n_subsets`` random subsets of ``subset_size`` rows of each set (drawn
without replacement within a subset, independently across subsets, as in the paper's code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from medgan_core.metrics.fid import check_features
from medgan_core.metrics.stats import percentile_interval

__all__ = ["KIDResult", "polynomial_kernel", "mmd2_unbiased", "kid_from_features"]


@dataclass(frozen=True)
class KIDResult:
    """KID over subsets: the mean, the spread, and a 95% interval of the subset estimates.

    ``ci_low``/``ci_high`` are the 2.5th and 97.5th percentiles of the per-subset KIDs: they say
    how much one KID at this subset size varies with the images drawn. When the subsets cover
    the whole sample they overlap almost completely and the interval shrinks; it never measures
    the sampling error of the sample itself.
    """

    mean: float  # mean KID over subsets
    std: float  # standard deviation over subsets
    ci_low: float  # 2.5th percentile of the subset KIDs
    ci_high: float  # 97.5th percentile of the subset KIDs
    n_subsets: int  # number of subsets drawn
    subset_size: int  # rows per subset and per set

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (for ``metrics.json`` and pandas)."""
        return asdict(self)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The cubic kernel matrix ``(x @ y.T / d + 1) ** 3``.

    Args:
        x: features `(m, d)`.
        y: features `(n, d)`.

    Returns:
        The kernel matrix `(m, n)`.
    """
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two equal-size subsets under the cubic polynomial kernel.

    Args:
        x: features of the first subset, `(m, d)`, m >= 2.
        y: features of the second subset, `(m, d)`.

    Returns:
        The estimate (may be slightly negative).
    """
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise ValueError(f"mmd2_unbiased needs two subsets of the same size >= 2, got {x.shape[0]} and {y.shape[0]}.")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    off_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    off_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(off_xx + off_yy - 2.0 * k_xy.mean())


def kid_from_features(feats_a: np.ndarray, feats_b: np.ndarray, n_subsets: int = 100,
                      subset_size: int = 1000, seed: int = 0) -> KIDResult:
    """KID between two feature sets, averaged over random subsets.

    Args:
        feats_a: features of the first set (e.g. real training images), `(n_a, d)`.
        feats_b: features of the second set (e.g. generated images), `(n_b, d)`.
        n_subsets: number of random subsets (>= 1).
        subset_size: rows per subset; capped at ``min(n_a, n_b)`` (the value used is returned).
        seed: seed of the subset draws.

    Returns:
        A :class:`KIDResult` (mean, std, 95% percentile interval over subsets, sizes used).
    """
    feats_a = check_features(feats_a, "feats_a")
    feats_b = check_features(feats_b, "feats_b")
    if feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"feats_a has {feats_a.shape[1]} feature columns but feats_b has "
                         f"{feats_b.shape[1]}; both must come from the same encoder layer.")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be at least 1, got {n_subsets}.")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}.")
    m = min(subset_size, len(feats_a), len(feats_b))
    rng = np.random.default_rng(seed)
    kids = np.empty(n_subsets)
    for i in range(n_subsets):
        x = feats_a[rng.choice(len(feats_a), m, replace=False)]  # `(m, d)`
        y = feats_b[rng.choice(len(feats_b), m, replace=False)]  # `(m, d)`
        kids[i] = mmd2_unbiased(x, y)
    low, high = percentile_interval(kids, 0.95)
    return KIDResult(mean=float(kids.mean()), std=float(kids.std(ddof=1)) if n_subsets > 1 else 0.0,
                     ci_low=float(low), ci_high=float(high), n_subsets=int(n_subsets), subset_size=int(m))
