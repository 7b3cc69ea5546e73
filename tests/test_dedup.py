"""Exact-duplicate groups and removal (pixel hashing and index keys)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medgan_core.data.dedup import drop_exact_duplicates, exact_duplicate_groups
from medgan_core.data.errors import LabelMismatchError


def _images() -> np.ndarray:
    """Five 4x4 images: a, b, a, c, b (c differs from a in one pixel)."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, size=(2, 4, 4), dtype=np.uint8)
    c = a.copy()
    c[3, 3] ^= 1
    return np.stack([a, b, a, c, b])  # `(5, 4, 4)`


def test_groups_follow_first_appearance():
    groups = exact_duplicate_groups(_images())
    assert groups.tolist() == [0, 1, 0, 2, 1] and groups.dtype == np.int64


def test_groups_work_for_colour_and_float_images():
    x = np.zeros((3, 2, 2, 3), dtype=np.float32)
    x[1, 0, 0, 2] = 0.5
    assert exact_duplicate_groups(x).tolist() == [0, 1, 0]


def test_drop_from_images_keeps_the_first_copy():
    kept, n_dropped = drop_exact_duplicates(_images())
    assert kept.tolist() == [0, 1, 3] and n_dropped == 2


def test_drop_from_index_key_missing_means_unique():
    index = pd.DataFrame({"key": [np.nan, 5.0, 5.0, np.nan, 7.0, 5.0]}, index=[10, 11, 12, 13, 14, 15])
    kept, n_dropped = drop_exact_duplicates(index, key="key")
    assert kept.tolist() == [0, 1, 3, 4] and n_dropped == 2  # positions, not index labels


def test_conflicting_labels_raise():
    with pytest.raises(LabelMismatchError, match=r"different labels \(rows \[\[0, 2\]\]"):
        drop_exact_duplicates(_images(), labels=["x", "y", "z", "x", "y"])
    kept, _ = drop_exact_duplicates(_images(), labels=["x", "y", "x", "x", "y"])
    assert kept.tolist() == [0, 1, 3]
    with pytest.raises(LabelMismatchError, match="4 labels for 5 images"):
        drop_exact_duplicates(_images(), labels=[0, 1, 0, 1])


def test_bad_inputs_say_how_to_fix():
    with pytest.raises(ValueError, match="one image per row"):
        exact_duplicate_groups(np.arange(5))
    with pytest.raises(ValueError, match="key="):
        drop_exact_duplicates(pd.DataFrame({"sha256": ["a", "a"]}))
