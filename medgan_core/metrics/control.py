"""Feature control: does a conditional generator produce the rating it is asked for?

A generator that takes a feature vector ``f`` (e.g. SQ-AGGAN's nodule ratings: malignancy,
spiculation, ...) should draw a nodule whose look follows the requested rating. We check this
without a radiologist:

1. :func:`fit_feature_regressor` fits a ridge regressor from simple intensity and shape
   descriptors of the nodule region (:func:`nodule_descriptors`) to the rating, on real training
   nodules. :func:`regressor_validity` is its ceiling: the Spearman correlation between true and
   predicted ratings on real held-out nodules (near 0: the regressor cannot see the feature even
   on real images, and a read-back score means little).
2. :func:`feature_control` asks the generator for every level (1..5) on fixed inputs, reads the
   rating back with the regressor, and reports the mean within-input Spearman correlation of
   requested vs read-back levels (direction; 1 = always ordered), with a bootstrap interval
   over inputs (:func:`spearman_ci`, via :func:`medgan_core.metrics.stats.bootstrap_ci`), and
   the mean absolute difference between read-back and requested ratings (magnitude).

The generator is passed in as ``generate_fn(x_in, m, f) -> (N, T, S, S)`` so this module does not
depend on a model family; for SQ-AGGAN:
``lambda x, m, f: sqaggan.generate(net_G, x, m, f, device=dev)``.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from medgan_core.data.nodule_sequences import scale_features
from medgan_core.metrics.stats import bootstrap_ci

__all__ = ["nodule_descriptors", "fit_feature_regressor", "regressor_validity", "spearman_ci", "feature_control"]

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
                seed: int = 0) -> tuple[float, float, float]:
    """Mean within-group Spearman correlation of requested vs measured ratings, with a bootstrap CI.

    For each group (one fixed background or erased nodule, asked for every level) the Spearman
    correlation between the requested levels and the ratings read back; groups whose read-back
    ratings are all equal (undefined correlation) count as 0. The mean over groups and its 95%
    percentile-bootstrap interval (resampling groups, :func:`medgan_core.metrics.stats.bootstrap_ci`)
    are returned.

    Args:
        requested: `(N,)` requested ratings.
        measured: `(N,)` ratings read back by the regressor.
        groups: `(N,)` the input each pair was made from.
        n_boot: resamples.
        seed: the seed of the resampling.

    Returns:
        ``(rho, low, high)``.
    """
    requested, measured, groups = (np.asarray(a) for a in (requested, measured, groups))
    if not (len(requested) == len(measured) == len(groups)):
        raise ValueError("requested, measured and groups need one length.")
    rhos = []
    for g in np.unique(groups):
        sel = groups == g
        if len(np.unique(requested[sel])) < 2:
            raise ValueError(f"group {g} has a single requested level; ask for at least two levels per input.")
        if len(np.unique(measured[sel])) < 2:
            rhos.append(0.0)  # constant read-back: no ordering
            continue
        r = spearmanr(requested[sel], measured[sel]).statistic
        rhos.append(float(r) if np.isfinite(r) else 0.0)
    return bootstrap_ci(np.array(rhos), n_boot=n_boot, seed=seed)


def feature_control(generate_fn: GenerateFn, regressor: Regressor, backgrounds: np.ndarray, masks: np.ndarray,
                    base_f: np.ndarray, feature_index: int, levels: Sequence[float] = (1, 2, 3, 4, 5),
                    mode: str = "inject", seed: int = 0) -> dict[str, object]:
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

    Returns:
        ``mode``, ``rho``, ``ci`` (see :func:`spearman_ci`: direction), ``mae`` (mean absolute
        difference between read-back and requested ratings: magnitude), ``per_level`` (mean
        read-back rating per level), ``table`` (a frame of ``input, requested, measured``).
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
    rho, lo, hi = spearman_ci(table["requested"], table["measured"], table["input"], seed=seed)
    mae = float((table["measured"] - table["requested"]).abs().mean())
    per_level = table.groupby("requested")["measured"].mean().to_dict()
    return {"mode": mode, "rho": rho, "ci": (lo, hi), "mae": mae, "per_level": per_level, "table": table}
