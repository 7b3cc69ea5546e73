"""CheXpert (Irvin et al. 2019) label CSVs: the uncertainty policies and the write-up's six classes.

CheXpert is not in our data folder (its licence needs a sign-up); this reader lets a user who has
it point experiment 03 at it. Layout of ``<root>/`` (as Stanford ships ``CheXpert-v1.0-small``)::

    train.csv, valid.csv     Path, Sex, Age, Frontal/Lateral, AP/PA, then the 14 label columns
    train/patient00001/study1/view1_frontal.jpg ...

``Path`` is relative to the folder *above* ``<root>`` (it starts with ``CheXpert-v1.0-small/``).
Each of the 14 label columns (:data:`LABELS`) holds ``1`` (positive), ``0`` (negative), ``-1``
(uncertain) or is blank (not mentioned in the report). A **policy** turns them into 0/1:

- ``"u_ones"`` (U-Ones): uncertain counts as positive, ``-1 -> 1``;
- ``"u_zeros"`` (U-Zeros): uncertain counts as negative, ``-1 -> 0``;

and blank is negative under both (Irvin et al., section 4.1). The write-up's task keeps the
**six single-label classes** (:data:`WRITEUP_CLASSES`: Atelectasis, Cardiomegaly, Consolidation,
Edema, Pleural Effusion, No Finding): :func:`select_single_label` keeps the rows with exactly one
of them positive (after the policy) and gives that class as the label; the other eight findings
are ignored unless ``exclusive=True``, which also drops rows with any of them positive.

Public API: :data:`LABELS`, :data:`WRITEUP_CLASSES`, :data:`POLICIES`, :func:`read_labels`,
:func:`apply_policy`, :func:`select_single_label`, :func:`patient_ids`, :func:`load_images`,
:func:`load_split`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from medgan_core.data.errors import DataFileError, MissingDatasetError
from medgan_core.data.files import read_csv, read_image

LABELS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
          "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
          "Fracture", "Support Devices")
WRITEUP_CLASSES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding")
POLICIES = ("u_ones", "u_zeros")
SPLIT_FILES = {"train": "train.csv", "valid": "valid.csv"}
_VALUES = (1.0, 0.0, -1.0)  # and blank
_MAX_LISTED = 10


def read_labels(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read a CheXpert label CSV and check its label values.

    Args:
        csv_path: ``train.csv`` or ``valid.csv``.

    Returns:
        The frame as in the file, the 14 label columns as float (``1, 0, -1`` or NaN for blank).
    """
    frame = read_csv(Path(csv_path), columns=("Path", *LABELS), dtype={"Path": str})
    values = frame[list(LABELS)].apply(pd.to_numeric, errors="coerce")
    bad = ~(values.isin(_VALUES) | values.isna()) | (frame[list(LABELS)].notna() & values.isna())
    if bad.any(axis=None):
        rows = [int(i) + 2 for i in np.flatnonzero(bad.any(axis=1).to_numpy())[:_MAX_LISTED]]  # +2: header, 1-based
        cols = [c for c in LABELS if bad[c].any()]
        raise DataFileError(f"{csv_path}: label values must be 1, 0, -1 or blank; other values in the columns {cols} "
                            f"on lines {rows}. Use the CSV as Stanford ships it.")
    frame[list(LABELS)] = values.astype(float)
    return frame


