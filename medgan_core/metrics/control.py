"""Feature control: does a conditional generator produce the rating it is asked for, by how much, and can we tell?

A generator that takes a feature vector ``f`` (e.g. SQ-AGGAN's nodule ratings: malignancy,
spiculation, ...) should draw a nodule whose look follows the requested rating. We check this
without a radiologist:

1. :func:`fit_feature_regressor` fits a ridge regressor from simple intensity and shape
   descriptors of the nodule region (:func:`nodule_descriptors`) to the rating, on real training
   nodules. :func:`regressor_validity` gives its Spearman correlation of true vs predicted ratings
   on real held-out nodules (near 0: the regressor cannot see the feature even on real images).
2. :func:`feature_control` asks the generator for every level (1..5) on fixed inputs, reads the
   rating back with the regressor, and reports the mean within-input Spearman correlation of
   requested vs read-back levels (direction; 1 = always ordered), with a bootstrap interval
   (:func:`spearman_ci`) over patients when ``groups`` gives each input's patient, else over
   inputs; the mean absolute difference between read-back and requested ratings (magnitude);
   the requested levels never seen in training (``train_levels``); and the effect (3).
3. :func:`control_effect` is the size of the control in rating points: the least-squares slope
   of the read-back on the requested rating times the requested span (max - min level), i.e. how
   far the read-back moves over the requested range (a perfect generator and reader: the span;
   no control: 0), with a cluster-bootstrap interval over patients.
4. :func:`regressor_ceiling` is the same effect on *real* held-out nodules (the regressor's
   prediction on the true rating, same span), with a patient-level interval and the Spearman of
   (1): what a generator that realised every request perfectly would show, as this regressor reads it.
5. :func:`control_verdict` says whether control is measurable at all: only when the effect's
   interval lies above 0 *and* the ceiling's does (the regressor can resolve a change of rating
   on real nodules); it also gives the effect as a share of the ceiling.

Every interval resamples the independent unit, the patient
(:func:`medgan_core.metrics.stats.cluster_bootstrap_resample_ci`); with fewer than 3 patients
there is no interval (NaN), and no verdict of control.

The generator is passed in as ``generate_fn(x_in, m, f) -> (N, T, S, S)`` so this module does not
depend on a model family; for SQ-AGGAN:
``lambda x, m, f: sqaggan.generate(net_G, x, m, f, device=dev)``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from medgan_core.data.nodule_sequences import scale_features
from medgan_core.metrics.stats import MIN_VALUES, bootstrap_ci, cluster_bootstrap_ci, cluster_bootstrap_resample_ci

__all__ = ["nodule_descriptors", "fit_feature_regressor", "regressor_validity", "spearman_ci", "feature_control",
           "control_effect", "regressor_ceiling", "control_verdict"]

GenerateFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (x_in, m, f) -> `(N, T, S, S)`


class Regressor(Protocol):
    """Anything with scikit-learn's ``predict`` (descriptors `(N, D)` -> ratings `(N,)`)."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


def nodule_descriptors(x_mid: np.ndarray, m_mid: np.ndarray, ring_px: int = 3) -> np.ndarray:
    """Intensity and shape descriptors of the nodule region of middle slices.

    Per image: mean, std, 10th/50th/90th percentile and maximum inside the mask; the mean of a
    ``ring_px`` ring around it and the contrast (inside minus ring); the mean gradient magnitude
    on the mask border; the mask area; and the 8x8 average-pooled image inside the dilated mask.
    An empty mask uses the whole image as "inside" and as ring.

    Args:
        x_mid: `(N, S, S)` images in [-1, 1].
        m_mid: `(N, S, S)` bool masks.
        ring_px: width of the surrounding ring.

    Returns:
        `(N, 10 + 64)` float64.
    """
    x_mid, m_mid = np.asarray(x_mid), np.asarray(m_mid)
    if x_mid.shape != m_mid.shape or x_mid.ndim != 3:
        raise ValueError(f"x_mid and m_mid must both be (N, S, S); got {x_mid.shape} and {m_mid.shape}.")
    feats = []
    s = x_mid.shape[-1]
    for x, m in zip(x_mid, m_mid.astype(bool)):
        inside = x[m] if m.any() else x.ravel()
        grown = ndimage.binary_dilation(m, iterations=ring_px)
        ring = x[grown & ~m] if (grown & ~m).any() else x.ravel()
        border = m & ~ndimage.binary_erosion(m)
        grad = np.hypot(*np.gradient(x))
        pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy((x * grown)[None, None].astype(np.float32)),
                                                         8).numpy().ravel()
        feats.append(np.r_[inside.mean(), inside.std(), np.percentile(inside, [10, 50, 90]), inside.max(),
                           ring.mean(), inside.mean() - ring.mean(), grad[border].mean() if border.any() else 0.0,
                           m.sum() / (s * s), pooled])
    return np.asarray(feats, dtype=np.float64)


