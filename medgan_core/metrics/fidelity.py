"""The fidelity table: FID, KID, precision/recall and density/coverage, with the real-vs-real reference.

A FID of 12 says nothing by itself: it depends on the encoder, the dataset and the sample size.
So every table holds two rows computed the same way against the same real training features:

- ``fake_vs_train``: generated images against the real training images;
- ``heldout_vs_train``: real held-out images against the same training images, the value a
  perfect generator would reach (two real samples of the domain still differ).

Both rows use the same number of evaluated images ``n_eval``: the larger of the generated and
held-out sets is subsampled (seeded) to the size of the smaller, because FID and the k-NN
metrics depend on the sample size. By default (``match_train=True``) the training features are
subsampled to ``n_eval`` as well (one subset, shared by both rows), so that every comparison is
between equal-size sets as in Naeem et al. 2020: 500 evaluated images cannot reach the
neighbourhoods of 5,000 training images, so coverage would read low however good the images.
``match_train=False`` keeps every training row (steadier FID and KID, lower coverage in both
rows). ``max_n`` caps every set further for speed (PRDC is quadratic in n).

Read a generator's numbers as a gap to the reference row. The held-out set is normally the
validation split (the test split is kept for the final classifier evaluation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medgan_core.metrics.fid import check_features, fid_from_features
from medgan_core.metrics.kid import kid_from_features
from medgan_core.metrics.prdc import prdc

__all__ = ["fidelity_row", "fidelity_table", "fidelity_by_class"]

COLUMNS = ["n_train", "n_eval", "fid", "kid_mean", "kid_std", "kid_ci_low", "kid_ci_high", "kid_subset_size",
           "precision", "recall", "density", "coverage"]


def _subsample(feats: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows drawn without replacement (all rows, in order, if there are ``n`` or fewer)."""
    if len(feats) <= n:
        return feats
    return feats[np.sort(rng.choice(len(feats), n, replace=False))]


