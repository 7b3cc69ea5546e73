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
- ``n_exact_copies``: generated images at distance ~0 from a training image;
- ``median_ratio``: ``median_fake_to_train / median_heldout_to_train``. Below 1, generated images
  lie closer to the training set than new real images of the domain do (copying); about 1 for a
  generator that does not copy (above 1: further away, e.g. unrealistic images). NaN when the
  held-out median is 0.

**Intervals by patient.** When the rows are not independent (jittered crops of a few nodules of a
few patients) and each generated image is made from one held-out input, give ``groups_fake`` and
``groups_heldout`` (the patient of each row; a generated row carries the patient of its input).
The summary then gains, per space:

- ``median_ratio_ci_low``/``_ci_high`` and ``frac_fake_below_ci_low``/``_ci_high``: 95%
  percentile intervals over one set of draws of :func:`medgan_core.metrics.stats.cluster_bootstrap_draws`
  (those of ``cluster_bootstrap_resample_ci``, shared by both statistics), each draw
  resampling the held-out patients and keeping the generated *and* held-out rows of the drawn
  patients (the nearest-training distances stay fixed; the threshold is recomputed from the drawn
  held-out rows). Percentile intervals, widened to the estimate if they missed it (with a warning);
  NaN with fewer than 3 patients (``format_ci(..., n=n_patients, unit="patients")`` says why). A
  zero-width interval (every draw gave the same value, e.g. ``frac_fake_below`` = 1 for a copying
  generator) is returned as computed and printed ``n/a`` by ``format_ci``;
- ``n_patients``: the held-out patients.

**Intervals by image.** When the rows are independent images (no patients, and generated images
are not made from held-out inputs, e.g. ISIC dermoscopy images and an unconditional generator),
pass ``image_intervals=True`` instead of the groups. The same interval columns are added, from
one set of draws of :func:`medgan_core.metrics.stats.cluster_bootstrap_draws` in which every
image is its own unit and the generated and the held-out images are two strata, each resampled
with replacement to its own size; the threshold is again recomputed from the drawn held-out
images. NaN with fewer than 3 images in either set. ``n_units`` names the held-out images.

**Verdict.** :func:`memorisation_verdict` reads one space's row and returns one of
:data:`VERDICTS` with a generated sentence that states the numbers:

- ``"copies found"``: ``n_exact_copies > 0``;
- ``"closer than new real images"``: the ratio interval lies below 1, or the interval of
  ``frac_fake_below`` lies above the quantile (a share of generated images is closer to the
  training set than new real images are, even if the median is not); without intervals,
  ``mannwhitney_p < 0.05`` and ``frac_fake_below > 2 x quantile``;
- ``"no sign of memorisation"``: the ratio interval includes 1 or lies above it, and the
  interval of ``frac_fake_below`` includes the quantile or lies below it (without intervals:
  not the test's "closer");
- ``"no verdict"``: the intervals were asked for but could not be computed (fewer than 3
  patients or images, or a held-out median of 0); without intervals, fewer than 3 generated
  or held-out images.

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
from medgan_core.metrics.stats import (
    MIN_VALUES, check_groups, cluster_bootstrap_draws, format_ci, include_estimate, percentile_interval,
)

__all__ = ["MemorisationResult", "nearest_distances", "pixel_vectors", "heldout_shift", "memorisation_stats", "memorisation_verdict",
           "VERDICTS"]

VERDICTS = ("copies found", "closer than new real images", "no sign of memorisation", "no verdict")
ALPHA = 0.05  # the Mann-Whitney p below which, without intervals, generated images count as closer


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


def heldout_shift(feats_train: np.ndarray, images_train: np.ndarray | torch.Tensor,
                  heldout: dict[str, tuple[np.ndarray, np.ndarray | torch.Tensor]]) -> pd.DataFrame:
    """How close each candidate held-out set lies to the training set: the check that it can serve as "new real images".

    The audit's reference only means "as new as a new real image" when the held-out images are
    exchangeable with the training images; a set collected differently lies further from the
    training set and makes every generator look closer to it. This gives, per set, the median
    distance of its images to their nearest training image in feature space and in pixels (RMS).

    Args:
        feats_train: training features `(N, d)`.
        images_train: the training images (uint8 `(N, H, W[, C])` or float `(N, C, H, W)`).
        heldout: ``{name: (features (n, d), images)}`` per candidate set.

    Returns:
        One row per set: ``images, feature, pixel`` (the two medians).
    """
    if not heldout:
        raise ValueError("heldout is empty: pass at least one {name: (features, images)} set.")
    p_train = pixel_vectors(images_train, "images_train")
    rows = {}
    for name, (feats, images) in heldout.items():
        if len(feats) != len(images) or not len(feats):
            raise ValueError(f"held-out set {name!r}: {len(feats)} feature rows for {len(images)} images; both must "
                             "be the same, non-zero count.")
        rows[name] = {"images": len(feats), "feature": float(np.median(nearest_distances(feats, feats_train)[0])),
                      "pixel": float(np.median(nearest_distances(pixel_vectors(images, name), p_train)[0]))}
    return pd.DataFrame.from_dict(rows, orient="index")


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
        "median_ratio": _ratio(float(np.median(d_fake)), float(np.median(d_held))),
    }


