"""COVID-19 Radiography Database subset: 1,700 COVID + 1,700 Normal chest X-rays, 128 px.

Layout of ``<data>/covid19_radiography_128/`` (data README section 5)::

    covid19_radiography_covid_normal_128.npz
        images      `(3400, 128, 128)` uint8 grayscale
        labels      `(3400,)` uint8, 0 = Normal, 1 = COVID
        filename    `(3400,)` original file names (``COVID-1.png``, ``Normal-17.png``)
        class_name  `(3400,)` ``"COVID"`` or ``"Normal"``
    covid19_radiography_covid_normal_128_meta.csv
        index, filename, class_name, label, orig_width, orig_height, orig_mode, sha256_original_png

There is no official split (``split`` is ``"all"``) and no patient id, so the same patient may
appear several times. Two caveats shape every use of this folder:

- **Exact duplicates.** 17 pairs of pixel-identical images sit inside the COVID class.
  :func:`load_index` drops them by default (``drop_duplicates=True``), *before* any split,
  keeping the first image of each group; ``index.attrs["n_duplicates_dropped"]`` records how
  many went.
- **Overlap with Kermany.** 193 of the 1,700 Normal images are Kermany *train* NORMAL images
  (the database built its Normal class partly from Kermany). Never use this folder and
  ``kermany_pediatric_cxr_224/`` in one train/test split without removing them:
  ``load_index(exclude_kermany_overlap=True)`` does, using the overlap list shipped in the
  Kermany folder (:func:`kermany_overlap`).

The COVID and Normal images also come from different hospitals and countries, so a model can
learn the source instead of the disease.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from medgan_core.data.dedup import drop_exact_duplicates, exact_duplicate_groups
from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError
from medgan_core.data.files import select_npz_rows, load_npz, read_csv
from medgan_core.data.paths import dataset_dir

FOLDER = "covid19_radiography_128"
CLASSES = ("Normal", "COVID")  # label id 0 and 1, as in the npz
NPZ_NAME = "covid19_radiography_covid_normal_128.npz"
META_NAME = "covid19_radiography_covid_normal_128_meta.csv"
IMAGE_SIZE = 128
KERMANY_FOLDER = "kermany_pediatric_cxr_224"
OVERLAP_NAME = "overlap_with_covid19_radiography_128.csv"

_NPZ_KEYS = ("images", "labels", "filename", "class_name")
_META_COLUMNS = ("index", "filename", "class_name", "label")
_OVERLAP_COLUMNS = ("covid19_radiography_128_index", "covid19_filename", "covid19_class",
                    "best_kermany_path", "is_kermany_duplicate")


def _check_arrays(arrays: dict[str, np.ndarray], npz_path: os.PathLike) -> None:
    """Raise if the npz arrays have the wrong shapes or disagree with each other.

    Args:
        arrays: the arrays of the npz file.
        npz_path: the file, named in errors.
    """
    images = arrays["images"]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise DataFileError(f"{npz_path}: 'images' must be `(N, {IMAGE_SIZE}, {IMAGE_SIZE})` uint8; "
                            f"got {images.shape} {images.dtype}. Replace the file with a good copy.")
    n = len(images)
    lengths = {k: len(arrays[k]) for k in ("labels", "filename", "class_name")}
    if any(v != n for v in lengths.values()):
        raise LabelMismatchError(f"{npz_path}: {n} images but array lengths {lengths}; "
                                 "every array needs one entry per image.")
    labels = arrays["labels"].astype(np.int64)
    if not np.isin(labels, np.arange(len(CLASSES))).all():
        raise LabelMismatchError(f"{npz_path}: 'labels' holds values {sorted(set(labels.tolist()))}; "
                                 f"expected 0 ({CLASSES[0]}) or 1 ({CLASSES[1]}).")
    names = np.asarray(CLASSES)[labels]
    bad = np.flatnonzero(names != arrays["class_name"].astype(str))
    if len(bad):
        raise LabelMismatchError(f"{npz_path}: 'labels' and 'class_name' disagree at {len(bad)} "
                                 f"indices (first: {bad[:5].tolist()}).")


def _check_meta(meta: pd.DataFrame, arrays: dict[str, np.ndarray], meta_path: os.PathLike) -> None:
    """Raise if the meta CSV does not describe the npz row by row.

    Args:
        meta: the meta CSV.
        arrays: the npz arrays (already checked).
        meta_path: the CSV, named in errors.
    """
    n = len(arrays["images"])
    if len(meta) != n:
        raise LabelMismatchError(f"{meta_path}: {len(meta)} rows for {n} images in {NPZ_NAME}; "
                                 "the CSV needs one row per array index.")
    if not np.array_equal(meta["index"].to_numpy(), np.arange(n)):
        raise LabelMismatchError(f"{meta_path}: the 'index' column is not 0..{n - 1} in order.")
    for col, key in (("filename", "filename"), ("label", "labels")):
        bad = np.flatnonzero(meta[col].astype(str).to_numpy() != arrays[key].astype(str))
        if len(bad):
            raise LabelMismatchError(f"{meta_path}: column '{col}' disagrees with {NPZ_NAME}['{key}'] "
                                     f"at {len(bad)} rows (first: {bad[:5].tolist()}).")


def _load_checked(data_dir: str | os.PathLike | None) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Load the npz and the meta CSV and check that they agree.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    folder = dataset_dir(FOLDER, data_dir)
    arrays = load_npz(folder / NPZ_NAME, keys=_NPZ_KEYS)
    _check_arrays(arrays, folder / NPZ_NAME)
    meta = read_csv(folder / META_NAME, columns=_META_COLUMNS)
    _check_meta(meta, arrays, folder / META_NAME)
    return arrays, meta


def kermany_overlap(data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Return the indices of the Normal images that are also Kermany train NORMAL images.

    Reads ``kermany_pediatric_cxr_224/overlap_with_covid19_radiography_128.csv`` (one row per
    image of this folder with its closest Kermany image and the flag ``is_kermany_duplicate``;
    193 are flagged on the real data). Never put this folder and the Kermany folder in one
    train/test split without removing these images.

    Args:
        data_dir: the data folder holding both dataset folders.

    Returns:
        `(K,)` sorted int64 indices into the npz (and rows of the meta CSV).
    """
    path = dataset_dir(KERMANY_FOLDER, data_dir) / OVERLAP_NAME
    overlap = read_csv(path, columns=_OVERLAP_COLUMNS)
    flag = overlap["is_kermany_duplicate"]
    if flag.dtype != bool:
        flag = flag.astype(str).str.lower().map({"true": True, "false": False})
        if flag.isna().any():
            raise DataFileError(f"{path}: 'is_kermany_duplicate' must be True/False.")
    hits = overlap[flag.to_numpy(dtype=bool)]
    wrong_class = hits[hits["covid19_class"] != "Normal"]
    if len(wrong_class):
        raise LabelMismatchError(f"{path}: {len(wrong_class)} flagged rows are not class Normal "
                                 f"(first index {int(wrong_class.iloc[0, 0])}); the list is inconsistent.")
    meta = read_csv(dataset_dir(FOLDER, data_dir) / META_NAME, columns=_META_COLUMNS)
    idx = hits["covid19_radiography_128_index"].to_numpy(dtype=np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= len(meta)):
        raise LabelMismatchError(f"{path}: indices outside 0..{len(meta) - 1} of {META_NAME}.")
    names = meta["filename"].to_numpy().astype(str)[idx]
    bad = np.flatnonzero(names != hits["covid19_filename"].to_numpy().astype(str))
    if len(bad):
        raise LabelMismatchError(f"{path}: file names disagree with {META_NAME} at indices "
                                 f"{idx[bad[:5]].tolist()}; the overlap list belongs to another copy.")
    return np.sort(idx)