def fit_feature_regressor(x_mid: np.ndarray, m_mid: np.ndarray, target: np.ndarray) -> Pipeline:
    """Ridge regression (alpha by leave-one-out CV) from :func:`nodule_descriptors` to a rating.

    Args:
        x_mid: `(N, S, S)` real nodule middle slices in [-1, 1].
        m_mid: `(N, S, S)` their masks.
        target: `(N,)` the rating (e.g. malignancy 1..5).

    Returns:
        A fitted scikit-learn pipeline; ``predict(nodule_descriptors(x, m))`` gives ratings.
    """
    target = np.asarray(target, dtype=np.float64)
    if len(target) != len(x_mid) or len(np.unique(target)) < 2:
        raise ValueError(f"target needs one value per image ({len(x_mid)}) and at least two distinct values; got "
                         f"{len(target)} values, {len(np.unique(target))} distinct.")
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    return model.fit(nodule_descriptors(x_mid, m_mid), target)


def regressor_validity(regressor: Regressor, x_mid: np.ndarray, m_mid: np.ndarray, truth: np.ndarray) -> float:
    """Spearman correlation of true vs predicted ratings on real held-out nodules: the regressor's ceiling.

    Args:
        regressor: from :func:`fit_feature_regressor`.
        x_mid: `(N, S, S)` real held-out middle slices in [-1, 1].
        m_mid: `(N, S, S)` their masks.
        truth: `(N,)` their true ratings.

    Returns:
        Spearman's rho; NaN when ``truth`` (or the prediction) is constant.
    """
    truth = np.asarray(truth, dtype=np.float64)
    if len(truth) != len(x_mid):
        raise ValueError(f"truth has {len(truth)} values for {len(x_mid)} images; pass one rating per image.")
    if len(np.unique(truth)) < 2:
        return float("nan")
    pred = np.asarray(regressor.predict(nodule_descriptors(x_mid, m_mid)), dtype=np.float64)
    if len(np.unique(pred)) < 2:
        return float("nan")
    return float(spearmanr(truth, pred).statistic)