def _ratio(fake: float, held: float) -> float:
    """``fake / held``, NaN when ``held`` is 0 (held-out images that are copies of training images)."""
    return float(fake / held) if held > 0 else float("nan")


def _check_patients(g_fake: np.ndarray, g_held: np.ndarray) -> None:
    """Raise unless every patient of a generated row is a held-out patient."""
    unknown = sorted(set(np.unique(g_fake).tolist()) - set(np.unique(g_held).tolist()))
    if unknown:
        raise ValueError(f"groups_fake holds patients that are not held-out patients: {unknown[:5]}; each generated "
                         "row carries the patient of the held-out input it was made from.")


def _intervals(d_fake: np.ndarray, d_held: np.ndarray, groups: np.ndarray, strata: np.ndarray | None,
               quantile: float, n_boot: int, seed: int) -> dict:
    """``median_ratio`` and the 95% intervals of it and of ``frac_fake_below``, from one set of draws.

    Rows are the generated rows followed by the held-out rows; each draw of
    :func:`~medgan_core.metrics.stats.cluster_bootstrap_draws` (``groups`` resampled whole, within
    ``strata`` when given) serves both statistics. By patient: ``groups`` = the patient of each
    row, no strata. By image: one label per row, ``strata`` = 0 generated, 1 held-out.

    Args:
        d_fake: nearest-training distances of the generated rows, `(n_fake,)`.
        d_held: nearest-training distances of the held-out rows, `(n_held,)`.
        groups: `(n_fake + n_held,)` the unit of each row.
        strata: `(n_fake + n_held,)` the stratum of each row, or ``None``.
        quantile: the held-out percentile of the threshold.
        n_boot: draws, >= 2.
        seed: seed of the draws.

    Returns:
        ``{"median_ratio", "median_ratio_ci_low", "median_ratio_ci_high", "frac_fake_below_ci_low",
        "frac_fake_below_ci_high"}``; the intervals NaN with fewer than 3 units (in a stratum).
    """
    n_fake = len(d_fake)

    def stats_of(idx: np.ndarray) -> tuple[float, float]:
        """``(median_ratio, frac_fake_below)`` of the drawn rows (NaN when no generated row was drawn)."""
        f, h = d_fake[idx[idx < n_fake]], d_held[idx[idx >= n_fake] - n_fake]
        if not len(f) or not len(h):
            return float("nan"), float("nan")
        return _ratio(float(np.median(f)), float(np.median(h))), float((f < np.quantile(h, quantile)).mean())

    ratio, frac = stats_of(np.arange(len(groups)))
    draws = cluster_bootstrap_draws(groups, n_boot, seed, strata=strata)
    boots = np.array([stats_of(idx) for idx in draws], dtype=np.float64).reshape(-1, 2)  # `(B, 2)`
    out = {"median_ratio": ratio}
    for j, (name, est) in enumerate((("median_ratio", ratio), ("frac_fake_below", frac))):
        low, high = percentile_interval(boots[:, j]) if len(draws) else (float("nan"), float("nan"))
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = include_estimate(est, low, high, f"memorisation {name}")
    return out


