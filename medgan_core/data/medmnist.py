"""MedMNIST npz files, and the PneumoniaMNIST dataset (28 px, normal / pneumonia).

A MedMNIST file holds ``{train,val,test}_images`` `(N, H, W)` or `(N, H, W, C)` uint8 and
``{train,val,test}_labels`` `(N, 1)` (one class id per image; `(N, K)` for multi-label sets).
:func:`load_medmnist` reads any such file; single labels come back squeezed to `(N,)`.

PneumoniaMNIST lives in ``<data>/pneumoniamnist/pneumoniamnist_28_reassembled.npz`` (data
README section 4), with the official sizes and class counts (0 = normal, 1 = pneumonia)::

    train 4708 (1214 / 3494), val 524 (135 / 389), test 624 (234 / 390)

Its train set was put back together from two partial copies (normal first, then pneumonia,
not shuffled), so shuffle before batching. **PneumoniaMNIST is built from the same Kermany
pediatric images as** ``kermany_pediatric_cxr_224/``: never put the two in one train/test
split (the same X-ray would sit on both sides).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError
from medgan_core.data.files import load_npz
from medgan_core.data.paths import dataset_dir

SPLITS = ("train", "val", "test")
FOLDER = "pneumoniamnist"
FILE_NAME = "pneumoniamnist_28_reassembled.npz"
CLASSES = ("normal", "pneumonia")
IMAGE_SIZE = 28


def load_medmnist(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a MedMNIST-format npz file.

    Args:
        path: the ``.npz`` file with the keys ``{train,val,test}_{images,labels}``.

    Returns:
        ``{split: (images, labels)}`` for train, val and test: images as stored (uint8,
        `(N, H, W)` or `(N, H, W, C)`), labels int64 `(N,)` (or `(N, K)` if multi-label).
    """
    path = Path(path)
    arrays = load_npz(path, keys=[f"{s}_{k}" for s in SPLITS for k in ("images", "labels")])
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim not in (3, 4) or images.dtype != np.uint8:
            raise DataFileError(f"{path}: '{split}_images' must be `(N, H, W)` or `(N, H, W, C)` uint8; "
                                f"got {images.shape} {images.dtype}.")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim not in (1, 2):
            raise DataFileError(f"{path}: '{split}_labels' must be `(N, 1)` or `(N, K)`; got {labels.shape}.")
        if len(labels) != len(images):
            raise LabelMismatchError(f"{path}: {len(images)} {split} images but {len(labels)} {split} labels; "
                                     "the file is inconsistent, replace it with a good copy.")
        out[split] = (images, labels.astype(np.int64))
    return out


def load_pneumoniamnist(data_dir: str | os.PathLike | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read PneumoniaMNIST and check its shapes and label values.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        ``{split: (images `(N, 28, 28)` uint8, labels `(N,)` int64 in {0, 1})}``.
    """
    path = dataset_dir(FOLDER, data_dir) / FILE_NAME
    data = load_medmnist(path)
    for split, (images, labels) in data.items():
        if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataFileError(f"{path}: {split} images are {images.shape[1:]}, expected "
                                f"({IMAGE_SIZE}, {IMAGE_SIZE}).")
        if labels.ndim != 1 or not np.isin(labels, np.arange(len(CLASSES))).all():
            raise LabelMismatchError(f"{path}: {split} labels must be 0 (normal) or 1 (pneumonia); "
                                     f"got values {np.unique(labels).tolist()}.")
    return data


def load_index(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per image: ``split``, ``index`` (position within its split), ``label``, ``label_id``.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    data = load_pneumoniamnist(data_dir)
    frames = [pd.DataFrame({"split": split, "index": np.arange(len(labels)),
                            "label": np.asarray(CLASSES)[labels], "label_id": labels})
              for split, (_, labels) in data.items()]
    return pd.concat(frames, ignore_index=True)


def verify(data_dir: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Load every array of the npz and check shapes, lengths and labels.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        ``(files read, problems)``; each problem names the file and what is wrong.
    """
    path = dataset_dir(FOLDER, data_dir) / FILE_NAME
    try:
        load_pneumoniamnist(data_dir)
    except DataError as err:
        return int(path.is_file()), [str(err)]
    return 1, []
