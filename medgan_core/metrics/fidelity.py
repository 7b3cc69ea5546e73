"""The fidelity tables: FID, KID, precision/recall and density/coverage, beside the real-vs-real reference.

A FID of 12 says nothing by itself: it depends on the encoder, the dataset and the sample size.
So every number is shown next to the **real-vs-real reference**: real held-out images against
the same real training images, the value a perfect generator would reach (two real samples of
the domain still differ). Read a generator's number as its gap to the reference.

Building block: :func:`fidelity_row`, every metric of one evaluated set against one reference
set, as given.

The study table, :func:`fidelity_study`, follows ONE rule for every group (``"all"`` and each
class) so that the reference rows are computed exactly like the generator rows:

1. ``n_eval`` = the size of the smallest of the held-out set and the generated sets of the group,
   capped at ``max_n``. Each of these sets is cut to ``n_eval`` rows (seeded; the same draw for
   sets of the same size, so a "generator" that returns the held-out images gets the reference's
   numbers).
2. The training features of the group are subsampled once to at most ``max_n`` rows (seeded) and
   shared by every row of the group, the reference's included. The real side is *not* cut down to
   ``n_eval``: a minority class may have a few dozen held-out images, and a Gaussian (FID) or
   kernel mean (KID) fitted to a few dozen 128-dimensional training features is so unsteady that
   the reference FID itself collapses to 0 (measured on the smoke profile's 20 cells). Coverage
   then reads lower in every row, reference included (a few evaluated images cannot reach the
   neighbourhoods of many training images), so read it, like every metric, as a gap to the
   reference row.
3. FID with its bootstrap interval over images from :func:`medgan_core.metrics.fid.fid_ci` (the
   percentile interval shifted to the estimate, lower end clipped at 0); KID (the mean over
   subsets of half the evaluated set) with its bootstrap interval over images, and
   precision/recall/density/coverage, from :func:`fidelity_row`; mean pairwise MS-SSIM of the
   same evaluated images from :func:`medgan_core.metrics.diversity.ms_ssim_diversity`. Both
   intervals contain their estimate and the KID interval has a width even when a set is small
   (see ``metrics/fid.py`` and ``metrics/kid.py``).
4. A group where ``n_eval`` or the training set has ``k`` or fewer images gets rows of NaN
   (a class a generator never made, a tiny class), not an error.

The held-out set is normally the validation split (the test split is kept for the final
classifier evaluation). :func:`as_nested_dict`, :func:`rank_generators` and :func:`fid_ratios` read
the study table.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from medgan_core.data.datasets import to_uint8_images
from medgan_core.metrics.diversity import ms_ssim_diversity
from medgan_core.metrics.fid import check_features, fid_ci, fid_from_features
from medgan_core.metrics.kid import kid_from_features
from medgan_core.metrics.prdc import prdc
from medgan_core.models.registry import sample_like

__all__ = ["REFERENCE", "COLUMNS", "STUDY_COLUMNS", "fidelity_row", "fidelity_study", "validation_kid", "RealImages",
           "as_nested_dict", "rank_generators", "fid_ratios"]

REFERENCE = "real (val vs train)"  # the ``model`` of the real-vs-real rows of :func:`fidelity_study`
Split = tuple[np.ndarray, np.ndarray]  # images `(N, ...)`, int labels `(N,)`

COLUMNS = ["n_train", "n_eval", "fid", "kid_mean", "kid_std", "kid_ci_low", "kid_ci_high", "kid_subset_size",
           "precision", "recall", "density", "coverage"]
STUDY_COLUMNS = ["model", "class", "n_eval", "fid", "fid_ci_low", "fid_ci_high", "kid", "kid_ci_low", "kid_ci_high",
                 "precision", "recall", "density", "coverage", "ms_ssim", "ms_ssim_scales"]
_NESTED_KEYS = ("fid", "fid_ci_low", "fid_ci_high", "kid", "kid_ci_low", "kid_ci_high", "precision", "recall",
                "density", "coverage", "ms_ssim", "n_eval")  # what :func:`as_nested_dict` logs


def _subsample(feats: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows drawn without replacement (all rows, in order, if there are ``n`` or fewer)."""
    if len(feats) <= n:
        return feats
    return feats[np.sort(rng.choice(len(feats), n, replace=False))]


