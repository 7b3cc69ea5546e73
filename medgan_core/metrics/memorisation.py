"""Nearest-neighbour memorisation check: are generated images copies of training images?

For every generated image we find its nearest *training* image and record the distance. On its
own that number means little, so we compute the same distance for real *held-out* images, which
the generator never saw: they show how close a new, genuine image of this domain typically lies
to the training set. A generator that memorises produces images much closer to training images
than held-out images are. We report, per space (encoder features, and pixels when given):

- the median nearest-training distance of generated and of held-out images;
- ``threshold``: the 5th percentile of the held-out distances, and ``frac_fake_below``: the share
  of generated images closer to the training set than that (about 0.05 for a generator that does
  not copy; near 1 for one that does);
- ``mannwhitney_p``: the one-sided Mann-Whitney U p-value for "generated images lie closer to the
  training set than held-out images do";
- ``n_exact_copies``: generated images at distance ~0 from a training image.

**Intervals by patient.** When the rows are not independent (jittered crops of a few nodules of a
few patients) and each generated image is made from one held-out input, give ``groups_fake`` and
``groups_heldout`` (the patient of each row; a generated row carries the patient of its input).
The summary then gains, per space:

- ``median_ratio``: ``median_fake_to_train / median_heldout_to_train``. Below 1, generated images
  lie closer to the training set than new real images of the domain do (copying); about 1 for a
  generator that does not copy (above 1: further away, e.g. unrealistic images);
- ``median_ratio_ci_low``/``_ci_high`` and ``frac_fake_below_ci_low``/``_ci_high``: 95%
  intervals from :func:`medgan_core.metrics.stats.cluster_bootstrap_resample_ci`, each draw
  resampling the held-out patients and keeping the generated *and* held-out rows of the drawn
  patients (the nearest-training distances stay fixed; the threshold is recomputed from the drawn
  held-out rows). Percentile intervals, widened to the estimate if they missed it (with a warning);
  NaN with fewer than 3 patients (``format_ci(..., n=n_patients, unit="patients")`` says why). A
  zero-width interval (every draw gave the same value, e.g. ``frac_fake_below`` = 1 for a copying
  generator) is returned as computed and printed ``n/a`` by ``format_ci``;
- ``n_patients``: the held-out patients.

Pixel distances are root-mean-square differences of intensities in [0, 1] (Euclidean distance
divided by sqrt(number of values)), so 0.1 means a typical 10% intensity difference. The nearest
pairs are returned, sorted closest first, for a side-by-side grid: always look at them, since a
small distance can also mean a plain, featureless image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.stats import mannwhitneyu
from sklearn.neighbors import NearestNeighbors

from medgan_core.metrics.diversity import images_to_unit_tensor
from medgan_core.metrics.fid import check_features
from medgan_core.metrics.stats import check_groups, cluster_bootstrap_resample_ci

__all__ = ["MemorisationResult", "nearest_distances", "pixel_vectors", "memorisation_stats"]


@dataclass
class MemorisationResult:
    """The summary table (one row per space) and the nearest pairs per space."""

    summary: pd.DataFrame  # index `space` ("feature", "pixel"); columns described in the module docstring
    pairs: dict[str, pd.DataFrame] = field(default_factory=dict)  # space -> fake_index, train_index, distance


def nearest_distances(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each query row to its nearest reference row, and that row's index.

    Args:
        query: `(n_query, d)`.
        reference: `(n_ref, d)`.

    Returns:
        ``(distances, indices)``, each `(n_query,)`.
    """
    dist, idx = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(query)
    return dist[:, 0], idx[:, 0]


def pixel_vectors(images: np.ndarray | torch.Tensor, name: str = "images") -> np.ndarray:
    """Images flattened to `(N, C*H*W)` float64 vectors in [0, 1], scaled by 1/sqrt(C*H*W) (RMS distances).

    Args:
        images: uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1].
        name: how the input is called in error messages.
    """
    x = images_to_unit_tensor(images, name).flatten(1).double().numpy()  # `(N, C*H*W)`
    return x / np.sqrt(x.shape[1])


def _space_row(d_fake: np.ndarray, d_held: np.ndarray, n_train: int, quantile: float) -> dict:
    """One summary row from the nearest-training distances of generated and held-out samples."""
    threshold = float(np.quantile(d_held, quantile))
    scale = max(float(np.median(d_held)), 1e-12)
    return {
        "n_fake": len(d_fake), "n_train": n_train, "n_heldout": len(d_held),
        "median_fake_to_train": float(np.median(d_fake)),
        "median_heldout_to_train": float(np.median(d_held)),
        "threshold": threshold,
        "frac_fake_below": float((d_fake < threshold).mean()),
        "frac_heldout_below": float((d_held < threshold).mean()),
        "mannwhitney_p": float(mannwhitneyu(d_fake, d_held, alternative="less").pvalue),
        "n_exact_copies": int((d_fake <= 1e-6 * scale).sum()),
    }


def _ratio(fake: float, held: float) -> float:
    """``fake / held``, NaN when ``held`` is 0 (held-out images that are copies of training images)."""
    return float(fake / held) if held > 0 else float("nan")


