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

**Intervals by patient**, :func:`grouped_fidelity`: when the evaluated rows are not independent
(jittered crops of a few nodules of a few patients), an interval over images is far too narrow.
There the unit resampled is the patient, and generated rows are paired with held-out rows (each
generated crop is made from one held-out input, so it carries that input's patient):

1. Point estimates on the full sets, from :func:`fidelity_row`: the reference row is held-out vs
   training features, each model row its generated features vs the same training features (which
   stay fixed throughout; no subsampling, no ``n_eval`` cut).
2. Each bootstrap draw resamples the held-out patients with replacement (the draws of
   :func:`medgan_core.metrics.stats.cluster_bootstrap_draws`, with its minimum of 3 groups)
   and keeps, in the reference set *and* in every model's set, the rows of the drawn patients (a
   patient drawn twice contributes its rows twice). One draw serves every row, so the rows of the
   table are compared on the same patients.
3. Per draw the metrics are recomputed with the same functions, FID in the eigenvalue form of
   ``metrics/fid.py``'s bootstrap and KID with fewer subsets (:data:`DRAW_KID_SUBSETS`).
4. Every metric is biased under resampling (repeated rows raise FID and KID and lower recall and
   coverage), so each interval is the percentile interval of the draws shifted so that their
   median is the estimate (:func:`medgan_core.metrics.stats.shifted_percentile_interval`, as
   :func:`medgan_core.metrics.fid.fid_ci` does): it contains its estimate by construction and is
   clipped to the metric's range. With fewer than 3 patients every interval is NaN (no interval,
   never a zero-width one); ``format_ci(..., n=n_patients, unit="patients")`` prints why. Where
   every draw agrees (precision 0 for a generator far from the data) the interval has zero width
   as computed, and ``format_ci`` prints it ``n/a`` as well.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from medgan_core.data.datasets import to_uint8_images
from medgan_core.metrics.diversity import ms_ssim_diversity
from medgan_core.metrics.fid import _fid_eig, check_features, fid_ci, fid_from_features
from medgan_core.metrics.kid import kid_from_features
from medgan_core.metrics.prdc import prdc
from medgan_core.metrics.stats import check_groups, cluster_bootstrap_draws, shifted_percentile_interval
from medgan_core.models.registry import sample_like

__all__ = ["REFERENCE", "COLUMNS", "STUDY_COLUMNS", "GROUPED_METRICS", "GROUPED_COLUMNS", "DRAW_KID_SUBSETS",
           "fidelity_row", "fidelity_study", "grouped_fidelity", "validation_kid", "RealImages", "as_nested_dict",
           "rank_generators", "fid_ratios"]

REFERENCE = "real (val vs train)"  # the ``model`` of the real-vs-real rows of :func:`fidelity_study`
Split = tuple[np.ndarray, np.ndarray]  # images `(N, ...)`, int labels `(N,)`

COLUMNS = ["n_train", "n_eval", "fid", "kid_mean", "kid_std", "kid_ci_low", "kid_ci_high", "kid_subset_size",
           "precision", "recall", "density", "coverage"]
STUDY_COLUMNS = ["model", "class", "n_eval", "fid", "fid_ci_low", "fid_ci_high", "kid", "kid_ci_low", "kid_ci_high",
                 "precision", "recall", "density", "coverage", "ms_ssim", "ms_ssim_scales"]
