"""Improved precision/recall and density/coverage from k-nearest-neighbour balls.

Each sample's *ball* is centred on it with radius the distance to its k-th nearest neighbour in
its own set (itself excluded).

- Precision (Kynkaanniemi et al. 2019): the fraction of generated samples that fall inside at
  least one real ball (fidelity: "do fakes look real?").
- Recall (same paper): the fraction of real samples that fall inside at least one generated ball
  (diversity: "is every real mode produced?").
- Density (Naeem et al. 2020): the mean number of real balls containing a generated sample,
  divided by k; about 1 when the two distributions match, above 1 when fakes crowd the dense
  real regions. It is less fooled by real outliers than precision.
- Coverage (same paper): the fraction of real samples whose ball holds at least one generated
  sample; 1 when every real neighbourhood is reached.

"Inside" is strict (distance < radius), as in the authors' reference code, so for two identical
sets without duplicates precision = recall = coverage = 1 and density = 1 exactly. Distances are
Euclidean in the feature space of the domain encoder, computed with ``scipy.spatial.distance.cdist``,
which gives every pair the same bits wherever it is computed. (The faster BLAS shortcut behind
scikit-learn's ``pairwise_distances`` rounds differently in different matrix blocks, so a point
lying exactly on a ball's edge, such as the k-th neighbour itself, would fall in or out at random.)
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from medgan_core.metrics.fid import check_features

__all__ = ["knn_radii", "prdc"]


def knn_radii(feats: np.ndarray, k: int = 5, chunk_size: int = 2048) -> np.ndarray:
    """Distance from each row to its k-th nearest neighbour in the same set (itself excluded).

    Args:
        feats: features `(n, d)` with n > k.
        k: which neighbour sets the radius.
        chunk_size: rows per block of the `(chunk, n)` distance matrix (memory).

    Returns:
        Radii `(n,)`.
    """
    radii = []
    for start in range(0, len(feats), chunk_size):
        dist = cdist(feats[start:start + chunk_size], feats)  # `(chunk, n)`
        # index k, not k - 1: every point is its own nearest neighbour, at distance 0
        radii.append(np.partition(dist, k, axis=1)[:, k])
    return np.concatenate(radii)


def prdc(feats_real: np.ndarray, feats_fake: np.ndarray, k: int = 5,
         chunk_size: int = 2048) -> dict[str, float]:
    """Precision, recall, density and coverage of ``feats_fake`` against ``feats_real``.

    Args:
        feats_real: features of the real reference set, `(n_real, d)`, n_real > k.
        feats_fake: features of the set under test (generated, or held-out real for the
            reference), `(n_fake, d)`, n_fake > k.
        k: the neighbour that sets each ball's radius (5 as in both papers).
        chunk_size: generated rows per block of the `(n_real, chunk)` distance matrix (memory).

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` as floats.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    feats_real = check_features(feats_real, "feats_real", min_rows=k + 1)
    feats_fake = check_features(feats_fake, "feats_fake", min_rows=k + 1)
    if feats_real.shape[1] != feats_fake.shape[1]:
        raise ValueError(f"feats_real has {feats_real.shape[1]} feature columns but feats_fake has "
                         f"{feats_fake.shape[1]}; both must come from the same encoder layer.")
    r_real = knn_radii(feats_real, k, chunk_size)  # `(n_real,)`
    r_fake = knn_radii(feats_fake, k, chunk_size)  # `(n_fake,)`

    in_real_ball_any = []  # per fake: inside at least one real ball
    in_real_ball_count = []  # per fake: number of real balls containing it
    real_in_fake_ball = np.zeros(len(feats_real), dtype=bool)  # per real: inside some fake ball
    nearest_fake = np.full(len(feats_real), np.inf)  # per real: distance to its nearest fake
    for start in range(0, len(feats_fake), chunk_size):
        fake = feats_fake[start:start + chunk_size]
        dist = cdist(feats_real, fake)  # `(n_real, chunk)`
        inside = dist < r_real[:, None]
        in_real_ball_any.append(inside.any(axis=0))
        in_real_ball_count.append(inside.sum(axis=0))
        real_in_fake_ball |= (dist < r_fake[None, start:start + chunk_size]).any(axis=1)
        nearest_fake = np.minimum(nearest_fake, dist.min(axis=1))

    return {
        "precision": float(np.concatenate(in_real_ball_any).mean()),
        "recall": float(real_in_fake_ball.mean()),
        "density": float(np.concatenate(in_real_ball_count).mean() / k),
        "coverage": float((nearest_fake < r_real).mean()),
    }