def spearman_ci(requested: np.ndarray, measured: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                seed: int = 0, clusters: np.ndarray | None = None) -> tuple[float, float, float]:
    """Mean within-group Spearman correlation of requested vs measured ratings, with a bootstrap CI.

    For each group (one fixed background or erased nodule, asked for every level) the Spearman
    correlation between the requested levels and the ratings read back; groups whose read-back
    ratings are all equal (undefined correlation) count as 0. The mean over groups and its 95%
    percentile-bootstrap interval are returned: resampling groups
    (:func:`medgan_core.metrics.stats.bootstrap_ci`), or, with ``clusters``, resampling patients
    with all their groups together (:func:`medgan_core.metrics.stats.cluster_bootstrap_ci`; NaN
    with fewer than 3 patients).

    Args:
        requested: `(N,)` requested ratings.
        measured: `(N,)` ratings read back by the regressor.
        groups: `(N,)` the input each pair was made from.
        n_boot: resamples.
        seed: the seed of the resampling.
        clusters: `(N,)` optional patient of each pair; every input must lie in one patient.

    Returns:
        ``(rho, low, high)``.
    """
    requested, measured, groups = (np.asarray(a) for a in (requested, measured, groups))
    if not (len(requested) == len(measured) == len(groups)):
        raise ValueError("requested, measured and groups need one length.")
    if clusters is not None:
        clusters = np.asarray(clusters)
        if len(clusters) != len(groups):
            raise ValueError(f"clusters has {len(clusters)} labels for {len(groups)} pairs; "
                             "pass the patient of each pair.")
    rhos, patients = [], []
    for g in np.unique(groups):
        sel = groups == g
        if len(np.unique(requested[sel])) < 2:
            raise ValueError(f"group {g} has a single requested level; ask for at least two levels per input.")
        if clusters is not None:
            if len(np.unique(clusters[sel])) != 1:
                raise ValueError(f"input {g} spans patients {np.unique(clusters[sel]).tolist()}; "
                                 "pass one patient per input.")
            patients.append(clusters[sel][0])
        if len(np.unique(measured[sel])) < 2:
            rhos.append(0.0)  # constant read-back: no ordering
            continue
        r = spearmanr(requested[sel], measured[sel]).statistic
        rhos.append(float(r) if np.isfinite(r) else 0.0)
    if clusters is None:
        return bootstrap_ci(np.array(rhos), n_boot=n_boot, seed=seed)
    return cluster_bootstrap_ci(np.array(rhos), np.array(patients), n_boot=n_boot, seed=seed)


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` on ``x``; NaN when ``x`` is constant."""
    dx = x - x.mean()
    ss = float(dx @ dx)
    return float(dx @ (y - y.mean()) / ss) if ss > 0 else float("nan")


def _levels(levels: Iterable[float] | None, available: np.ndarray, name: str) -> list[float]:
    """``levels`` (default ``available``) as sorted distinct floats; at least two."""
    out = sorted({float(v) for v in (available if levels is None else levels)})
    if len(out) < 2:
        raise ValueError(f"{name} needs at least two distinct levels to span a range; got {out}.")
    return out


def control_effect(table: pd.DataFrame, groups: str | np.ndarray | None = None,
                   levels: Sequence[float] | None = None, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """How many rating points the read-back moves over the requested range, with a patient-level interval.

    The effect is the least-squares slope of ``measured`` on ``requested`` (pooled over all rows of
    the levels considered) times the requested span ``max(levels) - min(levels)``: a generator
    and reader that realise every request give the span, no control gives 0. The interval
    resamples whole groups (:func:`medgan_core.metrics.stats.cluster_bootstrap_resample_ci`; NaN
    with fewer than 3 groups).

    Args:
        table: rows ``requested, measured`` (and ``input``, optionally ``patient``), as
            :func:`feature_control` returns it.
        groups: the independent unit of each row: a column name, a `(len(table),)` array, or
            None for the ``patient`` column when the table has one, else ``input``.
        levels: the requested levels to consider (e.g. those inside the training range);
            default all requested levels. Each must occur in ``table``.
        seed: the seed of the bootstrap.
        n_boot: resamples.

    Returns:
        ``effect`` (rating points), ``ci`` ``(low, high)``, ``span`` (max - min level, rating
        points), ``levels`` (the levels considered), ``per_level`` (mean read-back per level),
        ``n_units`` (groups in the rows considered) and ``unit`` (what a group is).
    """
    if not isinstance(table, pd.DataFrame) or not {"requested", "measured"} <= set(table.columns):
        raise ValueError("table must be a DataFrame with columns 'requested' and 'measured' (feature_control's table).")
    if groups is None:
        groups = "patient" if "patient" in table.columns else "input"
        if groups not in table.columns:
            raise ValueError("table has neither a 'patient' nor an 'input' column; pass groups (the unit of each row).")
    if isinstance(groups, str):
        if groups not in table.columns:
            raise ValueError(f"groups names column {groups!r}, which table lacks; columns: {list(table.columns)}.")
        unit = {"patient": "patients", "input": "inputs"}.get(groups, groups)
        g = table[groups].to_numpy()
    else:
        unit, g = "groups", np.asarray(groups).reshape(-1)
        if len(g) != len(table):
            raise ValueError(f"groups has {len(g)} labels for {len(table)} rows of table; pass one label per row.")
    req = table["requested"].to_numpy(dtype=np.float64)
    meas = table["measured"].to_numpy(dtype=np.float64)
    levels = _levels(levels, np.unique(req), "levels")
    missing = sorted(set(levels) - set(np.unique(req).tolist()))
    if missing:
        raise ValueError(f"levels {missing} were never requested in table; "
                         f"requested levels: {np.unique(req).tolist()}.")
    sel = np.isin(req, levels)
    req, meas, g = req[sel], meas[sel], g[sel]
    if not np.all(np.isfinite(meas)):
        raise ValueError("table's 'measured' has NaN or inf in the levels considered; check the regressor's input.")
    span = levels[-1] - levels[0]
    est, low, high = cluster_bootstrap_resample_ci(g, lambda idx: _slope(req[idx], meas[idx]) * span,
                                                   n_boot=n_boot, seed=seed)
    per_level = {lv: float(meas[req == lv].mean()) for lv in levels}
    return {"effect": est, "ci": (low, high), "span": span, "levels": levels, "per_level": per_level,
            "n_units": int(len(np.unique(g))), "unit": unit}


def regressor_ceiling(regressor: Regressor, x_mid: np.ndarray, m_mid: np.ndarray, truth: np.ndarray,
                      groups: np.ndarray, levels: Sequence[float] | None = None, seed: int = 0, n_boot: int = 1000,
                      units: np.ndarray | None = None) -> dict[str, Any]:
    """The control effect a perfect generator would show: the regressor on real held-out nodules.

    The slope of the regressor's prediction on the true rating (least squares over all images)
    times the span ``max(levels) - min(levels)``: how many rating points the read-back moves over
    that span when the rating really changes. Pass the ``levels`` of :func:`control_effect` so the
    two are in the same units. Also Spearman(true, predicted), as :func:`regressor_validity`.
    Both intervals resample patients (NaN with fewer than 3).

    Args:
        regressor: from :func:`fit_feature_regressor`.
        x_mid: `(N, S, S)` real held-out middle slices in [-1, 1].
        m_mid: `(N, S, S)` their masks.
        truth: `(N,)` their true ratings.
        groups: `(N,)` the patient of each image.
        levels: the levels whose range sets the span; default the range of ``truth``.
        seed: the seed of the bootstrap.
        n_boot: resamples.
        units: `(N,)` optional nodule id of each image, for ``n_nodules``.

    Returns:
        ``effect`` (rating points), ``ci``, ``span``, ``levels``, ``slope`` (effect / span),
        ``rho`` and ``rho_ci`` (Spearman; NaN when truth or prediction is constant), ``per_level``
        (mean prediction per true rating), ``n_images``, ``n_patients``, ``n_nodules`` (None
        without ``units``).

    Raises:
        ValueError: a length that is not one per image, or no span (``levels`` is None and
            ``truth`` is constant).
    """
    truth = np.asarray(truth, dtype=np.float64).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    for name, arr in (("truth", truth), ("groups", groups)) + ((("units", np.asarray(units).reshape(-1)),)
                                                               if units is not None else ()):
        if len(arr) != len(x_mid):
            raise ValueError(f"{name} has {len(arr)} values for {len(x_mid)} images; pass one per image.")
    levels = _levels(levels, np.array([truth.min(), truth.max()]) if len(np.unique(truth)) > 1 else np.unique(truth),
                     "levels (or truth, when levels is None)")
    span = levels[-1] - levels[0]
    pred = np.asarray(regressor.predict(nodule_descriptors(x_mid, m_mid)), dtype=np.float64).reshape(-1)

    def rho(idx: np.ndarray) -> float:
        t, p = truth[idx], pred[idx]
        if len(np.unique(t)) < 2 or len(np.unique(p)) < 2:
            return float("nan")
        return float(spearmanr(t, p).statistic)

    est, low, high = cluster_bootstrap_resample_ci(groups, lambda idx: _slope(truth[idx], pred[idx]) * span,
                                                   n_boot=n_boot, seed=seed)
    r, r_low, r_high = cluster_bootstrap_resample_ci(groups, rho, n_boot=n_boot, seed=seed)
    return {"effect": est, "ci": (low, high), "span": span, "levels": levels, "slope": est / span,
            "rho": r, "rho_ci": (r_low, r_high),
            "per_level": {float(t): float(pred[truth == t].mean()) for t in np.unique(truth)},
            "n_images": int(len(truth)), "n_patients": int(len(np.unique(groups))),
            "n_nodules": None if units is None else int(len(np.unique(np.asarray(units))))}


def _fmt(est: float, ci: tuple[float, float]) -> str:
    """``"0.14 [-0.05, 0.33]"``, or ``"0.14 [no interval]"``."""
    low, high = ci
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{est:.2f} [no interval]"
    return f"{est:.2f} [{low:.2f}, {high:.2f}]"


def control_verdict(effect: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, Any]:
    """Is there measurable control? Only if the effect's interval and the ceiling's both lie above 0.

    The ceiling's condition says the regressor can resolve a change of rating at all, on real
    nodules; without it a flat read-back says nothing about the generator. A missing interval
    (fewer than 3 patients) fails its condition.

    Args:
        effect: from :func:`control_effect` (or ``feature_control(...)["effect"]``).
        ceiling: from :func:`regressor_ceiling` with the same span.

    Returns:
        ``measurable`` (bool), ``reason`` (a sentence with the numbers, 2 decimals), ``failed``
        (codes of the failed conditions: ``effect_no_interval``, ``effect_not_above_0``,
        ``ceiling_no_interval``, ``ceiling_not_above_0``) and ``share`` (effect / ceiling effect;
        NaN when the ceiling is not positive).
    """
    for name, d in (("effect", effect), ("ceiling", ceiling)):
        missing = {"effect", "ci", "span"} - set(d)
        if missing:
            raise ValueError(f"{name} lacks {sorted(missing)}; pass the dict of "
                             f"{'control_effect' if name == 'effect' else 'regressor_ceiling'}.")
    if not np.isclose(effect["span"], ceiling["span"]):
        raise ValueError(f"effect spans {effect['span']:.2f} rating points but ceiling {ceiling['span']:.2f}; "
                         f"call regressor_ceiling(..., levels=effect['levels']).")
    e, c, span = float(effect["effect"]), float(ceiling["effect"]), float(effect["span"])
    (e_low, e_high), (c_low, c_high) = effect["ci"], ceiling["ci"]
    failed, why = [], []
    if not (np.isfinite(e_low) and np.isfinite(e_high)):
        n = effect.get("n_units")
        failed.append("effect_no_interval")
        why.append(f"no interval for the effect ({n} {effect.get('unit', 'units')}; an interval needs at least "
                   f"{MIN_VALUES})" if n is not None and n < MIN_VALUES else "no interval for the effect")
    elif e_low <= 0:
        failed.append("effect_not_above_0")
        why.append("the effect's interval includes 0" if e_high >= 0
                   else "the effect's interval lies below 0 (the read-back moves against the request)")
    if not (np.isfinite(c_low) and np.isfinite(c_high)):
        n = ceiling.get("n_patients")
        failed.append("ceiling_no_interval")
        why.append(f"no interval for the ceiling ({n} patients; an interval needs at least {MIN_VALUES})"
                   if n is not None and n < MIN_VALUES else "no interval for the ceiling")
    elif c_low <= 0:
        failed.append("ceiling_not_above_0")
        why.append("the ceiling's interval includes 0: the regressor cannot resolve the rating even on real nodules")
    share = e / c if np.isfinite(c) and c > 0 else float("nan")
    numbers = (f"effect {_fmt(e, (e_low, e_high))} vs ceiling {_fmt(c, (c_low, c_high))} rating points over a "
               f"requested span of {span:.2f}; effect = {share:.2f} of the ceiling")
    reason = (f"measurable control: {numbers}" if not failed
              else f"no measurable control: {'; '.join(why)} ({numbers})")
    return {"measurable": not failed, "reason": reason, "failed": failed, "share": share}


def feature_control(generate_fn: GenerateFn, regressor: Regressor, backgrounds: np.ndarray, masks: np.ndarray,
                    base_f: np.ndarray, feature_index: int, levels: Sequence[float] = (1, 2, 3, 4, 5),
                    mode: str = "inject", seed: int = 0, groups: np.ndarray | None = None,
                    train_levels: Iterable[float] | None = None) -> dict[str, object]:
    """Ask the generator for each rating level on fixed inputs and read the rating back with ``regressor``.

    Args:
        generate_fn: ``(x_in, m, f) -> (N, T, S, S)`` runs the generator on inputs `(N, T, S, S)`,
            masks `(N, T, S, S)` and features `(N, F)` in [0, 1].
        regressor: from :func:`fit_feature_regressor`, for the feature being varied.
        backgrounds: `(N, T, S, S)` fixed inputs: ``y`` (injection) or ``x'`` (reconstruction).
        masks: `(N, T, S, S)` the nodule masks to fill.
        base_f: `(N, F)` features in [0, 1]; column ``feature_index`` is replaced by each level,
            mapped to [0, 1] by :func:`medgan_core.data.nodule_sequences.scale_features`.
        feature_index: which feature is varied.
        levels: ratings (1..5) to request, at least two.
        mode: ``"inject"`` or ``"reconstruct"`` (only labels the result).
        seed: the seed of the bootstrap.
        groups: `(N,)` optional patient of each input; the intervals then resample patients
            (each with all its inputs), not inputs.
        train_levels: optional ratings seen in training; requested levels outside them are
            listed in ``outside_training`` and left out of ``effect``.

    Returns:
        ``mode``, ``rho``, ``ci`` (see :func:`spearman_ci`: direction), ``mae`` (mean absolute
        difference between read-back and requested ratings: magnitude), ``per_level`` (mean
        read-back rating per level), ``table`` (a frame of ``input, requested, measured``, plus
        ``patient`` with ``groups``), ``effect`` (:func:`control_effect` of the table, over
        patients with ``groups``, else inputs; over the requested levels inside
        ``train_levels`` when at least two are, else all) and, with ``train_levels``,
        ``outside_training`` (sorted requested levels not in it).
    """
    if mode not in ("inject", "reconstruct"):
        raise ValueError(f"mode must be 'inject' or 'reconstruct', got {mode!r}.")
    backgrounds, masks, base_f = np.asarray(backgrounds), np.asarray(masks), np.asarray(base_f)
    if backgrounds.ndim != 4 or masks.shape != backgrounds.shape:
        raise ValueError(f"backgrounds and masks must both be (N, T, S, S); got {backgrounds.shape} and {masks.shape}.")
    if base_f.ndim != 2 or len(base_f) != len(backgrounds) or not 0 <= feature_index < base_f.shape[1]:
        raise ValueError(f"base_f must be (N={len(backgrounds)}, F) with feature_index in 0..F-1; got shape "
                         f"{base_f.shape} and feature_index {feature_index}.")
    if len(set(levels)) < 2:
        raise ValueError(f"ask for at least two distinct levels, got {list(levels)}.")
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != len(backgrounds):
            raise ValueError(f"groups has {len(groups)} labels for {len(backgrounds)} inputs; "
                             "pass the patient of each input.")
    if train_levels is not None:
        train_levels = {float(v) for v in train_levels}
        if not train_levels:
            raise ValueError("train_levels is empty; pass the ratings seen in training (or None).")
    t_mid = backgrounds.shape[1] // 2
    rows = []
    for level in levels:
        f = np.array(base_f, dtype=np.float32, copy=True)
        f[:, feature_index] = scale_features(level)
        out = np.asarray(generate_fn(backgrounds, masks, f))
        if out.shape != backgrounds.shape:
            raise ValueError(f"generate_fn returned shape {out.shape}; it must return (N, T, S, S) = "
                             f"{backgrounds.shape} (squeeze a channel axis first).")
        measured = regressor.predict(nodule_descriptors(out[:, t_mid], masks[:, t_mid].astype(bool)))
        rows += [{"input": i, "requested": float(level), "measured": float(v)} for i, v in enumerate(measured)]
    table = pd.DataFrame(rows)
    if groups is not None:
        table["patient"] = groups[table["input"].to_numpy()]
    rho, lo, hi = spearman_ci(table["requested"], table["measured"], table["input"], seed=seed,
                              clusters=None if groups is None else table["patient"])
    mae = float((table["measured"] - table["requested"]).abs().mean())
    per_level = table.groupby("requested")["measured"].mean().to_dict()
    requested = sorted({float(v) for v in levels})
    inside = requested if train_levels is None else [v for v in requested if v in train_levels]
    res = {"mode": mode, "rho": rho, "ci": (lo, hi), "mae": mae, "per_level": per_level, "table": table,
           "effect": control_effect(table, levels=inside if len(inside) >= 2 else requested, seed=seed)}
    if train_levels is not None:
        res["outside_training"] = [v for v in requested if v not in train_levels]
    return res
