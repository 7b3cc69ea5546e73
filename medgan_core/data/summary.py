"""Dataset summaries for the data tour: what is there, how imbalanced, how the splits look.

Small helpers over the dataset readers of the registry, so that the tour notebook stays a
sequence of short calls: the overview and split tables, sample images of the chest X-ray sets,
LIDC nodule crops and intensities, the grouped splits of section 6 and the training-set
imbalance ratios of the verdict. Figures live in :mod:`medgan_core.plots`.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from medgan_core.data import covid19_radiography, ieee8023, kermany, medmnist
from medgan_core.data.errors import DataError
from medgan_core.data.imbalance import class_counts, grouped_kfold, grouped_split, imbalance_ratio
from medgan_core.data.paths import resolve_data_dir
from medgan_core.data.registry import DATASETS


def overview(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per dataset: found, samples, classes, per-class counts, imbalance ratio, splits.

    Counts are after the readers' cleaning (exact duplicates and unlabelled images removed).
    ``same_images_as`` names the dataset whose source images a row re-uses (count them once in a
    total: :func:`distinct_samples`).

    Args:
        data_dir: the data folder.
    """
    root = resolve_data_dir(data_dir)
    rows = []
    for info in DATASETS:
        row = {"dataset": info.name, "folder": info.folder, "title": info.title, "serves": info.serves,
               "same_images_as": info.same_images_as}
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


def distinct_samples(table: pd.DataFrame) -> tuple[int, list[str]]:
    """Samples over the datasets found, counting re-used source images once.

    Args:
        table: :func:`overview`'s table.

    Returns:
        ``(total, names left out because their images are another found dataset's)``.
    """
    found = table[table["found"]]
    twice = [name for name, row in found.iterrows() if row.get("same_images_as") and row["same_images_as"] in found.index]
    return int(found.drop(index=twice)["samples"].sum()), twice


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


CHEST_SETS = ("covid19_radiography", "ieee8023 (Cohen)", "kermany", "pneumoniamnist")  # the tour's names


def chest_indexes(data_dir: str | os.PathLike | None = None) -> dict[str, pd.DataFrame]:
    """The four chest X-ray indexes (readers' defaults: exact duplicates dropped), keyed by :data:`CHEST_SETS`.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    readers = (covid19_radiography, ieee8023, kermany, medmnist)
    return {name: reader.load_index(data_dir) for name, reader in zip(CHEST_SETS, readers)}


def chest_table(indexes: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per chest X-ray set: images, exact duplicates removed, imbalance ratio (one decimal).

    Args:
        indexes: set name -> index with a ``label`` column (:func:`chest_indexes`); the duplicate
            count is the index's ``attrs["n_duplicates_dropped"]`` (0 when absent).
    """
    return pd.DataFrame({
        "images": {name: len(idx) for name, idx in indexes.items()},
        "exact duplicates removed": {name: idx.attrs.get("n_duplicates_dropped", 0) for name, idx in indexes.items()},
        "imbalance ratio": {name: round(imbalance_ratio(idx["label"]), 1) for name, idx in indexes.items()},
    })