GROUPED_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")  # of :func:`grouped_fidelity`
GROUPED_COLUMNS = ["model", "n_eval", "n_patients"] + [c for m in GROUPED_METRICS
                                                       for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
DRAW_KID_SUBSETS = 10  # KID subsets per bootstrap draw of :func:`grouped_fidelity` (the estimate uses ``kid_subsets``)
_RANGE = {"fid": (0.0, np.inf), "kid": None, "precision": (0.0, 1.0), "recall": (0.0, 1.0), "density": (0.0, np.inf),
          "coverage": (0.0, 1.0)}  # what each interval is clipped to (KID can be negative)
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


def _draw_metrics(f_tr: np.ndarray, f_ev: np.ndarray, seed: int, k: int, kid_subset_size: int) -> np.ndarray:
    """``GROUPED_METRICS`` of one resampled evaluated set against the fixed training set, `(6,)` (NaN if <= k rows)."""
    if len(f_ev) <= k:
        return np.full(len(GROUPED_METRICS), np.nan)
    kid = kid_from_features(f_tr, f_ev, n_subsets=DRAW_KID_SUBSETS, subset_size=kid_subset_size, seed=seed, n_boot=0)
    p = prdc(f_tr, f_ev, k=k)
    return np.array([_fid_eig(f_tr, f_ev), kid.mean, p["precision"], p["recall"], p["density"], p["coverage"]])


def grouped_fidelity(feats_train: np.ndarray, feats_heldout: np.ndarray, feats_fakes: Mapping[str, np.ndarray],
                     groups_heldout: Any, groups_fakes: Mapping[str, Any] | None = None, seed: int = 0, k: int = 5,
                     n_boot: int = 200, kid_subsets: int = 50) -> pd.DataFrame:
    """FID, KID and PRDC per model beside the real-vs-real reference, with intervals by patient.

    The rule is in the module docstring ("Intervals by patient"): point estimates of
    :func:`fidelity_row` on the full sets against the fixed training features; each of the
    ``n_boot`` draws resamples the held-out patients once and keeps the rows of the drawn patients
    in the reference set and in every model's set; each interval is the draws' percentile interval
    shifted to the estimate, clipped to the metric's range, NaN with fewer than 3 patients.
    KID uses ``kid_subsets`` subsets for the estimate but :data:`DRAW_KID_SUBSETS` per draw (the
    spread over draws comes from the patients drawn, not from the subsets), and FID per draw the
    eigenvalue form of ``metrics/fid.py``'s bootstrap. Cost: a set drawn the same way twice is
    computed once, and 3 patients allow only 10 distinct draws (4: 35, 6: 462), so 84 held-out
    rows of 3 patients, 128 dimensions, 200 training rows, 4 models and 200 draws take about
    0.6 s on one core. Each new draw costs about 8 ms per model with 200 training rows (``prdc``
    recomputes the training radii, quadratic in ``n_train``: about 50 ms with 1000), so the same
    call with 6 or more patients takes about 7 to 10 s.

    Args:
        feats_train: training features, `(n_train, d)`, n_train > k; fixed in every draw.
        feats_heldout: real held-out features, `(n_heldout, d)`, n_heldout > k: the reference row.
        feats_fakes: ``{model: (n_model, d)}`` generated features, each > k rows.
        groups_heldout: `(n_heldout,)` patient of each held-out row.
        groups_fakes: ``{model: (n_model,)}`` patient of each generated row (the patient of the
            held-out input it was made from; every one must be a held-out patient), or ``None``:
            each model's rows are paired with the held-out rows, so ``groups_heldout`` is used
            and every model needs exactly ``n_heldout`` rows.
        seed: seed of the patient draws and of the KID subsets.
        k: neighbours of precision/recall/density/coverage.
        n_boot: patient draws, >= 2.
        kid_subsets: KID subsets of the point estimate (each of half the smaller set).

    Returns:
        A frame with :data:`GROUPED_COLUMNS`: ``model, n_eval, n_patients`` and for each of ``fid,
        kid, precision, recall, density, coverage`` the estimate, ``<metric>_ci_low`` and
        ``<metric>_ci_high``. The reference row (``model`` = :data:`REFERENCE`) comes first;
        ``n_eval`` is the set's rows, ``n_patients`` its patients.
    """
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    if REFERENCE in feats_fakes:
        raise ValueError(f"{REFERENCE!r} is the reference's name; give the generator another name.")
    f_tr = check_features(feats_train, "feats_train", k + 1)
    f_he = check_features(feats_heldout, "feats_heldout", k + 1)
    if f_he.shape[1] != f_tr.shape[1]:
        raise ValueError(f"feats_heldout has {f_he.shape[1]} feature columns but feats_train has {f_tr.shape[1]}; "
                         "use the same encoder for every set.")
    g_he = check_groups(groups_heldout, len(f_he), "groups_heldout", "feats_heldout")
    sets = {REFERENCE: (f_he, g_he)}
    for m, f in feats_fakes.items():
        f = check_features(f, f"feats_fakes[{m!r}]", k + 1)
        if f.shape[1] != f_tr.shape[1]:
            raise ValueError(f"feats_fakes[{m!r}] has {f.shape[1]} feature columns but feats_train has "
                             f"{f_tr.shape[1]}; use the same encoder for every set.")
        if groups_fakes is None:
            if len(f) != len(f_he):
                raise ValueError(f"groups_fakes is None, so feats_fakes[{m!r}] must be paired row by row with the "
                                 f"held-out rows, but it has {len(f)} rows and feats_heldout {len(f_he)}; pass "
                                 "groups_fakes={model: patient of each generated row}.")
            g = g_he
        elif m not in groups_fakes:
            raise ValueError(f"groups_fakes has no entry for {m!r}; give the patient of each of its rows.")
        else:
            g = check_groups(groups_fakes[m], len(f), f"groups_fakes[{m!r}]", f"feats_fakes[{m!r}]")
            unknown = sorted(set(np.unique(g).tolist()) - set(np.unique(g_he).tolist()))
            if unknown:
                raise ValueError(f"groups_fakes[{m!r}] holds patients that are not held-out patients: {unknown[:5]}; "
                                 "each generated row carries the patient of the held-out input it was made from.")
        sets[str(m)] = (f, g)

    with threadpool_limits(1):  # small matrices: one BLAS thread is as fast and leaves the other cores alone
        return _grouped_fidelity(f_tr, sets, seed, k, n_boot, kid_subsets)


def _grouped_fidelity(f_tr: np.ndarray, sets: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, k: int,
                      n_boot: int, kid_subsets: int) -> pd.DataFrame:
    """:func:`grouped_fidelity` on checked inputs; ``sets``: ``{name: (features, patient per row)}``, reference 1st."""
    names = list(sets)
    est = {m: fidelity_row(f_tr, f, seed=seed, k=k, kid_subsets=kid_subsets, n_boot=0) for m, (f, _) in sets.items()}

    # The patient draws: every set stacked, rows labelled by patient, so one draw picks the same patients in all.
    offsets = np.cumsum([0] + [len(f) for f, _ in sets.values()])
    draws = cluster_bootstrap_draws(np.concatenate([g for _, g in sets.values()]), n_boot=n_boot, seed=seed)
    boots = np.full((len(draws), len(names), len(GROUPED_METRICS)), np.nan)  # `(B, sets, metrics)`
    cache: list[dict[bytes, np.ndarray]] = [{} for _ in names]
    for b, idx in enumerate(draws):
        for s, m in enumerate(names):
            rows = np.sort(idx[(idx >= offsets[s]) & (idx < offsets[s + 1])]) - offsets[s]  # one key per multiset
            key = rows.tobytes()
            if key not in cache[s]:
                cache[s][key] = _draw_metrics(f_tr, sets[m][0][rows], seed, k, est[m]["kid_subset_size"])
            boots[b, s] = cache[s][key]

    out = []
    for s, m in enumerate(names):
        e = est[m]
        point = {"fid": e["fid"], "kid": e["kid_mean"], **{c: e[c] for c in GROUPED_METRICS[2:]}}
        row = {"model": m, "n_eval": len(sets[m][0]), "n_patients": len(np.unique(sets[m][1]))}
        for j, metric in enumerate(GROUPED_METRICS):
            low, high = (shifted_percentile_interval(point[metric], boots[:, s, j], clip=_RANGE[metric])
                         if len(draws) else (np.nan, np.nan))
            row |= {metric: float(point[metric]), f"{metric}_ci_low": low, f"{metric}_ci_high": high}
        out.append(row)
    return pd.DataFrame(out, columns=GROUPED_COLUMNS)


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
                   seed: int = 0, kid_subsets: int = 20, as_images: bool = True) -> Callable[[Any], float]:
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
        as_images: samples go to ``features`` as uint8 images (like the held-out ones); ``False``:
            as the generator's float output, for generators of something other than images (the
            feature GAN of experiment 03, whose held-out "images" are feature maps).

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
        fakes = sample_like(gan, y_h[keep], max_per_class, seed)[0]
        fakes = to_uint8_images(fakes, squeeze_gray=False) if as_images else fakes
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