def fidelity_row(feats_ref: np.ndarray, feats_eval: np.ndarray, seed: int = 0, k: int = 5,
                 kid_subsets: int = 100, kid_subset_size: int | None = None) -> dict[str, float]:
    """All fidelity metrics of one evaluated set against one reference set (no subsampling).

    Args:
        feats_ref: features of the real reference set (training images), `(n_ref, d)`.
        feats_eval: features of the evaluated set (generated or held-out), `(n_eval, d)`.
        seed: seed of the KID subsets.
        k: neighbour count of precision/recall/density/coverage.
        kid_subsets: number of KID subsets.
        kid_subset_size: KID subset size (capped at the smaller set); ``None``: half the smaller
            set, at most 1000, so that the subsets differ and the KID interval means something
            (subsets as large as the sample are all the same sample, and the interval collapses).

    Returns:
        A dict with the keys of ``COLUMNS``.
    """
    if kid_subset_size is None:
        kid_subset_size = min(1000, max(2, min(len(feats_ref), len(feats_eval)) // 2))
    kid = kid_from_features(feats_ref, feats_eval, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    return {"n_train": len(feats_ref), "n_eval": len(feats_eval), "fid": fid_from_features(feats_ref, feats_eval),
            "kid_mean": kid.mean, "kid_std": kid.std, "kid_ci_low": kid.ci_low, "kid_ci_high": kid.ci_high,
            "kid_subset_size": kid.subset_size, **prdc(feats_ref, feats_eval, k=k)}


def fidelity_table(feats_real_train: np.ndarray, feats_real_heldout: np.ndarray, feats_fake: np.ndarray,
                   seed: int = 0, k: int = 5, kid_subsets: int = 100, kid_subset_size: int | None = None,
                   max_n: int | None = None, match_train: bool = True) -> pd.DataFrame:
    """Fidelity of generated features next to the real-vs-real reference at the same sample size.

    Args:
        feats_real_train: encoder features of real training images, `(n_train, d)`.
        feats_real_heldout: encoder features of real held-out images (validation or test), `(n_heldout, d)`.
        feats_fake: encoder features of generated images, `(n_fake, d)`.
        seed: seed of the subsampling and of the KID subsets.
        k: neighbour count of precision/recall/density/coverage (5 as in the papers).
        kid_subsets: number of KID subsets.
        kid_subset_size: KID subset size; ``None``: half the evaluated set, at most 1000.
        max_n: if set, at most this many rows of every set are used.
        match_train: subsample the training features to ``n_eval`` too (equal-size comparisons).

    Returns:
        A DataFrame indexed by ``comparison`` (``"fake_vs_train"``, ``"heldout_vs_train"``) with the
        columns ``n_train, n_eval, fid, kid_mean, kid_std, kid_ci_low, kid_ci_high, kid_subset_size,
        precision, recall, density, coverage``.
    """
    train = check_features(feats_real_train, "feats_real_train", k + 1)
    held = check_features(feats_real_heldout, "feats_real_heldout", k + 1)
    fake = check_features(feats_fake, "feats_fake", k + 1)
    if not train.shape[1] == held.shape[1] == fake.shape[1]:
        raise ValueError(f"Feature widths differ (train {train.shape[1]}, held-out {held.shape[1]}, fake "
                         f"{fake.shape[1]}); compute all three with the same encoder.")
    if max_n is not None and max_n < k + 1:
        raise ValueError(f"max_n must be at least k + 1 = {k + 1}, got {max_n}.")
    rng = np.random.default_rng(seed)
    n_eval = min(len(held), len(fake), max_n or len(fake))
    train = _subsample(train, n_eval if match_train else (max_n or len(train)), rng)
    held, fake = _subsample(held, n_eval, rng), _subsample(fake, n_eval, rng)

    rows = {name: fidelity_row(train, feats, seed, k, kid_subsets, kid_subset_size)
            for name, feats in (("fake_vs_train", fake), ("heldout_vs_train", held))}
    table = pd.DataFrame.from_dict(rows, orient="index")[COLUMNS]
    table.index.name = "comparison"
    return table


def fidelity_by_class(feats_train: np.ndarray, y_train: np.ndarray, feats_heldout: np.ndarray,
                      y_heldout: np.ndarray, feats_fake: np.ndarray, y_fake: np.ndarray, seed: int = 0,
                      k: int = 5, kid_subsets: int = 100, kid_subset_size: int | None = None,
                      max_n: int | None = None, match_train: bool = True) -> pd.DataFrame:
    """:func:`fidelity_table` per class, plus the pooled table (class ``"all"``).

    A class with k or fewer images in any of the three sets is listed with empty metrics and a
    note instead of failing the whole table.

    Args:
        feats_train: real training features `(n_train, d)`.
        y_train: their class labels `(n_train,)`.
        feats_heldout: real held-out features `(n_heldout, d)`.
        y_heldout: their class labels `(n_heldout,)`.
        feats_fake: generated features `(n_fake, d)`.
        y_fake: the class each generated image was conditioned on, `(n_fake,)`.
        seed: seed of the subsampling and KID subsets.
        k: neighbour count of the k-NN metrics.
        kid_subsets: number of KID subsets.
        kid_subset_size: KID subset size; ``None``: half the evaluated set of each class, at most 1000.
        max_n: optional cap on every set, per class.
        match_train: subsample the training features to the evaluated size too.

    Returns:
        A DataFrame with columns ``class, comparison, note`` and the metric columns.
    """
    y_train, y_heldout, y_fake = (np.asarray(y) for y in (y_train, y_heldout, y_fake))
    feats_train, feats_heldout, feats_fake = (np.asarray(f) for f in (feats_train, feats_heldout, feats_fake))
    for name, feats, y in (("train", feats_train, y_train), ("heldout", feats_heldout, y_heldout),
                           ("fake", feats_fake, y_fake)):
        if len(feats) != len(y):
            raise ValueError(f"feats_{name} has {len(feats)} rows but y_{name} has {len(y)} labels; "
                             "pass one label per row.")
    parts = []
    groups = [("all", slice(None), slice(None), slice(None))]
    groups += [(c, y_train == c, y_heldout == c, y_fake == c) for c in np.unique(y_train)]
    for cls, m_train, m_held, m_fake in groups:
        sizes = [len(feats_train[m_train]), len(feats_heldout[m_held]), len(feats_fake[m_fake])]
        if min(sizes) <= k:
            table = pd.DataFrame(index=pd.Index(["fake_vs_train", "heldout_vs_train"], name="comparison"),
                                 columns=COLUMNS, dtype=float)
            table["note"] = f"skipped: needs more than k={k} images per set, has train/held-out/fake {sizes}"
        else:
            table = fidelity_table(feats_train[m_train], feats_heldout[m_held], feats_fake[m_fake], seed=seed, k=k,
                                   kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, max_n=max_n,
                                   match_train=match_train)
            table["note"] = ""
        parts.append(table.reset_index().assign(**{"class": str(cls)}))
    out = pd.concat(parts, ignore_index=True)
    return out[["class", "comparison", "note", *COLUMNS]]