def fidelity_row(feats_ref: np.ndarray, feats_eval: np.ndarray, seed: int = 0, k: int = 5,
                 kid_subsets: int = 100, kid_subset_size: int | None = None, n_boot: int = 200) -> dict[str, float]:
    """All fidelity metrics of one evaluated set against one reference set (no subsampling).

    Args:
        feats_ref: features of the real reference set (training images), `(n_ref, d)`.
        feats_eval: features of the evaluated set (generated or held-out), `(n_eval, d)`.
        seed: seed of the KID subsets and of its bootstrap.
        k: neighbour count of precision/recall/density/coverage.
        kid_subsets: number of KID subsets.
        kid_subset_size: KID subset size (capped at the smaller set); ``None``: half the smaller
            set, at most 1000, so that the subsets differ and ``kid_std`` says how much one KID at
            that size varies (subsets as large as the sample are all the same sample).
        n_boot: bootstrap resamples of the KID interval (over images, see ``metrics/kid.py``), >= 2.

    Returns:
        A dict with the keys of ``COLUMNS``.
    """
    if kid_subset_size is None:
        kid_subset_size = min(1000, max(2, min(len(feats_ref), len(feats_eval)) // 2))
    kid = kid_from_features(feats_ref, feats_eval, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed,
                            n_boot=n_boot)
    return {"n_train": len(feats_ref), "n_eval": len(feats_eval), "fid": fid_from_features(feats_ref, feats_eval),
            "kid_mean": kid.mean, "kid_std": kid.std, "kid_ci_low": kid.ci_low, "kid_ci_high": kid.ci_high,
            "kid_subset_size": kid.subset_size, **prdc(feats_ref, feats_eval, k=k)}


def _pick(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` rows drawn without replacement (all rows if there are ``n`` or fewer)."""
    return np.arange(n_total) if n_total <= n else np.sort(rng.choice(n_total, n, replace=False))


def _check_split(split: Split, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` with one label per image."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"{name} must be a tuple (images, labels), got {type(split).__name__}.")
    images, labels = np.asarray(split[0]), np.asarray(split[1]).reshape(-1)
    if len(images) != len(labels):
        raise ValueError(f"{name} has {len(images)} images but {len(labels)} labels; pass one label per image.")
    return images, labels


def fidelity_study(features: Callable[[np.ndarray], np.ndarray], train: Split, heldout: Split,
                   fakes: Mapping[str, Split], classes: Sequence[str], seed: int = 0, k: int = 5,
                   max_n: int = 1000, n_boot: int = 50, ms_ssim_pairs: int = 200,
                   kid_subsets: int = 50) -> pd.DataFrame:
    """Fidelity and diversity per generator and class (and pooled), beside the real-vs-real reference.

    Every row, the reference's included, follows the rule in the module docstring: per group the
    evaluated sets are cut to one ``n_eval``, one training subsample of at most ``max_n`` rows is shared.

    Args:
        features: ``images -> (N, d)`` features (e.g. the domain encoder's ``features``).
        train: real training split ``(images, labels)``, labels in ``0..len(classes)-1``.
        heldout: real held-out split (validation), same format.
        fakes: ``{model: (images, labels)}`` generated images with the class each was made for.
        classes: class names in label order (the ``class`` column; ``"all"`` pools every class).
        seed: seed of the subsampling, FID bootstrap, KID subsets and MS-SSIM pairs.
        k: neighbours of precision/recall/density/coverage.
        max_n: cap on the training and evaluated sets of every group (PRDC is quadratic in n), >= k + 1.
        n_boot: bootstrap resamples of the FID and KID intervals, >= 2.
        ms_ssim_pairs: random pairs for the mean pairwise MS-SSIM.
        kid_subsets: KID subsets.

    Returns:
        Long frame with :data:`STUDY_COLUMNS`: ``model, class, n_eval, fid, fid_ci_low,
        fid_ci_high, kid, kid_ci_low, kid_ci_high, precision, recall, density, coverage, ms_ssim,
        ms_ssim_scales``; the reference rows have ``model`` = :data:`REFERENCE`, listed first in
        each group.
    """
    if max_n < k + 1:
        raise ValueError(f"max_n must be at least k + 1 = {k + 1}, got {max_n}.")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    if REFERENCE in fakes:
        raise ValueError(f"{REFERENCE!r} is the reference's name; give the generator another name.")
    x_tr, y_tr = _check_split(train, "train")
    x_he, y_he = _check_split(heldout, "heldout")
    sets = {REFERENCE: (x_he, y_he)} | {str(m): _check_split(v, f"fakes[{m!r}]") for m, v in fakes.items()}
    f_tr = check_features(features(x_tr), "features(train images)")
    feats = {m: check_features(features(x), f"features({m} images)", 0) for m, (x, _) in sets.items()}
    bad = {m: f.shape[1] for m, f in feats.items() if f.shape[1] != f_tr.shape[1]}
    if bad:
        raise ValueError(f"Feature widths differ from the training features' {f_tr.shape[1]}: {bad}; "
                         "use the same encoder for every set.")

    rows = []
    groups = [("all", None)] + [(str(name), i) for i, name in enumerate(classes)]
    for g, (cls, i) in enumerate(groups):
        members = {m: np.ones(len(y), bool) if i is None else y == i for m, (_, y) in sets.items()}
        in_train = np.ones(len(y_tr), bool) if i is None else y_tr == i
        n_eval = min(min(int(v.sum()) for v in members.values()), max_n)
        ft = f_tr[in_train]
        ft = ft[_pick(len(ft), max_n, np.random.default_rng([seed, g, 0]))]  # shared by every row of the group
        for model, (x, _) in sets.items():
            row = {"model": model, "class": cls, "n_eval": n_eval}
            if n_eval <= k or len(ft) <= k:
                rows.append(row)
                continue
            f, x = feats[model][members[model]], x[members[model]]
            pick = _pick(len(f), n_eval, np.random.default_rng([seed, g, 1]))  # the same draw for every set
            base = fidelity_row(ft, f[pick], seed=seed, k=k, kid_subsets=kid_subsets, n_boot=n_boot)
            fid = fid_ci(ft, f[pick], n_boot=n_boot, seed=seed)
            div = ms_ssim_diversity(x[pick], n_pairs=ms_ssim_pairs, seed=seed)
            rows.append(row | {"fid": base["fid"], "fid_ci_low": fid["ci_low"], "fid_ci_high": fid["ci_high"],
                               "kid": base["kid_mean"], "kid_ci_low": base["kid_ci_low"],
                               "kid_ci_high": base["kid_ci_high"], "precision": base["precision"],
                               "recall": base["recall"], "density": base["density"], "coverage": base["coverage"],
                               "ms_ssim": div["ms_ssim"], "ms_ssim_scales": div["scales"]})
    return pd.DataFrame(rows, columns=STUDY_COLUMNS)


def as_nested_dict(fid: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {class: {metric: value}}}`` of a :func:`fidelity_study` frame, for ``metrics.json``.

    The metrics are ``fid, fid_ci_low, fid_ci_high, kid, kid_ci_low, kid_ci_high, precision, recall,
    density, coverage, ms_ssim, n_eval`` (NaN where a group was skipped).

    Args:
        fid: the frame of :func:`fidelity_study`.
    """
    missing = [c for c in ("model", "class", *_NESTED_KEYS) if c not in fid.columns]
    if missing:
        raise ValueError(f"fid lacks the columns {missing}; pass the frame returned by fidelity_study.")
    return {str(m): {str(c): {k: (int(r[k]) if k == "n_eval" else float(r[k])) for k in _NESTED_KEYS}
                     for c, r in g.set_index("class").iterrows()}
            for m, g in fid.groupby("model", sort=False)}


def rank_generators(fid: pd.DataFrame, models: Sequence[str]) -> list[str]:
    """Generators ordered by mean per-class FID gap to the reference (best first; missing FIDs last).

    Rank on a table computed on the validation split only (model selection never sees the test split).

    Args:
        fid: the frame of :func:`fidelity_study`.
        models: the candidates.
    """
    per_class = fid[fid["class"] != "all"]
    ref = per_class[per_class.model == REFERENCE].set_index("class")["fid"]
    score = {m: float((per_class[per_class.model == m].set_index("class")["fid"] - ref).mean()) for m in models}
    return sorted(models, key=lambda m: (np.nan_to_num(score[m], nan=np.inf), m))


def fid_ratios(fid: pd.DataFrame, model: str) -> dict[str, float]:
    """Per class: the model's FID divided by the real-vs-real reference FID (1 = as close as real data).

    Classes where either FID is missing or the reference FID is 0 are left out.

    Args:
        fid: the frame of :func:`fidelity_study`.
        model: the generator.
    """
    ref = fid[fid.model == REFERENCE].set_index("class")["fid"]
    ours = fid[fid.model == model].set_index("class")["fid"]
    return {c: float(ours[c] / ref[c]) for c in ref.index if pd.notna(ours.get(c)) and pd.notna(ref[c]) and ref[c] > 0}


def validation_kid(features: Callable[[np.ndarray], np.ndarray], heldout: Split, max_per_class: int = 200,
                   seed: int = 0, kid_subsets: int = 20) -> Callable[[Any], float]:
    """A validation score for early stopping: KID between held-out real images and fresh samples (lower is better).

    The held-out features are computed once; each call draws as many images per class as the
    held-out set holds (at most ``max_per_class``) with the fixed ``seed``, so scores at different
    steps compare the same latents, and returns the mean KID over ``kid_subsets`` subsets of half
    the set. No global random state is used, so validating does not change the training.

    Args:
        features: ``images -> (N, d)`` features (the domain encoder's ``features``).
        heldout: the held-out split ``(uint8 images, labels)`` (validation, never test).
        max_per_class: the most images of any class, held-out and generated alike.
        seed: seed of the latents, the held-out subsample and the KID subsets.
        kid_subsets: KID subsets per call.

    Returns:
        ``score(gan) -> float`` for :func:`medgan_core.train.trainer.train_gan`'s ``eval_fn``; ``gan``
        needs ``sample(cls, n, seed)`` and ``num_classes``.
    """
    x_h, y_h = _check_split(heldout, "heldout")
    rng = np.random.default_rng([seed, 1])
    keep = np.sort(np.concatenate([np.flatnonzero(y_h == c)[_pick(int((y_h == c).sum()), max_per_class, rng)]
                                   for c in np.unique(y_h)]))
    f_h = check_features(features(x_h[keep]), "features(held-out images)", 4)

    def score(gan: Any) -> float:
        fakes = to_uint8_images(sample_like(gan, y_h[keep], max_per_class, seed)[0], squeeze_gray=False)
        f_g = check_features(features(fakes), "features(generated images)", 4)
        size = max(2, min(len(f_h), len(f_g)) // 2)
        return kid_from_features(f_h, f_g, n_subsets=kid_subsets, subset_size=size, seed=seed, n_boot=0).mean

    return score


class RealImages:
    """Real images drawn like a generator's samples: the reference line of a convergence curve.

    ``validation_kid(...)(RealImages(train))`` scores real training images exactly as it scores a
    generator, so it is the value a perfect generator would reach at that sample size.

    Args:
        split: ``(uint8 images (N, H, W[, C]), labels (N,))``, e.g. the real training split.
    """

    def __init__(self, split: Split) -> None:
        self.x, self.y = _check_split(split, "split")
        self.num_classes = int(self.y.max()) + 1

    def sample(self, cls: int, n: int, seed: int) -> torch.Tensor:
        """``n`` images of class ``cls`` (without replacement while the class has enough), seeded.

        Returns:
            `(n, C, H, W)` float in [-1, 1], like a generator's output.
        """
        idx = np.flatnonzero(self.y == int(cls))
        if not len(idx):
            raise ValueError(f"RealImages: class {cls} has no images.")
        rng = np.random.default_rng([int(seed), int(cls)])
        x = self.x[rng.choice(idx, int(n), replace=int(n) > len(idx))].astype(np.float32) / 127.5 - 1.0
        x = x[..., None] if x.ndim == 3 else x  # `(n, H, W, C)`
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