def memorisation_stats(feats_fake: np.ndarray, feats_train: np.ndarray, feats_heldout: np.ndarray,
                       images_fake: np.ndarray | torch.Tensor | None = None,
                       images_train: np.ndarray | torch.Tensor | None = None,
                       images_heldout: np.ndarray | torch.Tensor | None = None,
                       quantile: float = 0.05, groups_fake: np.ndarray | None = None,
                       groups_heldout: np.ndarray | None = None, n_boot: int = 1000,
                       seed: int = 0, image_intervals: bool = False) -> MemorisationResult:
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
        n_boot: draws of the intervals, >= 2 (used only with the groups or ``image_intervals``).
        seed: seed of the draws.
        image_intervals: intervals by image for independent rows (module docstring): generated
            and held-out images resampled independently, each image its own unit. Not with the
            groups (they give intervals by patient).

    Returns:
        A :class:`MemorisationResult`: ``summary`` (one row per space) and ``pairs`` (per space, a
        DataFrame of ``fake_index``, ``train_index``, ``distance``, closest first). The summary
        always has ``median_ratio``; with the groups it also has ``median_ratio_ci_low``,
        ``median_ratio_ci_high``, ``frac_fake_below_ci_low``, ``frac_fake_below_ci_high`` and
        ``n_patients``; with ``image_intervals`` the same intervals and ``n_units`` (held-out images).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}.")
    if (groups_fake is None) != (groups_heldout is None):
        raise ValueError("Give groups_fake and groups_heldout together (the patient of each generated and each "
                         "held-out row) for intervals by patient, or neither.")
    if image_intervals and groups_fake is not None:
        raise ValueError("image_intervals=True resamples single images, but groups_fake and groups_heldout were "
                         "given (intervals by patient); pass the groups or image_intervals=True, not both.")
    if (groups_fake is not None or image_intervals) and n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}; use a few hundred or more for a 95% interval.")
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
            _check_patients(g_fake, g_held)
            rows[space] |= _intervals(d_fake, d_held, np.concatenate([g_fake, g_held]), None, quantile, n_boot, seed)
            rows[space]["n_patients"] = int(len(np.unique(g_held)))
        elif image_intervals:
            units = np.arange(len(fake) + len(held))  # every image its own unit
            strata = np.r_[np.zeros(len(fake), dtype=int), np.ones(len(held), dtype=int)]  # generated, held-out
            rows[space] |= _intervals(d_fake, d_held, units, strata, quantile, n_boot, seed)
            rows[space]["n_units"] = int(len(held))
        order = np.argsort(d_fake, kind="stable")
        pairs[space] = pd.DataFrame({"fake_index": order, "train_index": idx_fake[order],
                                     "distance": d_fake[order]})
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "space"
    return MemorisationResult(summary=summary, pairs=pairs)


def _num(x: float) -> str:
    """A distance or ratio for a sentence: 3 significant digits, ``n/a`` when not finite."""
    return f"{x:.3g}" if np.isfinite(x) else "n/a"