def chest_sample_images(name: str, index: pd.DataFrame, picks: Mapping[str, np.ndarray],
                        data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Images of the picked rows of one chest X-ray set, per class, read by that set's reader.

    Kermany is decoded and resized to 128 px, PneumoniaMNIST stays at 28 px, the COVID-19
    Radiography (128 px) and Cohen (160 px) arrays are returned as stored.

    Args:
        name: one of :data:`CHEST_SETS`.
        index: that set's index (:func:`chest_indexes`).
        picks: class -> row positions in ``index`` (:func:`per_class_sample`).
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        class -> uint8 images `(n, S, S)`.
    """
    if name not in CHEST_SETS:
        raise ValueError(f"chest_sample_images: unknown set {name!r}; use one of {CHEST_SETS}.")
    if name == "kermany":
        return {c: kermany.load_images(index.iloc[p], size=128, data_dir=data_dir, progress=False)
                for c, p in picks.items()}
    if name == "pneumoniamnist":
        arrays = medmnist.load_pneumoniamnist(data_dir)  # `{split: (images, labels)}`
        return {c: np.stack([arrays[r.split][0][r.index] for r in index.iloc[p].itertuples()])
                for c, p in picks.items()}
    reader = covid19_radiography if name == "covid19_radiography" else ieee8023
    return {c: reader.load_images(index.iloc[p], data_dir=data_dir) for c, p in picks.items()}


def chest_histogram_pixels(indexes: Mapping[str, pd.DataFrame], n: int | None, seed: int = 0,
                           data_dir: str | os.PathLike | None = None, kermany_max: int = 600) -> dict[str, np.ndarray]:
    """Random images of COVID-19 Radiography, Cohen and Kermany (128 px) for intensity histograms.

    Args:
        indexes: the chest X-ray indexes (:func:`chest_indexes`).
        n: images per set (``None``: all of COVID-19 Radiography and Cohen, ``kermany_max`` of Kermany).
        seed: random seed of the choice.
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        kermany_max: at most this many Kermany images (each is decoded from JPEG).

    Returns:
        set name -> uint8 images `(n, S, S)`.
    """
    out = {}
    for name, reader in (("covid19_radiography", covid19_radiography), ("ieee8023 (Cohen)", ieee8023)):
        idx = indexes[name]
        take = idx.sample(n=min(n or len(idx), len(idx)), random_state=seed)
        out[name] = reader.load_images(take, data_dir=data_dir)
    take = indexes["kermany"].sample(n=min(n or kermany_max, kermany_max), random_state=seed)
    out["kermany"] = kermany.load_images(take, size=128, data_dir=data_dir, progress=False)
    return out


def nodule_zoom(images: np.ndarray, masks: np.ndarray, half: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Square crops of side ``2 * half`` centred on each slice's nodule (the mask's mean pixel).

    Slices are edge-padded (masks zero-padded) by ``half`` first, so nodules near the border
    still give full crops.

    Args:
        images: `(N, H, W)` slices.
        masks: `(N, H, W)` boolean nodule masks, none empty.
        half: half the crop side in pixels.

    Returns:
        The crops `(N, 2 half, 2 half)` and their masks (same shape, boolean).
    """
    images, masks = np.asarray(images), np.asarray(masks).astype(bool)
    if images.ndim != 3 or images.shape != masks.shape:
        raise ValueError(f"nodule_zoom: images {images.shape} and masks {masks.shape} must both be (N, H, W).")
    if half < 1:
        raise ValueError(f"nodule_zoom: half must be a positive number of pixels, got {half}.")
    empty = np.flatnonzero(~masks.reshape(len(masks), -1).any(axis=1))
    if len(empty):
        raise ValueError(f"nodule_zoom: masks {empty.tolist()} are empty; a crop needs a nodule to centre on.")
    zoom, zoom_masks = [], []
    for img, m in zip(images, masks):
        r, c = np.argwhere(m).mean(0).astype(int)  # nodule centre (row, col)
        zoom.append(np.pad(img, half, mode="edge")[r:r + 2 * half, c:c + 2 * half])
        zoom_masks.append(np.pad(m, half)[r:r + 2 * half, c:c + 2 * half])
    return np.stack(zoom), np.stack(zoom_masks)


def lidc_intensities(images: np.ndarray, masks: np.ndarray, max_lung: int = 200_000) -> dict[str, np.ndarray]:
    """Intensities of lung tissue (outside the nodules) and of the nodules, for histograms.

    The lung-segmented slices hold one constant value outside the lungs (each slice's top-left
    pixel); those pixels are left out. Lung pixels are thinned to every ``k``-th value,
    ``k = max(1, n_lung // max_lung)``.

    Args:
        images: `(N, H, W)` slices.
        masks: `(N, H, W)` boolean nodule masks.
        max_lung: thin the lung pixels once they exceed this many.

    Returns:
        ``{"lung tissue": 1-D values, "nodule": 1-D values}``.
    """
    images, masks = np.asarray(images), np.asarray(masks).astype(bool)
    if images.ndim != 3 or images.shape != masks.shape:
        raise ValueError(f"lidc_intensities: images {images.shape} and masks {masks.shape} must both be (N, H, W).")
    background = images[:, :1, :1]  # everything outside the lungs holds one constant value
    lung = images[~masks & (images != background)]
    return {"lung tissue": lung[:: max(1, lung.size // max_lung)], "nodule": images[masks]}


def with_grouped_split(index: pd.DataFrame, group_col: str, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                       seed: int = 0, label_col: str = "label") -> pd.DataFrame:
    """A copy of ``index`` (renumbered from 0) whose ``split`` column is a grouped train/val/test split.

    Args:
        index: one row per sample.
        group_col: the grouping column (``"patient_id"``); no group lands in two splits.
        fractions: target shares of train, val and test.
        seed: random seed (:func:`medgan_core.data.imbalance.grouped_split`).
        label_col: the class column the split balances.
    """
    out = index.reset_index(drop=True).copy()
    parts = grouped_split(out[label_col], out[group_col], fractions=fractions, seed=seed)
    out["split"] = ""
    for part, pos in parts.items():
        out.loc[pos, "split"] = part
    return out


def lidc_fold_table(meta: pd.DataFrame, n_splits: int, seed: int = 0) -> pd.DataFrame:
    """One row per patient-grouped fold of the LIDC slices (stratified by malignancy).

    Args:
        meta: one row per slice with ``malignancy`` and ``patient_id``.
        n_splits: number of folds.
        seed: random seed (:func:`medgan_core.data.imbalance.grouped_kfold`).

    Returns:
        Indexed by ``fold``: ``test patients`` (sorted, comma-separated), ``train slices``,
        ``test slices`` and ``patients shared`` (patients on both sides; 0 when leak-free).
    """
    patients = meta["patient_id"]
    rows = []
    for k, fold in enumerate(grouped_kfold(meta["malignancy"], patients, n_splits=n_splits, seed=seed)):
        tr, te = fold["train"], fold["test"]
        rows.append({"fold": k, "test patients": ", ".join(sorted(patients.iloc[te].unique())),
                     "train slices": len(tr), "test slices": len(te),
                     "patients shared": len(set(patients.iloc[tr]) & set(patients.iloc[te]))})
    return pd.DataFrame(rows).set_index("fold")


def site_pair_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Images per domain (rows) and split (columns) of the CycleGAN site pair, with totals.

    Args:
        pairs: :func:`medgan_core.data.kermany.site_pair_index` (``domain``, ``split``; a missing
            split is shown as ``"all (no official split)"``).
    """
    split = pairs["split"].fillna("all (no official split)")
    return pd.crosstab(pairs["domain"], split, margins=True, margins_name="total")


def train_imbalance_ratios(indexes: Mapping[str, pd.DataFrame], split_col: str = "split",
                           label_col: str = "label") -> dict[str, float]:
    """Imbalance ratio (largest / smallest class) of each index's ``train`` rows.

    Args:
        indexes: name -> one row per sample with a split and a class column.
        split_col: the column naming the split.
        label_col: the column naming the class.
    """
    out = {}
    for name, idx in indexes.items():
        train = idx.loc[idx[split_col] == "train", label_col]
        if train.empty:
            raise ValueError(f"train_imbalance_ratios: {name!r} has no 'train' rows in column {split_col!r}.")
        out[name] = imbalance_ratio(train)
    return out
