"""Sequence metrics of generated CT nodule sequences: background preservation and inter-slice continuity.

Both compare arrays of sequences `(N, T, S, S)` (``T`` neighbouring slices of ``S x S`` pixels,
intensities in [-1, 1]) over a boolean region of the same shape (e.g. the nodule removal region).

- :func:`background_error`: how much a generator changed what it should have left alone: per
  sample, the mean absolute error and the PSNR between output and input *outside* the region,

      L1 = mean_{p not in R} |out(p) - ref(p)|,   PSNR = 10 log10(data_range^2 / MSE)

  (identical backgrounds give L1 = 0 and PSNR = 120 dB, the cap set by MSE >= 1e-12).
- :func:`continuity`: how smoothly a sequence changes from slice to slice *inside* the region,
  ``mean_{t, p in R} |s_{t+1}(p) - s_t(p)|`` with ``R`` the union of the region over slices;
  lower is smoother. Compare generated sequences with real ones on the same region.

Intervals over samples come from :func:`medgan_core.metrics.stats.bootstrap_ci`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["masked_error", "background_error", "continuity"]


def masked_error(out: np.ndarray, ref: np.ndarray, where: np.ndarray, data_range: float = 2.0) -> pd.DataFrame:
    """Per-sample L1 and PSNR between ``out`` and ``ref`` over the pixels where ``where`` is true (all slices).

    ``PSNR = 10 log10(data_range^2 / MSE)`` over those pixels (MSE floored at 1e-12). A sample
    with no such pixel gets L1 = 0 and PSNR at the cap.

    Args:
        out: `(N, T, S, S)` generated sequences.
        ref: `(N, T, S, S)` the sequences they are compared with.
        where: `(N, T, S, S)` bool, the pixels compared.
        data_range: the intensity span (2 for [-1, 1]).

    Returns:
        A frame with columns ``l1`` and ``psnr`` (one row per sample).
    """
    out, ref, where = np.asarray(out), np.asarray(ref), np.asarray(where)
    if not (out.shape == ref.shape == where.shape):
        raise ValueError(f"out, ref and the mask need one shape; got {out.shape}, {ref.shape}, {where.shape}.")
    if data_range <= 0:
        raise ValueError(f"data_range must be positive (2 for images in [-1, 1]), got {data_range}.")
    keep = where.astype(bool)
    n = keep.reshape(len(out), -1).sum(axis=1).clip(min=1)
    diff = (out - ref) * keep
    l1 = np.abs(diff).reshape(len(out), -1).sum(axis=1) / n
    mse = (diff ** 2).reshape(len(out), -1).sum(axis=1) / n
    psnr = 10.0 * np.log10(data_range ** 2 / np.maximum(mse, 1e-12))
    return pd.DataFrame({"l1": l1, "psnr": psnr})


def background_error(out: np.ndarray, ref: np.ndarray, region: np.ndarray, data_range: float = 2.0) -> pd.DataFrame:
    """Per-sample L1 and PSNR between ``out`` and ``ref`` outside ``region`` (:func:`masked_error`).

    Args:
        out: `(N, T, S, S)` generated sequences.
        ref: `(N, T, S, S)` the inputs they should equal outside the region.
        region: `(N, T, S, S)` bool region excluded (the nodule / removal region).
        data_range: the intensity span (2 for [-1, 1]).

    Returns:
        A frame with columns ``l1`` and ``psnr`` (one row per sample).
    """
    return masked_error(out, ref, ~np.asarray(region).astype(bool), data_range)


def continuity(seqs: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring slices inside ``region``, per sequence.

    ``mean_{t, p in R} |s_{t+1}(p) - s_t(p)|`` with ``R`` the union of the region over slices;
    lower is smoother. A sequence with an empty region gets NaN.

    Args:
        seqs: `(N, T, S, S)` sequences, ``T >= 2``.
        region: `(N, T, S, S)` bool (e.g. the nodule removal region).

    Returns:
        `(N,)` float64.
    """
    seqs, region = np.asarray(seqs), np.asarray(region)
    if seqs.shape != region.shape or seqs.ndim != 4 or seqs.shape[1] < 2:
        raise ValueError(f"seqs and region must both be (N, T >= 2, S, S); got {seqs.shape} and {region.shape}.")
    r = region.astype(bool).any(axis=1)  # `(N, S, S)`
    d = np.abs(np.diff(seqs, axis=1)).mean(axis=1)  # `(N, S, S)`
    return np.array([d[i][r[i]].mean() if r[i].any() else np.nan for i in range(len(seqs))], dtype=np.float64)
