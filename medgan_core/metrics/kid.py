"""Kernel Inception Distance with the unbiased estimator (Binkowski et al. 2018).

KID is the squared maximum mean discrepancy (MMD^2) between two feature sets under the cubic
polynomial kernel ``k(x, y) = (x . y / d + 1)^3``. For sets ``X`` (``m`` rows) and ``Y`` (``n``
rows) the unbiased estimator is

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(m n) sum_{i, j} k(x_i, y_j)

Unlike FID, the estimator has no bias from the sample size, so KIDs from sets of different sizes
can be compared; it can be slightly negative when the two sets come from the same distribution.

Point estimate: the mean of ``MMD^2_u`` over ``n_subsets`` random subsets of ``subset_size``
rows of each set (drawn without replacement within a subset, independently across subsets, as
in the paper's code); it is unbiased at any subset size.

Interval: a percentile bootstrap over *images*. Each resample draws the rows of both full sets
with replacement and recomputes ``MMD^2_u``. A resample repeats images, and the kernel of an
image with its own copy, ``k(x, x)``, is larger than between two different images, which would
bias the within-set terms upwards; so the within-set sums leave out every pair of copies of one
original image (and divide by the number of pairs left). With the counts ``w`` of each image in
the resample:

    within(X) = (w^T K w - sum_i w_i^2 K_ii) / (m^2 - sum_i w_i^2)

which is the estimator above when every ``w_i`` is 1 and, averaged over resamples, matches it
(so the plain percentile interval is centred on the estimate). The interval has a width even
when ``subset_size`` covers whole sets, where the subsets are all the same and their spread
(``std``) is 0; the old percentile interval over subsets was zero-width there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from medgan_core.metrics.fid import check_features
from medgan_core.metrics.stats import MIN_VALUES, include_estimate, percentile_interval

__all__ = ["KIDResult", "INTERVAL_METHOD", "polynomial_kernel", "mmd2_unbiased", "kid_from_features"]

INTERVAL_METHOD = "percentile bootstrap over images (copies of one image left out of the within-set pairs)"


@dataclass(frozen=True)
class KIDResult:
    """KID: the mean over subsets, their spread, and a bootstrap interval over images.

    ``ci_low``/``ci_high`` are the ``level`` percentile interval of the KID of ``n_boot``
    resamples of the images of both sets (see the module docstring), widened to ``mean`` in the
    rare case it misses it (with a warning). They are NaN when ``n_boot`` is 0 (only the mean
    was wanted) or a set has fewer than 3 images.
    """

    mean: float  # mean KID over subsets (the point estimate)
    std: float  # standard deviation over subsets (0 when the subsets cover whole sets)
    ci_low: float  # lower end of the bootstrap interval over images
    ci_high: float  # upper end
    n_subsets: int  # number of subsets drawn
    subset_size: int  # rows per subset and per set
    n_boot: int = 0  # bootstrap resamples of the interval
    interval_method: str = INTERVAL_METHOD  # how ci_low/ci_high were computed

    def as_dict(self) -> dict[str, float | int | str]:
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


def _mmd2_of_counts(k_aa: np.ndarray, k_bb: np.ndarray, k_ab: np.ndarray, w_a: np.ndarray,
                   w_b: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 of resamples given as counts, pairs of copies of one image left out.

    Args:
        k_aa: kernel matrix of the first set, `(m, m)`.
        k_bb: kernel matrix of the second set, `(n, n)`.
        k_ab: cross kernel matrix, `(m, n)`.
        w_a: how often each row of the first set is in each resample, `(B, m)`.
        w_b: the same for the second set, `(B, n)`.

    Returns:
        `(B,)` estimates; NaN where a resample holds copies of a single image only.
    """
    def within(k: np.ndarray, w: np.ndarray) -> np.ndarray:
        same_image = (w ** 2) @ np.diag(k)  # `(B,)` pairs of copies of one image, and each copy with itself
        pairs = w.sum(axis=1) ** 2 - (w ** 2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.einsum("bi,bi->b", w @ k, w) - same_image) / pairs

    cross = np.einsum("bi,bi->b", w_a @ k_ab, w_b) / (w_a.sum(axis=1) * w_b.sum(axis=1))
    return within(k_aa, w_a) + within(k_bb, w_b) - 2.0 * cross


def kid_from_features(feats_a: np.ndarray, feats_b: np.ndarray, n_subsets: int = 100,
                      subset_size: int = 1000, seed: int = 0, n_boot: int = 200, level: float = 0.95) -> KIDResult:
    """KID between two feature sets: the mean over random subsets, with a bootstrap interval over images.

    Memory: the interval holds the three kernel matrices of the full sets, `(n_a + n_b)^2` floats
    (8 MB for 500 + 500 images); pass ``n_boot=0`` when only the mean is needed.

    Args:
        feats_a: features of the first set (e.g. real training images), `(n_a, d)`.
        feats_b: features of the second set (e.g. generated images), `(n_b, d)`.
        n_subsets: number of random subsets (>= 1).
        subset_size: rows per subset; capped at ``min(n_a, n_b)`` (the value used is returned).
        seed: seed of the subset draws and (through ``[seed, 1]``) of the bootstrap.
        n_boot: bootstrap resamples of the interval, >= 2, or 0 for no interval (NaN ends).
        level: coverage of the interval, in (0, 1).

    Returns:
        A :class:`KIDResult` (mean and std over subsets, the bootstrap interval, sizes used).
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
    if n_boot == 1 or n_boot < 0:
        raise ValueError(f"n_boot must be 0 (no interval) or at least 2, got {n_boot}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1) (e.g. 0.95), got {level}.")
    m = min(subset_size, len(feats_a), len(feats_b))
    rng = np.random.default_rng(seed)
    kids = np.empty(n_subsets)
    for i in range(n_subsets):
        x = feats_a[rng.choice(len(feats_a), m, replace=False)]  # `(m, d)`
        y = feats_b[rng.choice(len(feats_b), m, replace=False)]  # `(m, d)`
        kids[i] = mmd2_unbiased(x, y)
    mean = float(kids.mean())
    low = high = float("nan")
    method = "none (n_boot=0 or a set of fewer than 3 images)"
    if n_boot and min(len(feats_a), len(feats_b)) >= MIN_VALUES:
        n_a, n_b = len(feats_a), len(feats_b)
        boot_rng = np.random.default_rng([seed, 1])
        w_a = boot_rng.multinomial(n_a, np.full(n_a, 1.0 / n_a), size=n_boot).astype(np.float64)  # `(B, n_a)`
        w_b = boot_rng.multinomial(n_b, np.full(n_b, 1.0 / n_b), size=n_boot).astype(np.float64)  # `(B, n_b)`
        boots = _mmd2_of_counts(polynomial_kernel(feats_a, feats_a), polynomial_kernel(feats_b, feats_b),
                                polynomial_kernel(feats_a, feats_b), w_a, w_b)
        low, high = include_estimate(mean, *percentile_interval(boots, level), "kid_from_features")
        method = INTERVAL_METHOD
    return KIDResult(mean=mean, std=float(kids.std(ddof=1)) if n_subsets > 1 else 0.0,
                     ci_low=float(low), ci_high=float(high), n_subsets=int(n_subsets), subset_size=int(m),
                     n_boot=int(n_boot), interval_method=method)
