"""Exact-duplicate removal: find images whose pixels are identical, keep one of each.

Several chest X-ray sets hold the same picture twice (17 pairs in the COVID-19 Radiography
subset, 2 in the Cohen collection, 30 in Kermany). If the two copies land on both sides of a
train/test split the test score is inflated, so every reader drops them *before* any split.

Two images are duplicates here when their pixel bytes are identical: each image's
``.tobytes()`` is hashed with sha256 and equal digests form one group. Near-duplicates
(re-encoded, shifted, resized) are not found by this; that needs a similarity search.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from medgan_core.data.errors import LabelMismatchError


def exact_duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Give every image a group id; images with identical pixels share one id.

    Args:
        images: `(N, ...)` array, one image per leading index (any dtype and shape).

    Returns:
        `(N,)` int64 group ids, numbered 0, 1, 2, ... in order of first appearance; the number
        of distinct ids is the number of distinct images.
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"images must be `(N, ...)` with one image per row; got shape {images.shape}.")
    first_seen: dict[bytes, int] = {}
    groups = np.empty(len(images), dtype=np.int64)
    for i, img in enumerate(images):
        digest = hashlib.sha256(np.ascontiguousarray(img).tobytes()).digest()
        groups[i] = first_seen.setdefault(digest, len(first_seen))
    return groups


def _groups_from_keys(keys: pd.Series) -> np.ndarray:
    """Group ids from a key column: equal non-missing keys share an id, missing keys are unique.

    Args:
        keys: one key per row (a hash, a duplicate-group number, or NaN for "no duplicate").
    """
    keys = keys.reset_index(drop=True)
    ids = pd.factorize(keys, use_na_sentinel=True)[0].astype(np.int64)
    missing = ids < 0
    ids[missing] = ids.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return ids


def drop_exact_duplicates(
    images_or_index: np.ndarray | pd.DataFrame,
    key: str | None = None,
    labels: np.ndarray | pd.Series | None = None,
) -> tuple[np.ndarray, int]:
    """Keep the first image of each group of exact duplicates.

    Args:
        images_or_index: either an image array `(N, ...)` (duplicates found by hashing the
            pixels) or an index DataFrame with a ``key`` column (rows with equal non-missing
            keys are duplicates, a missing key means "no duplicate").
        key: the DataFrame column holding the duplicate key (for example Kermany's
            ``pixel_duplicate_group`` or a ``sha256`` column); ignored for arrays.
        labels: optional `(N,)` labels; if two identical images carry different labels a
            :class:`LabelMismatchError` is raised instead of silently keeping one of them.

    Returns:
        ``(kept, n_dropped)``: `(M,)` sorted int64 *positions* of the rows to keep (first of
        each group) and the number of rows dropped (``N - M``).
    """
    if isinstance(images_or_index, pd.DataFrame):
        if key is None or key not in images_or_index.columns:
            raise ValueError(f"Pass key= naming the duplicate-key column; the index has the columns "
                             f"{list(images_or_index.columns)}.")
        groups = _groups_from_keys(images_or_index[key])
    else:
        groups = exact_duplicate_groups(images_or_index)
    n = len(groups)
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != n:
            raise LabelMismatchError(f"{len(labels)} labels for {n} images; pass one label per image.")
        per_group = pd.Series(labels).groupby(groups).nunique()
        bad = per_group.index[per_group > 1]
        if len(bad):
            rows = [np.flatnonzero(groups == g).tolist() for g in bad[:5]]
            raise LabelMismatchError(f"{len(bad)} groups of identical images carry different labels "
                                     f"(rows {rows}); fix the labels before removing duplicates.")
    _, first = np.unique(groups, return_index=True)
    kept = np.sort(first).astype(np.int64)
    return kept, n - len(kept)