def memorisation_verdict(summary: pd.DataFrame, space: str = "feature", quantile: float = 0.05) -> dict:
    """The verdict on one space of a :func:`memorisation_stats` summary, with a sentence that gives the numbers.

    The rules (module docstring, **Verdict**), checked in this order: exact copies; intervals
    asked for but missing (``"no verdict"``); the ratio interval below 1 or the interval of
    ``frac_fake_below`` above ``quantile`` (``"closer than new real images"``); otherwise
    ``"no sign of memorisation"``. A summary without interval columns is judged by the
    Mann-Whitney p and ``frac_fake_below > 2 x quantile`` instead.

    Args:
        summary: ``memorisation_stats(...).summary`` (index ``space``).
        space: the row to judge, ``"feature"`` or ``"pixel"``.
        quantile: the quantile ``memorisation_stats`` was called with (its default 0.05): the share
            of generated images expected below the threshold from a generator that does not copy.

    Returns:
        ``{"verdict": one of VERDICTS, "sentence": the verdict in plain words with the medians,
        the ratio and its interval, the share below the threshold against ``quantile``, and the
        exact copies}``.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1) (the one memorisation_stats used, default 0.05), "
                         f"got {quantile}.")
    if space not in summary.index:
        raise ValueError(f"space {space!r} is not in the summary; it has {list(summary.index)} (pixel needs the "
                         "images passed to memorisation_stats).")
    need = ["n_fake", "n_heldout", "median_fake_to_train", "median_heldout_to_train", "frac_fake_below",
            "mannwhitney_p", "n_exact_copies", "median_ratio"]
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the columns {missing}; pass memorisation_stats(...).summary (rerun it with "
                         "the current code, which always adds median_ratio).")
    row = summary.loc[space]
    ratio, frac, n_copies = float(row["median_ratio"]), float(row["frac_fake_below"]), int(row["n_exact_copies"])
    has_ci = "median_ratio_ci_low" in summary.columns
    if "n_patients" in summary.columns:
        n_units, unit = int(row["n_patients"]), "patients"
    else:  # by image: an interval needs 3 images in each set
        n_units, unit = int(min(row["n_fake"], row["n_heldout"])), "images in the smaller set"
    r_low, r_high, f_low, f_high = ([float(row[f"{c}_ci_{e}"]) for c in ("median_ratio", "frac_fake_below")
                                     for e in ("low", "high")] if has_ci else [float("nan")] * 4)
    ci_ok = has_ci and bool(np.isfinite([ratio, r_low, r_high, f_low, f_high]).all())

    if n_copies > 0:
        verdict = "copies found"
    elif has_ci and not ci_ok:
        verdict = "no verdict"
    elif has_ci:
        verdict = "closer than new real images" if r_high < 1.0 or f_low > quantile else "no sign of memorisation"
    elif min(int(row["n_fake"]), int(row["n_heldout"])) < MIN_VALUES or not np.isfinite(row["mannwhitney_p"]):
        verdict = "no verdict"
    elif row["mannwhitney_p"] < ALPHA and frac > 2 * quantile:
        verdict = "closer than new real images"
    else:
        verdict = "no sign of memorisation"

    where = f"in {space} space"
    if not np.isfinite(ratio):
        why = ("the held-out images lie at distance 0 from the training set (copies of training images), so the "
               "ratio is undefined")
    elif has_ci:
        why = f"{n_units} {unit}, and an interval needs at least {MIN_VALUES}"
    else:
        why = f"{int(min(row['n_fake'], row['n_heldout']))} images in the smaller set, too few for the test"
    lead = {
        "copies found": f"Copies found {where}: {n_copies} generated "
                        f"{'images are exact copies' if n_copies != 1 else 'image is an exact copy'} of training "
                        "images (distance ~0); look at the closest pairs.",
        "closer than new real images": (
            f"Generated images lie closer to the training images than new real images do ({where}), a sign of "
            "memorisation; look at the closest pairs." if not has_ci or f_low > quantile else
            f"Generated images lie closer to the training images than new real images do ({where}) on the median, "
            "but no more of them than expected lie very close to a training image: closer on the whole without "
            "near copies, which a generator of typical, low-variety images also shows; look at the closest pairs."),
        "no sign of memorisation": f"No sign of memorisation {where}: generated images lie no closer to the training "
                                   "images than new real images do.",
        "no verdict": f"No verdict on memorisation {where}: {why}.",
    }[verdict]

    def with_ci(est: float, low: float, high: float) -> str:
        """``"0.970 (95% CI 0.865 to 1.103)"``, or the estimate alone without intervals."""
        if not has_ci:
            return f"{est:.3f}" if np.isfinite(est) else "n/a"
        return format_ci(est, low, high, n=n_units, unit=unit).replace(" (", " (95% CI ", 1)

    details = (f" The median distance to the nearest training image is {_num(row['median_fake_to_train'])} for "
               f"generated images and {_num(row['median_heldout_to_train'])} for new real (held-out) images; their "
               f"ratio is {with_ci(ratio, r_low, r_high)}, where below 1 means that generated images lie closer to "
               f"the training images than new real images do. A share of {with_ci(frac, f_low, f_high)} of generated "
               f"images lies closer to the training set than the {100 * quantile:g}th percentile of the held-out "
               f"images, against {quantile:g} expected from a generator that does not copy")
    if not has_ci:
        details += f" (one-sided Mann-Whitney p = {row['mannwhitney_p']:.2g})"
    details += f". Exact copies of training images: {n_copies}."
    return {"verdict": verdict, "sentence": lead + details}
