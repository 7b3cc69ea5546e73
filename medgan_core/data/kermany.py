"""Kermany pediatric chest X-rays (Guangzhou): normal / bacterial / viral pneumonia, 224 px.

Layout of ``<data>/kermany_pediatric_cxr_224/`` (data README section 7)::

    images/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg    224x224 RGB JPEG (R = G = B)
    kermany_index.csv       path, split, label_binary, label_3class, patient_id, width, height,
                            mode, bytes, sha256, pixel_duplicate_group
    overlap_with_covid19_radiography_128.csv, cyclegan_site_pair_index.csv, SHA256SUMS

Classes: ``("normal", "bacteria", "virus")`` (the third class comes from the original file
names ``personN_bacteria_M.jpeg`` / ``personN_virus_M.jpeg``), and a binary view
``("normal", "pneumonia")`` (``load_index(binary=True)``). The official split is kept:

    train 5216 (normal 1341 / bacteria 2530 / virus 1345), test 624 (234 / 242 / 148).

There is **no val split** (the official 16 val images are not staged): :func:`with_val_split`
carves a patient-grouped, class-stratified val split out of train. Patient ids (``personN``,
``IM-NNNN``, ``NORMAL2-IM-NNNN``) are only meaningful within one split and one class folder
(NORMAL / PNEUMONIA): the same ``personN`` appears in train and test with another infection
type. The ``group`` column is therefore ``split/folder/patient_id``; a ``personN`` with both
bacterial and viral images in train stays in one group (the conservative reading).

Byte-identical files share a ``pixel_duplicate_group``: 30 groups, all within one split (28
pairs and 2 triples, so 32 redundant files; the data README speaks of 30 pairs), one pair
under two patient ids. :func:`load_index` drops them by default, before any split.

Related folders: 193 Kermany train NORMAL images are also in ``covid19_radiography_128/``
(see ``covid19_radiography.load_index(exclude_kermany_overlap=True)``), and PneumoniaMNIST is
built from these same images; never mix either with this folder in one train/test split.
:func:`site_pair_index` lists the two-site CycleGAN domain pair shipped here.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from medgan_core.data.dedup import drop_exact_duplicates
from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError
from medgan_core.data.files import read_csv, read_image
from medgan_core.data.paths import dataset_dir

FOLDER = "kermany_pediatric_cxr_224"
CLASSES = ("normal", "bacteria", "virus")
BINARY_CLASSES = ("normal", "pneumonia")
SPLITS = ("train", "test")
INDEX_NAME = "kermany_index.csv"
OVERLAP_NAME = "overlap_with_covid19_radiography_128.csv"
SITE_PAIR_NAME = "cyclegan_site_pair_index.csv"
IMAGE_SIZE = 224
DOMAIN_A = "A_guangzhou_pediatric_kermany"
DOMAIN_B = "B_rsna_adult_via_covid19_radiography"
COVID_FOLDER = "covid19_radiography_128"

_INDEX_COLUMNS = ("path", "split", "label_binary", "label_3class", "patient_id", "width", "height",
                  "sha256", "pixel_duplicate_group")
_SITE_COLUMNS = ("domain", "source_folder", "key", "split")
_FOLDER_OF = {"normal": "NORMAL", "bacteria": "PNEUMONIA", "virus": "PNEUMONIA"}


def _check_index(raw: pd.DataFrame, path: Path) -> None:
    """Raise if the index CSV's rows contradict their own paths or labels.

    Args:
        raw: the index CSV as read.
        path: the CSV, named in errors.
    """
    def fail(what: str, mask: pd.Series, err: type[DataError] = LabelMismatchError) -> None:
        """Raise ``err`` naming the first rows where ``mask`` holds."""
        if mask.any():
            rows = raw.loc[mask, "path"].head(3).tolist()
            raise err(f"{path}: {int(mask.sum())} rows {what} (first: {rows}). Restore the original {INDEX_NAME}.")

    fail("have a split other than train/test", ~raw["split"].isin(SPLITS), DataFileError)
    fail("have a label_3class other than normal/bacteria/virus", ~raw["label_3class"].isin(CLASSES), DataFileError)
    fail("appear twice", raw["path"].duplicated(), DataFileError)
    parts = raw["path"].str.split("/")
    fail("are not images/<split>/<NORMAL|PNEUMONIA>/<file>", parts.str.len() != 4, DataFileError)
    fail("sit in another split's folder", parts.str[1] != raw["split"])
    fail("sit in the wrong class folder", parts.str[2] != raw["label_3class"].map(_FOLDER_OF))
    fail("have a label_binary that disagrees with the folder", parts.str[2] != raw["label_binary"])
    name = parts.str[3]
    for cls in ("bacteria", "virus"):
        fail(f"are labelled {cls} but the file name says otherwise",
             (raw["label_3class"] == cls) & ~name.str.contains(f"_{cls}_", regex=False))


def _read_index(folder: Path) -> pd.DataFrame:
    """Read and check ``kermany_index.csv``.

    Args:
        folder: the dataset folder.
    """
    path = folder / INDEX_NAME
    raw = read_csv(path, columns=_INDEX_COLUMNS, dtype={"patient_id": str, "path": str, "sha256": str})
    _check_index(raw, path)
    return raw


def _image_files(folder: Path) -> set[str]:
    """Relative paths (``images/...``) of every file under ``images/``.

    Args:
        folder: the dataset folder.
    """
    root = folder / "images"
    return {p.relative_to(folder).as_posix() for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def load_index(
    data_dir: str | os.PathLike | None = None,
    drop_duplicates: bool = True,
    binary: bool = False,
) -> pd.DataFrame:
    """One row per image with its official split, class and patient group.

    Checks that every index row has its image and every image has its row (fast: file names
    only; :func:`verify` decodes the images). Exact duplicates are dropped before any split.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        drop_duplicates: keep one file of each ``pixel_duplicate_group``;
            ``attrs["n_duplicates_dropped"]`` says how many went (32 on the real data).
        binary: make ``label`` the binary class (``normal`` / ``pneumonia``) instead of the
            3-class one; both stay available as ``label_3class`` and ``label_binary``.

    Returns:
        Columns ``path`` (relative to the folder), ``split``, ``label``, ``label_id``,
        ``label_3class``, ``label_binary``, ``patient_id``, ``group``, ``sha256``,
        ``pixel_duplicate_group``.
    """
    folder = dataset_dir(FOLDER, data_dir)
    raw = _read_index(folder)
    on_disk = _image_files(folder)
    missing = raw.loc[~raw["path"].isin(on_disk), "path"]
    if len(missing):
        raise LabelMismatchError(f"{folder / INDEX_NAME}: {len(missing)} rows have no image file "
                                 f"(first: {missing.head(3).tolist()}). Restore the images/ folder.")
    extra = sorted(on_disk - set(raw["path"]))
    if extra:
        raise LabelMismatchError(f"{folder / 'images'}: {len(extra)} files are not in {INDEX_NAME} "
                                 f"(first: {extra[:3]}). Remove them or restore the original index.")
    index = raw[["path", "split", "label_3class", "patient_id", "sha256", "pixel_duplicate_group"]].copy()
    index["label_binary"] = np.where(index["label_3class"] == "normal", "normal", "pneumonia")
    index["group"] = raw["split"] + "/" + raw["label_binary"] + "/" + raw["patient_id"]
    classes = BINARY_CLASSES if binary else CLASSES
    index["label"] = index["label_binary"] if binary else index["label_3class"]
    index["label_id"] = index["label"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
    n_dup = 0
    if drop_duplicates:
        kept, n_dup = drop_exact_duplicates(index, key="pixel_duplicate_group", labels=index["label_3class"])
        index = index.iloc[kept]
    index = index.reset_index(drop=True)[["path", "split", "label", "label_id", "label_3class", "label_binary",
                                          "patient_id", "group", "sha256", "pixel_duplicate_group"]]
    index.attrs.update(n_duplicates_dropped=n_dup, classes=classes)
    return index


def with_val_split(index: pd.DataFrame, fraction: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Move a patient-grouped, class-stratified part of train into a new ``val`` split.

    Uses scikit-learn's ``StratifiedGroupKFold`` with ``round(1 / fraction)`` folds and takes
    the first fold as val, so no patient group has images in both train and val and each
    class keeps about its share. Groups are the ``group`` column (``split/folder/patient_id``):
    patient ids are only meaningful within one split and one class folder. The val size is therefore about ``1 / round(1 / fraction)``
    of train (0.1 -> 10 %, 0.15 -> 1/7). Test rows are untouched.

    Args:
        index: a frame from :func:`load_index` (needs ``split``, ``label``, ``group``).
        fraction: the wanted share of train moved to val, in (0, 0.5].
        seed: seeds the shuffle of the groups.

    Returns:
        A copy of ``index`` with some ``train`` rows relabelled ``val``.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5]; got {fraction}.")
    needed = {"split", "label", "group"} - set(index.columns)
    if needed:
        raise ValueError(f"index lacks the columns {sorted(needed)}; build it with load_index.")
    if (index["split"] == "val").any():
        raise ValueError("index already has a val split; call with_val_split on a fresh load_index().")
    train_pos = np.flatnonzero(index["split"].to_numpy() == "train")
    n_splits = max(2, round(1 / fraction))
    train = index.iloc[train_pos]
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, val_local = next(folds.split(np.zeros(len(train)), train["label"], groups=train["group"]))
    out = index.copy()
    out.iloc[train_pos[val_local], out.columns.get_loc("split")] = "val"
    return out


def load_images(
    index: pd.DataFrame,
    size: int | None = None,
    mode: str = "L",
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Decode the images of the rows of ``index``, in its order, optionally resized.

    Args:
        index: a (possibly filtered) frame from :func:`load_index`.
        size: output side in pixels (LANCZOS resize of the 224 px file); ``None`` keeps 224.
        mode: ``"L"`` grayscale or ``"RGB"``.
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        progress: show a tqdm progress bar.

    Returns:
        `(N, size, size)` uint8 for ``"L"``, `(N, size, size, 3)` for ``"RGB"``.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB'; got {mode!r}.")
    if size is not None and size < 1:
        raise ValueError(f"size must be a positive number of pixels or None; got {size}.")
    if "path" not in index.columns:
        raise ValueError("index needs the column 'path'; build it with load_index.")
    folder = dataset_dir(FOLDER, data_dir)
    side = size or IMAGE_SIZE
    out = np.empty((len(index), side, side) + ((3,) if mode == "RGB" else ()), dtype=np.uint8)
    for i, rel in enumerate(tqdm(index["path"], desc="kermany images", disable=not progress)):
        img = read_image(folder / rel, mode=mode)
        if img.shape[:2] != (side, side):
            img = np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.LANCZOS))
        out[i] = img
    return out


def site_pair_index(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The unpaired two-site domain pair for CycleGAN (``cyclegan_site_pair_index.csv``).

    Domain A (``A_guangzhou_pediatric_kermany``): the 1,575 Kermany NORMAL images, train and
    test, ``key`` = path in this folder (224 px). Domain B
    (``B_rsna_adult_via_covid19_radiography``): the 1,507 COVID-19 Radiography Normal images
    that are not Kermany duplicates, ``key`` = index into its npz (128 px). It is a
    site/population pair (children vs adults), not a paired set.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        The CSV's columns (``domain``, ``source_folder``, ``key``, ``split``, ...) plus
        ``site`` (``"A"`` / ``"B"``) and ``index`` (int npz index for B, -1 for A).
    """
    folder = dataset_dir(FOLDER, data_dir)
    path = folder / SITE_PAIR_NAME
    pairs = read_csv(path, columns=_SITE_COLUMNS, dtype={"key": str})
    unknown = set(pairs["domain"]) - {DOMAIN_A, DOMAIN_B}
    if unknown:
        raise DataFileError(f"{path}: unknown domains {sorted(unknown)}; expected {DOMAIN_A} and {DOMAIN_B}.")
    is_a = pairs["domain"] == DOMAIN_A
    raw = _read_index(folder)
    normals = set(raw.loc[raw["label_3class"] == "normal", "path"])
    bad_a = pairs.loc[is_a & ~pairs["key"].isin(normals), "key"]
    if len(bad_a):
        raise LabelMismatchError(f"{path}: {len(bad_a)} domain-A keys are not Kermany normal images in "
                                 f"{INDEX_NAME} (first: {bad_a.head(3).tolist()}).")
    b_keys = pd.to_numeric(pairs.loc[~is_a, "key"], errors="coerce")
    if b_keys.isna().any():
        raise DataFileError(f"{path}: domain-B keys must be integer indices into the {COVID_FOLDER} npz.")
    overlap = read_csv(folder / OVERLAP_NAME, columns=("covid19_radiography_128_index", "covid19_class",
                                                      "is_kermany_duplicate"))
    flagged = overlap["is_kermany_duplicate"].astype(str).str.lower() == "true"
    ok_b = overlap.loc[(overlap["covid19_class"] == "Normal") & ~flagged, "covid19_radiography_128_index"]
    bad_b = b_keys[~b_keys.isin(ok_b)]
    if len(bad_b):
        raise LabelMismatchError(f"{path}: {len(bad_b)} domain-B keys are not non-duplicate Normal images "
                                 f"according to {OVERLAP_NAME} (first: {bad_b.head(3).astype(int).tolist()}).")
    pairs["site"] = np.where(is_a, "A", "B")
    pairs["index"] = -1
    pairs.loc[~is_a, "index"] = b_keys.astype(np.int64)
    return pairs