def load_index(
    data_dir: str | os.PathLike | None = None,
    drop_duplicates: bool = True,
    exclude_kermany_overlap: bool = False,
) -> pd.DataFrame:
    """One row per image: npz position, file name, class and ``split == "all"``.

    Duplicates are dropped first (over the whole folder, before any split), then the Kermany
    overlap if asked. Never use this folder and ``kermany_pediatric_cxr_224/`` in one split
    without ``exclude_kermany_overlap=True``.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        drop_duplicates: drop exact pixel duplicates, keeping the first of each group
            (``attrs["n_duplicates_dropped"]`` says how many).
        exclude_kermany_overlap: drop the Normal images that are also Kermany images
            (``attrs["n_kermany_overlap_dropped"]``); needs the Kermany folder.

    Returns:
        Columns ``index`` (npz position), ``filename``, ``label`` (class name), ``label_id``,
        ``split``, ``duplicate_group`` and the meta CSV's ``orig_*`` / ``sha256`` columns.
    """
    arrays, meta = _load_checked(data_dir)
    index = meta.rename(columns={"class_name": "label", "label": "label_id"})
    index["label_id"] = index["label_id"].astype(np.int64)
    index["split"] = "all"
    index["duplicate_group"] = exact_duplicate_groups(arrays["images"])
    n_dup = 0
    if drop_duplicates:
        kept, n_dup = drop_exact_duplicates(index, key="duplicate_group", labels=index["label"])
        index = index.iloc[kept]
    n_overlap = 0
    if exclude_kermany_overlap:
        overlap = index["index"].isin(kermany_overlap(data_dir))
        n_overlap = int(overlap.sum())
        index = index[~overlap]
    index = index.reset_index(drop=True)
    index.attrs.update(n_duplicates_dropped=n_dup, n_kermany_overlap_dropped=n_overlap)
    return index


def load_images(index: pd.DataFrame | None = None, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Return the images of the rows of ``index``, in its order.

    Args:
        index: a (possibly filtered) frame from :func:`load_index`; ``None`` loads that index
            with its defaults (duplicates dropped).
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        `(N, 128, 128)` uint8 grayscale images; labels are ``index["label_id"]``.
    """
    arrays, _ = _load_checked(data_dir)
    if index is None:
        index = load_index(data_dir)
    return select_npz_rows(arrays, index, NPZ_NAME)


def verify(data_dir: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Read every file of the folder fully and report problems instead of raising.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        ``(files read, problems)``; each problem names the file and what is wrong.
    """
    folder = dataset_dir(FOLDER, data_dir)
    problems: list[str] = []
    arrays = None
    try:
        arrays = load_npz(folder / NPZ_NAME, keys=_NPZ_KEYS)
        _check_arrays(arrays, folder / NPZ_NAME)
    except DataError as err:
        problems.append(str(err))
        arrays = None
    try:
        meta = read_csv(folder / META_NAME, columns=_META_COLUMNS)
        if arrays is not None:
            _check_meta(meta, arrays, folder / META_NAME)
    except DataError as err:
        problems.append(str(err))
    n_read = sum((folder / name).is_file() for name in (NPZ_NAME, META_NAME))
    return n_read, problems
