"""Dataset summaries for the data tour: what is there, how imbalanced, how the splits look.

Small helpers over the dataset readers of the registry, so that the tour notebook stays a
sequence of short calls.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from medgan_core.data.errors import DataError
from medgan_core.data.imbalance import class_counts, imbalance_ratio
from medgan_core.data.paths import resolve_data_dir
from medgan_core.data.registry import DATASETS


def overview(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per dataset: found, samples, classes, per-class counts, imbalance ratio, splits.

    Counts are after the readers' cleaning (exact duplicates and unlabelled images removed).

    Args:
        data_dir: the data folder.
    """
    root = resolve_data_dir(data_dir)
    rows = []
    for info in DATASETS:
        row = {"dataset": info.name, "folder": info.folder, "title": info.title, "serves": info.serves}
        try:
            index = info.reader().load_index(data_dir=root)
        except DataError as err:
            rows.append({**row, "found": False, "problem": str(err).splitlines()[0]})
            continue
        counts = class_counts(index["label"])
        rows.append({**row, "found": True, "samples": len(index), "classes": len(counts),
                     "counts": ", ".join(f"{k} {v}" for k, v in counts.items()),
                     "imbalance_ratio": round(imbalance_ratio(index["label"]), 2),
                     "splits": ", ".join(f"{k} {v}" for k, v in index["split"].value_counts().items())})
    return pd.DataFrame(rows).set_index("dataset")


def split_table(index: pd.DataFrame, split_col: str = "split", label_col: str = "label") -> pd.DataFrame:
    """Counts per class (rows) and split (columns) with totals and each split's share.

    Args:
        index: one row per sample.
        split_col: the column naming the split.
        label_col: the column naming the class.
    """
    table = pd.crosstab(index[label_col], index[split_col], margins=True, margins_name="total")
    order = [s for s in ("train", "val", "test", "all") if s in table.columns]
    rest = [c for c in table.columns if c not in order and c != "total"]
    return table[order + rest + ["total"]]


def per_class_sample(labels: pd.Series | np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Up to ``n`` random positions per class, for sample grids.

    Args:
        labels: one class name per sample.
        n: samples per class.
        seed: random seed.
    """
    labels = pd.Series(np.asarray(labels))
    rng = np.random.default_rng(seed)
    out = {}
    for cls in sorted(labels.unique(), key=str):
        pos = np.flatnonzero(labels.to_numpy() == cls)
        out[str(cls)] = np.sort(rng.choice(pos, size=min(n, len(pos)), replace=False))
    return out


def groups_disjoint(index: pd.DataFrame, group_col: str, split_col: str = "split") -> bool:
    """True when no group (patient, source image) has samples in two splits.

    Args:
        index: one row per sample.
        group_col: the grouping column.
        split_col: the split column.
    """
    return bool((index.groupby(group_col)[split_col].nunique() <= 1).all())
