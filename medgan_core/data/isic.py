"""ISIC 2017 dermoscopy images (melanoma / nevus / seborrheic keratosis), 256 px.

Layout of ``<data_dir>/isic2017_256/`` (see the data README, section 1)::

    images/{train,val,test}/ISIC_<id>.jpg               2000 / 150 / 600 RGB JPEGs, 256x256
    labels/ISIC-2017_Training_Part3_GroundTruth.csv      image_id,melanoma,seborrheic_keratosis
    labels/ISIC-2017_Validation_Part3_GroundTruth.csv    (flags 0.0 or 1.0)
    labels/ISIC-2017_Test_v2_Part3_GroundTruth.csv
    metadata/ISIC-2017_{Training,Validation}_Data_metadata.csv   (age, sex; not used here)

The split is the official challenge split. The class of an image comes from the two flags of
Part 3: ``melanoma`` if the melanoma flag is set, ``seborrheic_keratosis`` if that flag is set,
and ``nevus`` when neither is (the two flags are never both set). Real class counts
(melanoma / nevus / seborrheic keratosis): train 374 / 1372 / 254, val 30 / 78 / 42,
test 117 / 393 / 90.

Public API: :data:`FOLDER`, :data:`CLASSES`, :func:`load_index`, :func:`load_images`, :func:`load_splits`,
:func:`verify` (the dataset contract of :mod:`medgan_core.data.registry`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError, MissingDatasetError
from medgan_core.data.files import read_csv, read_image
from medgan_core.data.paths import dataset_dir

FOLDER = "isic2017_256"
CLASSES = ("melanoma", "nevus", "seborrheic_keratosis")
SPLITS = ("train", "val", "test")
LABEL_FILES = {
    "train": "labels/ISIC-2017_Training_Part3_GroundTruth.csv",
    "val": "labels/ISIC-2017_Validation_Part3_GroundTruth.csv",
    "test": "labels/ISIC-2017_Test_v2_Part3_GroundTruth.csv",
}
LABEL_COLUMNS = ("image_id", "melanoma", "seborrheic_keratosis")
_MAX_LISTED = 10  # how many offending names an error message spells out


def _read_labels(csv_path: Path) -> pd.DataFrame:
    """Read one Part 3 ground-truth CSV and turn its two flags into a class name.

    Args:
        csv_path: the CSV file (``image_id,melanoma,seborrheic_keratosis``).

    Returns:
        A frame with ``image_id`` and ``label``, in the file's row order.
    """
    frame = read_csv(csv_path, columns=LABEL_COLUMNS, dtype={"image_id": str})
    flags = frame[["melanoma", "seborrheic_keratosis"]]
    bad = ~flags.isin([0, 1]).all(axis=1)
    if bad.any():
        rows = [int(i) + 2 for i in np.flatnonzero(bad.to_numpy())[:_MAX_LISTED]]  # +2: header, 1-based
        raise DataFileError(f"{csv_path}: the melanoma / seborrheic_keratosis flags must be 0 or 1; "
                            f"bad values on lines {rows}. Replace the file with the official CSV.")
    mel, sk = flags["melanoma"].to_numpy() == 1, flags["seborrheic_keratosis"].to_numpy() == 1
    if (mel & sk).any():
        ids = frame.loc[mel & sk, "image_id"].tolist()[:_MAX_LISTED]
        raise DataFileError(f"{csv_path}: both flags set for {ids}; an image has exactly one class.")
    dup = frame["image_id"].duplicated()
    if dup.any():
        raise DataFileError(f"{csv_path}: image ids listed twice: {frame.loc[dup, 'image_id'].tolist()[:_MAX_LISTED]}")
    label = np.where(mel, "melanoma", np.where(sk, "seborrheic_keratosis", "nevus"))
    return pd.DataFrame({"image_id": frame["image_id"].to_numpy(), "label": label})


def _scan(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read the three label CSVs, list the image folders and match them.

    Args:
        folder: the dataset folder ``<data_dir>/isic2017_256``.

    Returns:
        ``(index, mismatches)``: the index of every labelled image that exists, and one line
        per label without an image or image without a label, naming the file.
    """
    parts, mismatches = [], []
    for split in SPLITS:
        csv_path = folder / LABEL_FILES[split]
        labels = _read_labels(csv_path)
        image_dir = folder / "images" / split
        if not image_dir.is_dir():
            raise MissingDatasetError(f"Missing image folder {image_dir} (expected images/{split}/ISIC_<id>.jpg).")
        on_disk = {p.stem for p in image_dir.glob("*.jpg")}
        labelled = set(labels["image_id"])
        for image_id in labels["image_id"]:
            if image_id not in on_disk:
                mismatches.append(f"{csv_path}: labels {image_id}, "
                                  f"but {image_dir / (image_id + '.jpg')} does not exist")
        for image_id in sorted(on_disk - labelled):
            mismatches.append(f"{image_dir / (image_id + '.jpg')}: image has no label row in {csv_path}")
        labels = labels[labels["image_id"].isin(on_disk)].copy()
        labels["split"] = split
        labels["path"] = [str(image_dir / f"{i}.jpg") for i in labels["image_id"]]
        parts.append(labels)
    index = pd.concat(parts, ignore_index=True)
    index["label_idx"] = index["label"].map({c: i for i, c in enumerate(CLASSES)}).astype(np.int64)
    return index[["image_id", "path", "split", "label", "label_idx"]], mismatches


