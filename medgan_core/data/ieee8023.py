"""Cohen et al. COVID-19 Image Data Collection: 605 frontal chest X-rays, 160 px, patient ids.

Layout of ``<data>/covid_chestxray_ieee8023_160/`` (data README section 6)::

    ieee8023_cxr_frontal_160.npz
        images         `(605, 160, 160)` uint8 grayscale (stretched, aspect ratio not kept)
        filename, patientid, finding, finding_group, view    `(605,)` strings
        orig_size_wh   `(605, 2)` int32 original width and height
    ieee8023_cxr_frontal_160_meta.csv
        index, filename, patientid, offset, sex, age, finding, finding_group, view, survival,
        location, license, doi, url, orig_width, orig_height, orig_mode, sha256_original

The label is the merged ``finding_group``; the four ``Other (...)`` groups (Pneumonia, ARDS,
Lipoid, Unknown) form the class ``Other``, as in the data README's table:

    COVID-19 423, Bacterial 33, Viral (non-COVID) 21, Fungal 13, No Finding 13, Other 18,
    Unlabelled (todo) 84.

The 84 ``Unlabelled (todo)`` images were not yet labelled upstream and are **not a class**:
:func:`load_index` drops them by default (``drop_unlabelled=True``). There is no official split
(``split`` is ``"all"``); split by ``patient_id`` (360 patients, many with several images).
Two pairs of images are byte-identical originals (one pair under two different patient ids),
so exact pixel duplicates are dropped by default, before any split. Classes are confounded
with the source publication, and COVID-19 dominates.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from medgan_core.data.dedup import drop_exact_duplicates, exact_duplicate_groups
from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError
from medgan_core.data.files import select_npz_rows, load_npz, read_csv
from medgan_core.data.paths import dataset_dir

FOLDER = "covid_chestxray_ieee8023_160"
CLASSES = ("COVID-19", "Bacterial", "Viral (non-COVID)", "Fungal", "No Finding", "Other")
UNLABELLED = "Unlabelled (todo)"
NPZ_NAME = "ieee8023_cxr_frontal_160.npz"
META_NAME = "ieee8023_cxr_frontal_160_meta.csv"
IMAGE_SIZE = 160

_NPZ_KEYS = ("images", "filename", "patientid", "finding", "finding_group", "view", "orig_size_wh")
_META_COLUMNS = ("index", "filename", "patientid", "finding", "finding_group", "view",
                 "orig_width", "orig_height")
_STR_COLUMNS = {c: str for c in ("filename", "patientid", "finding", "finding_group", "view", "offset")}


def class_of(finding_group: str) -> str:
    """Map a ``finding_group`` string to its class (``Other (ARDS)`` -> ``Other``).

    Args:
        finding_group: the merged label of the npz / meta CSV.

    Returns:
        One of :data:`CLASSES`, or :data:`UNLABELLED`.
    """
    if finding_group.startswith("Other"):
        return "Other"
    if finding_group in CLASSES or finding_group == UNLABELLED:
        return finding_group
    raise DataFileError(f"Unknown finding_group {finding_group!r}; expected one of {CLASSES}, "
                        f"'Other (...)' or {UNLABELLED!r}.")


def _check_arrays(arrays: dict[str, np.ndarray], npz_path: os.PathLike) -> None:
    """Raise if the npz arrays have the wrong shapes or lengths.

    Args:
        arrays: the arrays of the npz file.
        npz_path: the file, named in errors.
    """
    images = arrays["images"]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise DataFileError(f"{npz_path}: 'images' must be `(N, {IMAGE_SIZE}, {IMAGE_SIZE})` uint8; "
                            f"got {images.shape} {images.dtype}. Replace the file with a good copy.")
    n = len(images)
    lengths = {k: len(arrays[k]) for k in _NPZ_KEYS[1:]}
    if any(v != n for v in lengths.values()):
        raise LabelMismatchError(f"{npz_path}: {n} images but array lengths {lengths}; "
                                 "every array needs one entry per image.")
    if arrays["orig_size_wh"].shape != (n, 2):
        raise DataFileError(f"{npz_path}: 'orig_size_wh' must be `({n}, 2)`; got {arrays['orig_size_wh'].shape}.")
    for group in np.unique(arrays["finding_group"].astype(str)):
        try:
            class_of(str(group))
        except DataFileError as err:
            raise DataFileError(f"{npz_path}: {err}") from None


def _check_meta(meta: pd.DataFrame, arrays: dict[str, np.ndarray], meta_path: os.PathLike) -> None:
    """Raise if the meta CSV does not describe the npz row by row.

    Args:
        meta: the meta CSV (string columns read as str).
        arrays: the npz arrays (already checked).
        meta_path: the CSV, named in errors.
    """
    n = len(arrays["images"])
    if len(meta) != n:
        raise LabelMismatchError(f"{meta_path}: {len(meta)} rows for {n} images in {NPZ_NAME}; "
                                 "the CSV needs one row per array index.")
    if not np.array_equal(meta["index"].to_numpy(), np.arange(n)):
        raise LabelMismatchError(f"{meta_path}: the 'index' column is not 0..{n - 1} in order.")
    pairs = [(c, meta[c].fillna("").astype(str).to_numpy(), arrays[c].astype(str))
             for c in ("filename", "patientid", "finding", "finding_group", "view")]
    pairs += [("orig_width", meta["orig_width"].to_numpy(), arrays["orig_size_wh"][:, 0]),
              ("orig_height", meta["orig_height"].to_numpy(), arrays["orig_size_wh"][:, 1])]
    for col, in_csv, in_npz in pairs:
        bad = np.flatnonzero(in_csv != in_npz)
        if len(bad):
            raise LabelMismatchError(f"{meta_path}: column '{col}' disagrees with {NPZ_NAME} at "
                                     f"{len(bad)} rows (first: {bad[:5].tolist()}).")


def _load_checked(data_dir: str | os.PathLike | None) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Load the npz and the meta CSV and check that they agree.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    folder = dataset_dir(FOLDER, data_dir)
    arrays = load_npz(folder / NPZ_NAME, keys=_NPZ_KEYS)
    _check_arrays(arrays, folder / NPZ_NAME)
    meta = read_csv(folder / META_NAME, columns=_META_COLUMNS, dtype=_STR_COLUMNS)
    _check_meta(meta, arrays, folder / META_NAME)
    return arrays, meta


def load_index(
    data_dir: str | os.PathLike | None = None,
    drop_unlabelled: bool = True,
    drop_duplicates: bool = True,
) -> pd.DataFrame:
    """One row per image with its class, patient id and ``split == "all"``.

    Unlabelled images are dropped first, then exact pixel duplicates (first of each group
    kept); both happen here, before any split. Split by ``patient_id``.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        drop_unlabelled: drop the ``Unlabelled (todo)`` images (not a class);
            ``attrs["n_unlabelled_dropped"]``. If kept, their ``label_id`` is -1.
        drop_duplicates: drop exact pixel duplicates; ``attrs["n_duplicates_dropped"]``.

    Returns:
        Columns ``index`` (npz position), ``filename``, ``patient_id``, ``label`` (one of
        :data:`CLASSES`), ``label_id``, ``finding``, ``finding_group``, ``view``, ``split``,
        ``duplicate_group`` and the meta CSV's descriptive columns.
    """
    arrays, meta = _load_checked(data_dir)
    index = meta.rename(columns={"patientid": "patient_id"})
    index["view"] = index["view"].fillna("")
    index["label"] = [class_of(g) for g in index["finding_group"]]
    index["label_id"] = [CLASSES.index(c) if c in CLASSES else -1 for c in index["label"]]
    index["split"] = "all"
    index["duplicate_group"] = exact_duplicate_groups(arrays["images"])
    n_unlabelled = 0
    if drop_unlabelled:
        unlabelled = index["label"] == UNLABELLED
        n_unlabelled = int(unlabelled.sum())
        index = index[~unlabelled].reset_index(drop=True)
    n_dup = 0
    if drop_duplicates:
        kept, n_dup = drop_exact_duplicates(index, key="duplicate_group", labels=index["label"])
        index = index.iloc[kept].reset_index(drop=True)
    index.attrs.update(n_unlabelled_dropped=n_unlabelled, n_duplicates_dropped=n_dup)
    return index


def load_images(index: pd.DataFrame | None = None, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Return the images of the rows of ``index``, in its order.

    Args:
        index: a (possibly filtered) frame from :func:`load_index`; ``None`` loads that index
            with its defaults.
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        `(N, 160, 160)` uint8 grayscale images; labels are ``index["label_id"]``.
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
        meta = read_csv(folder / META_NAME, columns=_META_COLUMNS, dtype=_STR_COLUMNS)
        if arrays is not None:
            _check_meta(meta, arrays, folder / META_NAME)
    except DataError as err:
        problems.append(str(err))
    n_read = sum((folder / name).is_file() for name in (NPZ_NAME, META_NAME))
    return n_read, problems