def apply_policy(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    """The 14 label columns as 0/1 under an uncertainty policy (blank -> 0 under both).

    Args:
        frame: from :func:`read_labels`.
        policy: ``"u_ones"`` (``-1 -> 1``) or ``"u_zeros"`` (``-1 -> 0``).

    Returns:
        A copy with every label column int8 in {0, 1}.
    """
    if policy not in POLICIES:
        raise ValueError(f"Unknown uncertainty policy {policy!r}; use one of {POLICIES} "
                         "(U-Ones: uncertain is positive; U-Zeros: uncertain is negative).")
    out = frame.copy()
    uncertain = 1.0 if policy == "u_ones" else 0.0
    out[list(LABELS)] = out[list(LABELS)].replace(-1.0, uncertain).fillna(0.0).astype(np.int8)
    return out


def select_single_label(frame: pd.DataFrame, classes: tuple[str, ...] = WRITEUP_CLASSES,
                        exclusive: bool = False) -> pd.DataFrame:
    """Rows with exactly one of ``classes`` positive, labelled by it.

    Args:
        frame: from :func:`apply_policy` (0/1 label columns).
        classes: the classes of the task, in label order (default the write-up's six).
        exclusive: also drop rows with any finding outside ``classes`` positive.

    Returns:
        The kept rows with ``label`` (int, index into ``classes``) and ``class_name``.
    """
    unknown = [c for c in classes if c not in LABELS]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be at least 2 distinct names of {LABELS}, got {classes}.")
    flags = frame[list(classes)].to_numpy()
    if not np.isin(flags, (0, 1)).all():
        raise ValueError("The label columns must be 0/1: apply an uncertainty policy first (apply_policy).")
    keep = flags.sum(axis=1) == 1
    if exclusive:
        others = [c for c in LABELS if c not in classes]
        keep &= frame[others].to_numpy().sum(axis=1) == 0
    out = frame.loc[keep].copy()
    out["label"] = flags[keep].argmax(axis=1).astype(np.int64)
    out["class_name"] = np.asarray(classes)[out["label"].to_numpy()]
    return out


def patient_ids(paths: pd.Series) -> np.ndarray:
    """The patient of every ``Path`` (its ``patientNNNNN`` part), for splitting by patient.

    Args:
        paths: the ``Path`` column.
    """
    ids = paths.str.extract(r"(patient\d+)", expand=False)
    if ids.isna().any():
        bad = paths[ids.isna()].tolist()[:_MAX_LISTED]
        raise DataFileError(f"No patientNNNNN part in the paths {bad}; CheXpert paths look like "
                            "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg.")
    return ids.to_numpy()


def load_images(frame: pd.DataFrame, root: str | os.PathLike, size: int, progress: bool = False) -> np.ndarray:
    """Decode the images of ``frame`` as grayscale, resized to ``size`` x ``size`` (aspect not kept).

    Args:
        frame: rows with a ``Path`` column.
        root: the CheXpert folder (``CheXpert-v1.0-small``); ``Path`` is taken relative to its parent.
        size: output side in pixels.
        progress: show a progress bar.

    Returns:
        uint8 `(N, size, size)`.
    """
    base = Path(root).parent
    out = np.empty((len(frame), size, size), dtype=np.uint8)
    for i, rel in enumerate(tqdm(frame["Path"], desc="CheXpert images", disable=not progress)):
        img = Image.fromarray(read_image(base / rel, mode="L"))
        out[i] = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)
    return out


def load_split(root: str | os.PathLike, split: str = "train", policy: str = "u_ones",
               classes: tuple[str, ...] = WRITEUP_CLASSES, exclusive: bool = False, frontal_only: bool = True,
               size: int = 160, max_images: int = 0, seed: int = 0,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split of CheXpert as arrays for the write-up's task.

    Args:
        root: the CheXpert folder holding ``train.csv`` and ``valid.csv``.
        split: ``"train"`` or ``"valid"``.
        policy: the uncertainty policy (:data:`POLICIES`).
        classes: the task's classes (default the write-up's six).
        exclusive: drop rows with a finding outside ``classes`` (see :func:`select_single_label`).
        frontal_only: keep frontal views only (when the CSV has ``Frontal/Lateral``).
        size: image side in pixels (the write-up's 160).
        max_images: keep at most this many rows, drawn at random with ``seed`` (0: all).
        seed: seed of that draw.
        progress: show a progress bar while decoding.

    Returns:
        ``(images uint8 (N, size, size), labels int64 (N,), patient ids (N,))``.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}.")
    root = Path(root)
    csv = root / SPLIT_FILES[split]
    if not csv.is_file():
        raise MissingDatasetError(f"CheXpert label file not found: {csv.resolve()}. Point the notebook at the folder "
                                  "that holds train.csv and valid.csv (CheXpert-v1.0-small, from "
                                  "stanfordmlgroup.github.io/competitions/chexpert after sign-up).")
    frame = apply_policy(read_labels(csv), policy)
    if frontal_only and "Frontal/Lateral" in frame:
        frame = frame[frame["Frontal/Lateral"] == "Frontal"]
    frame = select_single_label(frame, classes, exclusive)
    if max_images and len(frame) > max_images:
        frame = frame.iloc[np.sort(np.random.default_rng(seed).choice(len(frame), max_images, replace=False))]
    return (load_images(frame, root, size, progress), frame["label"].to_numpy(np.int64),
            patient_ids(frame["Path"]))