def load_index(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per image: ``image_id, path, split, label, label_idx`` (metadata only, fast).

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Raises:
        MissingDatasetError: the folder, a label CSV or an image folder is missing.
        DataFileError: a label CSV cannot be parsed or holds bad flags.
        LabelMismatchError: a label names a missing image, or an image has no label.
    """
    index, mismatches = _scan(dataset_dir(FOLDER, data_dir))
    if mismatches:
        more = f"\n  ... and {len(mismatches) - _MAX_LISTED} more" if len(mismatches) > _MAX_LISTED else ""
        raise LabelMismatchError("ISIC labels and images disagree:\n  " + "\n  ".join(mismatches[:_MAX_LISTED])
                                 + more + "\n  Restore the missing files or the official label CSVs.")
    return index


def load_images(index: pd.DataFrame, size: int, data_dir: str | os.PathLike | None = None,
                progress: bool = True) -> np.ndarray:
    """Decode the images of ``index`` and resize them to ``size`` x ``size`` (antialiased).

    Args:
        index: rows of :func:`load_index` (any subset, any order); needs ``path``, or
            ``image_id`` and ``split`` to rebuild it from ``data_dir``.
        size: output side in pixels (256 keeps the staged resolution without resampling).
        data_dir: the data folder, used only when ``index`` has no ``path`` column.
        progress: show a tqdm progress bar.

    Returns:
        `(N, size, size, 3)` ``uint8`` RGB images, in the row order of ``index``.
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int (e.g. 64), got {size!r}.")
    if "path" in index.columns:
        paths = [Path(p) for p in index["path"]]
    elif {"image_id", "split"} <= set(index.columns):
        folder = dataset_dir(FOLDER, data_dir)
        paths = [folder / "images" / s / f"{i}.jpg" for i, s in zip(index["image_id"], index["split"])]
    else:
        raise ValueError("index needs a 'path' column, or 'image_id' and 'split'; pass rows of isic.load_index().")
    images = np.empty((len(paths), size, size, 3), dtype=np.uint8)  # `(N, size, size, 3)`
    for k, path in enumerate(tqdm(paths, desc="ISIC images", disable=not progress)):
        x = read_image(path, mode="RGB")  # `(H, W, 3)`
        if x.shape[:2] != (size, size):
            x = np.asarray(Image.fromarray(x).resize((size, size), Image.Resampling.LANCZOS))
        images[k] = x
    return images


def verify(data_dir: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Decode every image and parse every CSV; return ``(files read, problem lines)``.

    A bad file becomes a problem line naming it; so does every label without an image and
    every image without a label. Only a missing dataset folder raises.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    folder = dataset_dir(FOLDER, data_dir)
    checked, problems = 0, []
    csv_files = [folder / LABEL_FILES[s] for s in SPLITS] + sorted((folder / "metadata").glob("*.csv"))
    for csv_path in csv_files:
        checked += 1
        try:
            read_csv(csv_path)
        except DataError as err:
            problems.append(str(err))
    labels_readable = not problems
    for split in SPLITS:
        for path in sorted((folder / "images" / split).glob("*.jpg")):
            checked += 1
            try:
                read_image(path, mode="RGB")
            except DataError as err:
                problems.append(str(err))
    if labels_readable:  # otherwise the CSV problem is already listed once
        try:
            problems.extend(_scan(folder)[1])
        except DataError as err:
            problems.append(str(err))
    return checked, problems


def load_splits(size: int, classes: tuple[str, ...] = ("melanoma", "nevus"), data_dir: str | os.PathLike | None = None,
                max_per_split: int = 0, seed: int = 0,
                progress: bool = False) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """The official splits of the chosen classes as arrays: ``{split: (images, labels)}`` and the image ids.

    Args:
        size: image side in pixels.
        classes: the classes kept, in label order (``("melanoma", "nevus")``: melanoma is label 0).
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        max_per_split: keep at most this many images per split, every class in proportion and at
            least 2 of each (0: all; smoke runs use a few).
        seed: seed of that subsample.
        progress: show a progress bar while decoding.

    Returns:
        ``(splits, ids)``: ``splits[s] = (uint8 (N, size, size, 3), int64 labels (N,))`` for
        ``s`` in train / val / test, and ``ids[s]`` the ISIC ids of those rows.
    """
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct names from {CLASSES}, got {classes}.")
    index = load_index(data_dir)
    index = index[index["label"].isin(classes)]
    splits, ids = {}, {}
    for split in SPLITS:
        rows = index[index["split"] == split]
        if max_per_split and len(rows) > max_per_split:
            rng = np.random.default_rng([seed, SPLITS.index(split)])
            share = max_per_split / len(rows)
            keep = [rng.choice(g.index.to_numpy(), max(2, int(round(share * len(g)))), replace=False)
                    for _, g in rows.groupby("label")]
            rows = rows.loc[np.sort(np.concatenate(keep))]
        labels = np.array(rows["label"].map({c: i for i, c in enumerate(classes)}), dtype=np.int64)  # writable
        splits[split] = (load_images(rows, size, progress=progress), labels)
        ids[split] = rows["image_id"].to_numpy()
    return splits, ids
