"""SQ-AGGAN inputs: nodule slice sequences ``x``, masks ``M_n``, nodule-removed ``x'``, backgrounds ``y``.

From slices with nodule masks (the LIDC npz via :func:`medgan_core.data.lidc.load_slices`, or a
DICOM CT series plus a nodule mask volume via :func:`slices_from_ct`) this module builds:

- :func:`slice_windows`: for every nodule slice, the indices of ``T`` consecutive slices of the
  same nodule centred on it (``slice_no - 1, slice_no, slice_no + 1`` for ``T = 3``). A nodule
  seen on fewer slices is padded by **repeating its edge slice** (counted in ``n_padded``).
- :func:`build_nodule_sequences`: square crops around the nodule of the middle slice (with a
  random shift, several per slice), giving ``x`` `(N, T, S, S)` in [-1, 1], ``M_n`` (bool), the
  removal region (``M_n`` dilated by ``dilate_px``) and ``x'`` = ``x`` with that region filled
  by the median of the lung tissue ring around it, and the feature vectors ``f`` `(N, F)`.
- :func:`build_background_sequences`: nodule-free crops ``y`` `(M, T, S, S)` of lung tissue at
  least ``margin_px`` away from every nodule mask of the ``T`` slices and mostly inside the lung.

Intensities map to [-1, 1] by clipping to ``intensity_range`` (:data:`LIDC_RANGE` for the npz:
its normalised units, about the 0.5th-99.5th percentile of lung tissue; :data:`CT_RANGE` in HU for DICOM).
In the npz everything outside the lungs is the constant 0 (:func:`lung_masks`).

Public API: :data:`LIDC_RANGE`, :data:`CT_RANGE`, :class:`NoduleSequences`, :func:`lung_masks`,
:func:`keep_outside_lung`, :func:`slice_windows`, :func:`scale_features`, :func:`build_nodule_sequences`,
:func:`build_background_sequences`, :func:`slices_from_ct`,
:func:`load_ct_nodules`, :func:`make_batch`, :class:`NoduleBatches` (SQ-AGGAN's training batches, drawn by step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from medgan_core.data.augment import augment_batch
from medgan_core.data.dicom import CTVolume, read_ct_series
from medgan_core.data.errors import DataFileError, LabelMismatchError, MissingDatasetError
from medgan_core.data.lidc import LidcSlices
from medgan_core.train.loop import step_batch_indices

LIDC_RANGE = (-0.3, 2.0)  # npz units -> [-1, 1]; lung tissue: 1st-99th percentile -0.21 .. 1.73
CT_RANGE = (-1000.0, 400.0)  # HU -> [-1, 1] for DICOM input (air .. soft tissue)
FEATURE_SCALE = (1.0, 5.0)  # LIDC ratings 1..5 -> f in [0, 1]


@dataclass
class NoduleSequences:
    """Crops of nodule slice sequences and what SQ-AGGAN needs beside them.

    Args:
        x: `(N, T, S, S)` float32 in [-1, 1], the real sequences.
        x_removed: `(N, T, S, S)` ``x`` with the removal region filled (``x'``).
        m: `(N, T, S, S)` bool nodule masks ``M_n``.
        removal: `(N, T, S, S)` bool removal region (``M_n`` dilated).
        f: `(N, F)` float32 features scaled to [0, 1].
        meta: one row per crop: the raw feature columns, then ``patient_id, nodule_id,
            slice_index, malignancy`` (the slice's own, int), ``padded, top, left``.
    """

    x: np.ndarray
    x_removed: np.ndarray
    m: np.ndarray
    removal: np.ndarray
    f: np.ndarray
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.meta)

    def subset(self, rows: np.ndarray) -> "NoduleSequences":
        """The crops at positions ``rows``.

        Args:
            rows: integer positions or a boolean mask over the crops.
        """
        rows = np.asarray(rows)
        return NoduleSequences(self.x[rows], self.x_removed[rows], self.m[rows], self.removal[rows],
                               self.f[rows], self.meta.iloc[rows].reset_index(drop=True))


def lung_masks(images: np.ndarray, outside_value: float = 0.0) -> np.ndarray:
    """Lung region of lung-segmented slices: every pixel that is not the constant outside value.

    Args:
        images: `(N, H, W)` lung-segmented slices (LIDC npz: outside the lungs is exactly 0).
        outside_value: the constant written outside the lungs.

    Returns:
        `(N, H, W)` bool.
    """
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got {images.shape}.")
    return images != np.float32(outside_value)


def keep_outside_lung(out: np.ndarray, outline_from: np.ndarray, intensity_range: tuple[float, float] = LIDC_RANGE,
                      outside_value: float = 0.0) -> np.ndarray:
    """Give generated sequences the outside-the-lungs region of real crops back, exactly as the data has it.

    The staged slices are lung-segmented: everything outside the lungs is one constant (0 in npz
    units), which a generator's tanh output never hits exactly. Left as generated, that region
    marks every real crop (flat cut-outs, stray pixels of exactly the constant) and a reader or a
    classifier can tell real from synthetic by it alone. The generator is asked about the lungs
    only, so every output (and every yardstick) is prepared like the real crops: where
    ``outline_from`` holds the constant, the constant is written.

    Args:
        out: `(N, T, S, S)` generated sequences in [-1, 1].
        outline_from: `(N, T, S, S)` the real crops whose lung outline applies: the original ``x``
            for a reconstruction (the slice's lung segmentation does not depend on the nodule), the
            background ``y`` for an injection.
        intensity_range: the range :func:`normalise` mapped to [-1, 1].
        outside_value: the constant outside the lungs before normalising.

    Returns:
        A float32 copy of ``out`` with the outside region of ``outline_from``.
    """
    out, outline_from = np.asarray(out, np.float32), np.asarray(outline_from, np.float32)
    if out.shape != outline_from.shape:
        raise ValueError(f"out {out.shape} and outline_from {outline_from.shape} must have one shape: pass the crops "
                         "each output was made from (x for a reconstruction, y for an injection).")
    const = normalise(np.float32([outside_value]), intensity_range)[0]
    return np.where(outline_from == const, const, out).astype(np.float32)


def normalise(images: np.ndarray, intensity_range: tuple[float, float]) -> np.ndarray:
    """Clip to ``intensity_range`` and map it linearly to [-1, 1] (float32).

    Args:
        images: any shape.
        intensity_range: ``(low, high)`` mapped to -1 and 1.
    """
    low, high = intensity_range
    if not high > low:
        raise ValueError(f"intensity_range must be (low, high) with high > low; got {intensity_range}.")
    out = (np.clip(images, low, high) - low) / (high - low) * 2.0 - 1.0
    return out.astype(np.float32)


def slice_windows(meta: pd.DataFrame, seq_len: int = 3) -> tuple[np.ndarray, int]:
    """For every slice, the indices of ``seq_len`` consecutive slices of its nodule, centred on it.

    Neighbours are the slices of the same ``nodule_id`` at ``slice_no +- k``; where one is
    missing (the nodule's first or last slice, or a nodule on fewer slices) the nearest present
    slice towards the centre is repeated.

    Args:
        meta: per-slice rows with ``nodule_id`` and ``slice_no`` (row ``i`` = array index ``i``).
        seq_len: odd number of slices per sequence.

    Returns:
        ``(windows (N, seq_len) int64, n_padded)``: ``n_padded`` counts windows with a repeat.
    """
    if seq_len < 1 or seq_len % 2 != 1:
        raise ValueError(f"seq_len must be odd and >= 1 (a middle slice is needed), got {seq_len}.")
    missing = {"nodule_id", "slice_no"} - set(meta.columns)
    if missing:
        raise ValueError(f"meta lacks the columns {sorted(missing)}.")
    lookup = {(n, int(s)): i for i, (n, s) in enumerate(zip(meta["nodule_id"], meta["slice_no"]))}
    if len(lookup) != len(meta):
        raise LabelMismatchError("two slices share one (nodule_id, slice_no); every slice of a nodule needs its "
                                 "own number.")
    half = seq_len // 2
    windows = np.empty((len(meta), seq_len), dtype=np.int64)
    n_padded = 0
    for i, (nod, s) in enumerate(zip(meta["nodule_id"], meta["slice_no"])):
        s = int(s)
        windows[i, half] = i
        padded = False
        for direction in (-1, 1):
            prev = i
            for k in range(1, half + 1):
                j = lookup.get((nod, s + direction * k))
                if j is None:
                    padded = True
                    j = prev
                windows[i, half + direction * k] = j
                prev = j
        n_padded += padded
    return windows, n_padded


def scale_features(values: np.ndarray, scale: tuple[float, float] = FEATURE_SCALE) -> np.ndarray:
    """Map ratings on ``scale`` (1..5) linearly to [0, 1] (float32).

    Args:
        values: ratings, any shape.
        scale: ``(lowest, highest)`` rating.
    """
    low, high = scale
    return ((np.asarray(values, dtype=np.float64) - low) / (high - low)).astype(np.float32)


def _crop(stack: np.ndarray, top: int, left: int, size: int, fill: float) -> np.ndarray:
    """Crop `(T, H, W)` at ``(top, left)``, padding with ``fill`` where the crop leaves the image."""
    t, h, w = stack.shape
    out = np.full((t, size, size), fill, dtype=stack.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, h), min(left + size, w)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top:y1 - top, x0 - left:x1 - left] = stack[:, y0:y1, x0:x1]
    return out


def _remove(x: np.ndarray, removal: np.ndarray, lung: np.ndarray, ring_px: int) -> np.ndarray:
    """Fill each slice's removal region with the median of the lung ring around it.

    Args:
        x: `(T, S, S)` crop in [-1, 1].
        removal: `(T, S, S)` bool region to erase.
        lung: `(T, S, S)` bool lung region (ring pixels are taken inside it).
        ring_px: width of the ring.
    """
    out = x.copy()
    for t in range(x.shape[0]):
        if not removal[t].any():
            continue
        ring = ndimage.binary_dilation(removal[t], iterations=ring_px) & ~removal[t]
        pick = ring & lung[t]
        pick = pick if pick.any() else ring
        out[t][removal[t]] = np.median(x[t][pick]) if pick.any() else -1.0
    return out


def build_nodule_sequences(slices: LidcSlices, features: pd.DataFrame, feature_columns: Sequence[str],
                           seq_len: int = 3, crop: int = 32, crops_per_slice: int = 1, jitter_px: int = 0,
                           dilate_px: int = 2, intensity_range: tuple[float, float] = LIDC_RANGE,
                           lung: np.ndarray | None = None, seed: int = 0) -> tuple[NoduleSequences, int]:
    """Crop ``x``, ``M_n``, the removal region and ``x'`` around every nodule slice.

    Each crop is centred on the middle slice's mask centre (bounding-box centre), shifted by up
    to ``jitter_px`` in each direction (uniform, seeded); the same window is used for all ``T``
    slices.

    Args:
        slices: the slices, masks and per-slice meta (``patient_id``, ``nodule_id``, ``slice_no``).
        features: one row per ``nodule_id`` (e.g. :func:`medgan_core.data.lidc.nodule_features`)
            holding ``feature_columns`` as ratings on 1..5.
        feature_columns: the columns of ``features`` that make ``f``, in order.
        seq_len: slices per sequence (odd).
        crop: side of the square crops in px.
        crops_per_slice: crops per nodule slice (with different shifts).
        jitter_px: largest shift of the crop centre.
        dilate_px: the removal region is ``M_n`` dilated by this many px.
        intensity_range: mapped to [-1, 1] (:data:`LIDC_RANGE`, or :data:`CT_RANGE` for HU).
        lung: `(N, H, W)` bool lung region; ``None``: :func:`lung_masks` of the images.
        seed: the seed of the shifts.

    Returns:
        ``(NoduleSequences, n_padded)``, ``n_padded`` = slices whose window repeats an edge slice.
    """
    if crop < 8 or crops_per_slice < 1 or jitter_px < 0 or dilate_px < 0:
        raise ValueError(f"need crop >= 8, crops_per_slice >= 1, jitter_px >= 0, dilate_px >= 0; got {crop}, "
                         f"{crops_per_slice}, {jitter_px}, {dilate_px}.")
    feats = features.set_index("nodule_id") if "nodule_id" in features.columns else features
    missing_cols = [c for c in feature_columns if c not in feats.columns]
    if missing_cols:
        raise ValueError(f"features lacks the columns {missing_cols}; it has {sorted(feats.columns)}.")
    missing = sorted(set(slices.meta["nodule_id"]) - set(feats.index))
    if missing:
        raise LabelMismatchError(f"no feature row for the nodules {missing[:5]}; give one row per nodule_id.")
    lung = lung_masks(slices.images) if lung is None else lung
    windows, n_padded = slice_windows(slices.meta, seq_len)
    rng = np.random.default_rng(seed)
    xs, ms, rems, xrs, rows = [], [], [], [], []
    for i, win in enumerate(windows):
        mask_mid = slices.masks[i]
        if not mask_mid.any():
            raise DataFileError(f"slice {slices.meta['slice_id'].iloc[i]} has an empty nodule mask; "
                                "every slice of the set must show its nodule.")
        ys, xs_ = np.nonzero(mask_mid)
        cy, cx = (ys.min() + ys.max()) // 2, (xs_.min() + xs_.max()) // 2
        img = normalise(slices.images[win], intensity_range)
        msk, lng = slices.masks[win], lung[win]
        # a repeated edge slice of a padded window shows the same mask, as it should
        for _ in range(crops_per_slice):
            dy, dx = rng.integers(-jitter_px, jitter_px + 1, size=2)
            top, left = int(cy + dy - crop // 2), int(cx + dx - crop // 2)
            x = _crop(img, top, left, crop, -1.0)
            m = _crop(msk, top, left, crop, False)
            rem = np.stack([ndimage.binary_dilation(mt, iterations=dilate_px) if dilate_px else mt for mt in m])
            xs.append(x)
            ms.append(m)
            rems.append(rem)
            xrs.append(_remove(x, rem, _crop(lng, top, left, crop, False), ring_px=max(2, dilate_px)))
            row = slices.meta.iloc[i]
            rows.append({**{c: float(feats.loc[row["nodule_id"], c]) for c in feature_columns},
                         "patient_id": row["patient_id"], "nodule_id": row["nodule_id"], "slice_index": i,
                         "malignancy": int(row["malignancy"]), "padded": len(np.unique(win)) < seq_len,
                         "top": top, "left": left})
    meta = pd.DataFrame(rows)
    f = scale_features(meta[list(feature_columns)].to_numpy())
    return NoduleSequences(np.stack(xs), np.stack(xrs), np.stack(ms), np.stack(rems), f, meta), n_padded


def build_background_sequences(slices: LidcSlices, n_per_slice: int = 4, seq_len: int = 3, crop: int = 32,
                               margin_px: int = 8, min_lung_fraction: float = 0.9,
                               intensity_range: tuple[float, float] = LIDC_RANGE, lung: np.ndarray | None = None,
                               rows: np.ndarray | None = None, seed: int = 0,
                               max_tries: int = 200) -> tuple[np.ndarray, pd.DataFrame]:
    """Nodule-free lung crops ``y``: up to ``n_per_slice`` per slice, away from every nodule mask.

    A candidate window (uniform over the slice, seeded) is kept if, on all ``T`` slices of the
    window, at least ``min_lung_fraction`` of it is lung and no nodule mask dilated by
    ``margin_px`` touches it. Slices where no candidate fits within ``max_tries`` give fewer crops.
    (The staged slices only mark the nodule of their own row: another nodule on the same
    physical slice would not be seen.)

    Args:
        slices: slices, masks and meta.
        n_per_slice: crops wanted per slice.
        seq_len: slices per sequence (odd); the same neighbours as :func:`slice_windows`.
        crop: side in px.
        margin_px: distance kept from every nodule mask.
        min_lung_fraction: share of the crop that must be lung, on every slice.
        intensity_range: mapped to [-1, 1].
        lung: `(N, H, W)` bool lung region; ``None``: :func:`lung_masks` of the images.
        rows: slice positions to crop from (``None``: all).
        seed: the seed of the positions.
        max_tries: candidates drawn per slice.

    Returns:
        ``(y (M, T, S, S) float32 in [-1, 1], meta)`` with ``patient_id, slice_index, top, left``.
    """
    if not 0 < min_lung_fraction <= 1 or n_per_slice < 1 or margin_px < 0:
        raise ValueError(f"need 0 < min_lung_fraction <= 1, n_per_slice >= 1, margin_px >= 0; got "
                         f"{min_lung_fraction}, {n_per_slice}, {margin_px}.")
    lung = lung_masks(slices.images) if lung is None else lung
    windows, _ = slice_windows(slices.meta, seq_len)
    rng = np.random.default_rng(seed)
    h, w = slices.images.shape[1:]
    if crop > min(h, w):
        raise ValueError(f"crop {crop} px is larger than the slices ({h}x{w}).")
    ys, metas = [], []
    for i in (range(len(windows)) if rows is None else rows):
        win = windows[i]
        near = ndimage.binary_dilation(slices.masks[win].any(axis=0), iterations=margin_px) if margin_px else \
            slices.masks[win].any(axis=0)
        lung_all = lung[win].all(axis=0)
        # integral images give each window's lung and nodule pixel counts in O(1)
        lung_int = np.pad(lung_all.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        near_int = np.pad(near.cumsum(0).cumsum(1), ((1, 0), (1, 0)))

        def count(integral: np.ndarray, t: int, l: int) -> int:
            return int(integral[t + crop, l + crop] - integral[t, l + crop] - integral[t + crop, l] + integral[t, l])

        got = 0
        for _ in range(max_tries):
            top, left = (int(v) for v in rng.integers(0, [h - crop + 1, w - crop + 1]))
            if count(near_int, top, left) == 0 and count(lung_int, top, left) >= min_lung_fraction * crop * crop:
                ys.append(normalise(slices.images[win, top:top + crop, left:left + crop], intensity_range))
                metas.append({"patient_id": slices.meta["patient_id"].iloc[i], "slice_index": int(i),
                              "top": top, "left": left})
                got += 1
                if got == n_per_slice:
                    break
    if not ys:
        raise DataFileError("no background crop fits: lower min_lung_fraction, margin_px or crop.")
    return np.stack(ys), pd.DataFrame(metas)


# --- DICOM CT series + nodule mask volume ------------------------------------------------------

def slices_from_ct(volume: CTVolume, nodule_labels: np.ndarray, patient_id: str,
                   malignancy: Mapping[int, int] | None = None, lung: np.ndarray | None = None,
                   lung_threshold_hu: float = -400.0) -> tuple[LidcSlices, np.ndarray]:
    """Turn a CT volume and a nodule mask volume into the per-slice form of the LIDC npz.

    Every axial slice that shows a nodule becomes one row (a slice with two nodules gives two
    rows, one per nodule mask). Images stay in HU: build the sequences with
    ``intensity_range=CT_RANGE``.

    Args:
        volume: from :func:`medgan_core.data.dicom.read_ct_series`.
        nodule_labels: `(Z, Y, X)` aligned with ``volume.hu``: bool (nodules are then its 3D
            connected components, numbered from 0) or integers (0 = none, ``k`` = nodule ``k - 1``).
        patient_id: written into ``meta``.
        malignancy: nodule number -> rating 1..5 (``None``: 3 for every nodule).
        lung: `(Z, Y, X)` bool lung region; ``None``: ``HU < lung_threshold_hu``, closed in-plane
            (a crude stand-in that also counts the air around the body: pass a lung
            segmentation for real scans, or background crops may fall outside the body).
        lung_threshold_hu: the threshold used when ``lung`` is ``None``.

    Returns:
        ``(LidcSlices with images in HU, lung (N, Y, X) bool)``.
    """
    hu = volume.hu
    labels = np.asarray(nodule_labels)
    if labels.shape != hu.shape:
        raise LabelMismatchError(f"the nodule mask volume is {labels.shape} but the CT volume is {hu.shape}; "
                                 "they must be voxel-aligned (same Z, Y, X).")
    if labels.dtype == bool:
        labels, _ = ndimage.label(labels)
    elif not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("nodule_labels must be bool or non-negative integers (0 = no nodule).")
    ids = [int(k) for k in np.unique(labels) if k != 0]
    if not ids:
        raise DataFileError("the nodule mask volume is empty: no nodule to crop.")
    if lung is None:
        lung = ndimage.binary_closing(hu < lung_threshold_hu, structure=np.ones((1, 3, 3), bool), iterations=2)
    elif lung.shape != hu.shape:
        raise LabelMismatchError(f"lung {lung.shape} and the CT volume {hu.shape} must have one shape.")
    images, masks, lungs, rows = [], [], [], []
    for nod_no, k in enumerate(ids):
        rating = 3 if malignancy is None else int(malignancy.get(nod_no, 0))
        if not 1 <= rating <= 5:
            raise ValueError(f"malignancy of nodule {nod_no} must be 1..5; got {rating}.")
        zs = np.flatnonzero((labels == k).any(axis=(1, 2)))
        for z_no, z in enumerate(zs):
            m = labels[z] == k
            images.append(hu[z])
            masks.append(m)
            lungs.append(lung[z])
            rows.append({"slice_id": f"{patient_id}_N{nod_no:03d}_slice{z_no:03d}", "patient_id": patient_id,
                         "nodule_no": nod_no, "nodule_id": f"{patient_id}_nodule{nod_no}", "slice_no": z_no,
                         "malignancy": rating, "is_cancer": (rating > 3) if rating != 3 else pd.NA,
                         "mask_area_px": int(m.sum())})
    meta = pd.DataFrame(rows)
    meta["is_cancer"] = meta["is_cancer"].astype("boolean")
    return LidcSlices(np.stack(images).astype(np.float32), np.stack(masks), meta), np.stack(lungs)


def load_ct_nodules(series_folder: str | os.PathLike, mask_file: str | os.PathLike, patient_id: str,
                    malignancy: Mapping[int, int] | None = None) -> tuple[LidcSlices, np.ndarray]:
    """Read a DICOM CT series and its nodule mask volume (``.npy``, or ``.npz`` key ``mask``).

    Args:
        series_folder: folder of one CT series (see :func:`read_ct_series`).
        mask_file: `(Z, Y, X)` mask volume in the series' slice order (sorted along the normal).
        patient_id: written into ``meta``.
        malignancy: nodule number -> rating 1..5 (``None``: 3).

    Returns:
        As :func:`slices_from_ct`.
    """
    mask_file = Path(mask_file)
    if not mask_file.is_file():
        raise MissingDatasetError(f"nodule mask volume not found: {mask_file} (a .npy, or .npz with key 'mask').")
    try:
        if mask_file.suffix == ".npz":
            with np.load(mask_file, allow_pickle=False) as npz:
                if "mask" not in npz.files:
                    raise DataFileError(f"{mask_file} has no array 'mask'; it has {sorted(npz.files)}.")
                labels = npz["mask"]
        else:
            labels = np.load(mask_file, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataFileError(f"cannot read the mask volume {mask_file}: {err}") from err
    return slices_from_ct(read_ct_series(series_folder), labels, patient_id, malignancy)


# --- training batches --------------------------------------------------------------------------

def sequence_tensor(a: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """`(N, T, S, S)` array -> `(N, T, 1, S, S)` float32 tensor on ``device`` (the sequences' one channel added).

    Args:
        a: slice sequences (images, masks or backgrounds).
        device: where the tensor goes.
    """
    return torch.as_tensor(np.asarray(a, dtype=np.float32), device=device).unsqueeze(2)


def make_batch(seqs: NoduleSequences, rows: np.ndarray, backgrounds: np.ndarray, bg_rows: np.ndarray,
               device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A training batch ``{x, x_removed, m, y, f}`` (sequences `(B, T, 1, S, S)`, ``f`` `(B, F)`).

    Args:
        seqs: the nodule sequences.
        rows: which nodule crops.
        backgrounds: `(M, T, S, S)` background crops ``y``.
        bg_rows: which background crops (same count as ``rows``).
        device: where the tensors go.
        generator: draws one flip/rotation per item (applied alike to ``x``, ``x'``, ``M_n``, and
            independently to ``y``); ``None``: no augmentation.
    """
    rows, bg_rows = np.asarray(rows), np.asarray(bg_rows)
    if len(rows) != len(bg_rows):
        raise ValueError(f"rows ({len(rows)}) and bg_rows ({len(bg_rows)}) must have one length.")
    x, xr, m = sequence_tensor(seqs.x[rows]), sequence_tensor(seqs.x_removed[rows]), sequence_tensor(seqs.m[rows])
    y = sequence_tensor(backgrounds[bg_rows])
    if generator is not None:
        x, xr, m = augment_batch([x, xr, m], generator)
        (y,) = augment_batch([y], generator)
    f = torch.as_tensor(seqs.f[rows])
    return {k: v.to(device) for k, v in dict(x=x, x_removed=xr, m=m, y=y, f=f).items()}


class NoduleBatches:
    """SQ-AGGAN's training batches drawn by step, so a resumed run sees the same batches.

    Step ``s`` uses the nodule crops ``step_batch_indices(s, N, B, seed)``, the backgrounds
    ``step_batch_indices(s, M, B, seed + 1)`` and one random flip/rotation per item from
    ``torch.Generator().manual_seed(seed * 1_000_003 + s)`` (the same for ``x``, ``x'`` and
    ``M_n``; drawn independently for ``y``).

    Args:
        seqs: the training nodule sequences.
        backgrounds: `(M, T, S, S)` training background crops.
        batch_size: sequences per batch (at most the smaller of ``N`` and ``M``).
        seed: seed of the batch order and the augmentation.
        device: where the batches are returned.
    """

    def __init__(self, seqs: NoduleSequences, backgrounds: np.ndarray, batch_size: int = 16, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        backgrounds = np.asarray(backgrounds)
        if backgrounds.ndim != 4 or backgrounds.shape[1:] != seqs.x.shape[1:]:
            raise ValueError(f"backgrounds must be (M, T, S, S) = (M, {', '.join(map(str, seqs.x.shape[1:]))}) like "
                             f"the nodule sequences, got {backgrounds.shape}.")
        if not 1 <= int(batch_size) <= min(len(seqs), len(backgrounds)):
            raise ValueError(f"batch_size {batch_size} must be in [1, {min(len(seqs), len(backgrounds))}] "
                             f"({len(seqs)} nodule and {len(backgrounds)} background crops); lower it.")
        self.seqs, self.backgrounds = seqs, backgrounds
        self.batch_size, self.seed, self.device = int(batch_size), int(seed), torch.device(device)

    def __len__(self) -> int:
        return len(self.seqs)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """The augmented batch of ``step``: ``{x, x_removed, m, y}`` `(B, T, 1, S, S)` and ``f`` `(B, F)`.

        Args:
            step: the 0-based training step.
        """
        idx = step_batch_indices(step, len(self.seqs), self.batch_size, self.seed).numpy()
        bg = step_batch_indices(step, len(self.backgrounds), self.batch_size, self.seed + 1).numpy()
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(step))
        return make_batch(self.seqs, idx, self.backgrounds, bg, self.device, gen)

    def fixed(self, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        """Fixed examples for snapshots, not augmented: crops ``rows``, background ``k`` with the ``k``-th row.

        Args:
            rows: which nodule crops.
        """
        rows = np.asarray(rows)
        return make_batch(self.seqs, rows, self.backgrounds, np.arange(len(rows)) % len(self.backgrounds), self.device)