def verify(data_dir: str | os.PathLike | None = None, progress: bool = False) -> tuple[int, list[str]]:
    """Decode every image, check it against the index (sha256, size) and parse every CSV.

    ``SHA256SUMS`` is checked separately by ``medgan data check``; the index's own ``sha256``
    column is compared here while each file is read.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        progress: show a tqdm progress bar over the images.

    Returns:
        ``(files read, problems)``; each problem names the file and what is wrong.
    """
    folder = dataset_dir(FOLDER, data_dir)
    problems: list[str] = []
    n_read = 0
    raw = None
    try:
        raw = _read_index(folder)
    except DataError as err:
        problems.append(str(err))
    n_read += (folder / INDEX_NAME).is_file()
    for name, columns in ((OVERLAP_NAME, ("covid19_radiography_128_index", "is_kermany_duplicate")),
                          (SITE_PAIR_NAME, _SITE_COLUMNS)):
        try:
            read_csv(folder / name, columns=columns)
        except DataError as err:
            problems.append(str(err))
        n_read += (folder / name).is_file()
    on_disk = _image_files(folder)
    expected = {} if raw is None else dict(zip(raw["path"], zip(raw["sha256"], raw["width"], raw["height"])))
    for rel in sorted(set(expected) - on_disk):
        problems.append(f"{folder / rel}: listed in {INDEX_NAME} but missing")
    for rel in tqdm(sorted(on_disk), desc="verify kermany", disable=not progress):
        path = folder / rel
        n_read += 1
        try:
            data = path.read_bytes()
            img = read_image(path)
        except (DataError, OSError) as err:
            problems.append(str(err))
            continue
        if raw is None:
            continue
        if rel not in expected:
            problems.append(f"{path}: not listed in {INDEX_NAME}")
            continue
        digest, width, height = expected[rel]
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{path}: sha256 differs from {INDEX_NAME} (file changed or damaged; replace it)")
        if img.shape[:2] != (height, width):
            problems.append(f"{path}: decoded size {img.shape[1]}x{img.shape[0]}, index says {width}x{height}")
    return n_read, problems