def _patient_intervals(d_fake: np.ndarray, d_held: np.ndarray, g_fake: np.ndarray, g_held: np.ndarray,
                       quantile: float, n_boot: int, seed: int) -> dict:
    """``median_ratio`` and the intervals of it and of ``frac_fake_below``, resampling held-out patients jointly."""
    unknown = sorted(set(np.unique(g_fake).tolist()) - set(np.unique(g_held).tolist()))
    if unknown:
        raise ValueError(f"groups_fake holds patients that are not held-out patients: {unknown[:5]}; each generated "
                         "row carries the patient of the held-out input it was made from.")
    n_fake = len(d_fake)
    groups = np.concatenate([g_fake, g_held])  # generated rows first, then held-out rows

    def split(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The generated and held-out distances of the drawn rows."""
        return d_fake[idx[idx < n_fake]], d_held[idx[idx >= n_fake] - n_fake]

    def median_ratio(idx: np.ndarray) -> float:
        f, h = split(idx)
        return _ratio(float(np.median(f)), float(np.median(h))) if len(f) else float("nan")

    def frac_below(idx: np.ndarray) -> float:
        f, h = split(idx)
        return float((f < np.quantile(h, quantile)).mean()) if len(f) else float("nan")

    ratio, r_low, r_high = cluster_bootstrap_resample_ci(groups, median_ratio, n_boot=n_boot, seed=seed)
    _, f_low, f_high = cluster_bootstrap_resample_ci(groups, frac_below, n_boot=n_boot, seed=seed)
    return {"median_ratio": ratio, "median_ratio_ci_low": r_low, "median_ratio_ci_high": r_high,
            "frac_fake_below_ci_low": f_low, "frac_fake_below_ci_high": f_high,
            "n_patients": int(len(np.unique(g_held)))}


def memorisation_stats(feats_fake: np.ndarray, feats_train: np.ndarray, feats_heldout: np.ndarray,
                       images_fake: np.ndarray | torch.Tensor | None = None,
                       images_train: np.ndarray | torch.Tensor | None = None,
                       images_heldout: np.ndarray | torch.Tensor | None = None,
                       quantile: float = 0.05, groups_fake: np.ndarray | None = None,
                       groups_heldout: np.ndarray | None = None, n_boot: int = 1000,
                       seed: int = 0) -> MemorisationResult:
    """Nearest-training-image distances of generated vs held-out samples, in feature and pixel space.

    Args:
        feats_fake: encoder features of generated images, `(n_fake, d)`.
        feats_train: encoder features of the real training images the generator saw, `(n_train, d)`.
        feats_heldout: encoder features of real held-out images, `(n_heldout, d)`.
        images_fake: optional generated images (uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in
            [-1, 1]) for the pixel-space check; give all three image sets or none.
        images_train: optional training images, same size as ``images_fake``.
        images_heldout: optional held-out images, same size as ``images_fake``.
        quantile: the held-out percentile that sets the threshold (0.05 = 5th percentile).
        groups_fake: optional `(n_fake,)` patient of each generated row (of the held-out input it
            was made from; each must be a held-out patient); give it with ``groups_heldout`` for the
            patient-level intervals (module docstring), or neither.
        groups_heldout: optional `(n_heldout,)` patient of each held-out row.
        n_boot: patient draws of the intervals, >= 2 (used only with the groups).
        seed: seed of the patient draws.

    Returns:
        A :class:`MemorisationResult`: ``summary`` (one row per space) and ``pairs`` (per space, a
        DataFrame of ``fake_index``, ``train_index``, ``distance``, closest first). With the groups
        the summary also has ``median_ratio``, ``median_ratio_ci_low``, ``median_ratio_ci_high``,
        ``frac_fake_below_ci_low``, ``frac_fake_below_ci_high`` and ``n_patients``.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}.")
    if (groups_fake is None) != (groups_heldout is None):
        raise ValueError("Give groups_fake and groups_heldout together (the patient of each generated and each "
                         "held-out row) for intervals by patient, or neither.")
    if groups_fake is not None and n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    spaces = {"feature": (check_features(feats_fake, "feats_fake", 1), check_features(feats_train, "feats_train", 1),
                          check_features(feats_heldout, "feats_heldout", 2))}
    given = [im is not None for im in (images_fake, images_train, images_heldout)]
    if any(given) and not all(given):
        raise ValueError("Give images_fake, images_train and images_heldout together (or none of them) "
                         "for the pixel-space check.")
    if all(given):
        pix = (pixel_vectors(images_fake, "images_fake"), pixel_vectors(images_train, "images_train"),
               pixel_vectors(images_heldout, "images_heldout"))
        if len({p.shape[1] for p in pix}) != 1:
            raise ValueError("images_fake, images_train and images_heldout must have the same size and "
                             "channels; resize them to the generator's resolution first.")
        spaces["pixel"] = pix

    rows, pairs = {}, {}
    for space, (fake, train, held) in spaces.items():
        if not fake.shape[1] == train.shape[1] == held.shape[1]:
            raise ValueError(f"The {space} arrays have different widths {fake.shape[1]}, {train.shape[1]}, "
                             f"{held.shape[1]}; compute them with the same encoder.")
        d_fake, idx_fake = nearest_distances(fake, train)
        d_held, _ = nearest_distances(held, train)
        rows[space] = _space_row(d_fake, d_held, len(train), quantile)
        if groups_fake is not None:
            g_fake = check_groups(groups_fake, len(fake), "groups_fake", f"the {space} rows of the generated images")
            g_held = check_groups(groups_heldout, len(held), "groups_heldout", f"the {space} rows of the held-out images")
            rows[space] |= _patient_intervals(d_fake, d_held, g_fake, g_held, quantile, n_boot, seed)
        order = np.argsort(d_fake, kind="stable")
        pairs[space] = pd.DataFrame({"fake_index": order, "train_index": idx_fake[order],
                                     "distance": d_fake[order]})
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "space"
    return MemorisationResult(summary=summary, pairs=pairs)
