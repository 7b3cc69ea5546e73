"""SQ-AGGAN inputs: slice windows with edge padding, crops, x', backgrounds, augmentation, and the DICOM path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medgan_core.data.errors import DataFileError, LabelMismatchError
from medgan_core.data.lidc import LidcSlices
from medgan_core.data.augment import augment_batch
from medgan_core.data.nodule_sequences import (CT_RANGE, build_background_sequences,
                                               build_nodule_sequences, load_ct_nodules, scale_features,
                                               slice_windows, slices_from_ct)
from medgan_core.data.dicom import read_ct_series


def tiny_slices(size: int = 48) -> LidcSlices:
    """Nodule A on slices 0, 1, 2 (a disk at (16, 16)), nodule B on one slice (a disk at (30, 30)).

    Lung: everything but a 4 px frame (0 outside, as in the LIDC npz); tissue 0.5, nodule 1.5.
    """
    yy, xx = np.mgrid[:size, :size]
    n = 4
    images = np.zeros((n, size, size), np.float32)
    images[:, 4:-4, 4:-4] = 0.5
    masks = np.zeros((n, size, size), bool)
    for i in range(3):
        masks[i] = (yy - 16) ** 2 + (xx - 16) ** 2 <= (2 + i) ** 2
    masks[3] = (yy - 30) ** 2 + (xx - 30) ** 2 <= 9
    images[masks] = 1.5
    meta = pd.DataFrame({"slice_id": [f"s{i}" for i in range(n)], "patient_id": ["P1", "P1", "P1", "P2"],
                         "nodule_no": [0, 0, 0, 0], "nodule_id": ["P1_n0"] * 3 + ["P2_n0"], "slice_no": [0, 1, 2, 0],
                         "malignancy": [5, 5, 5, 1], "is_cancer": [True] * 3 + [False], "mask_area_px": masks.sum((1, 2))})
    return LidcSlices(images, masks, meta)


FEATURES = pd.DataFrame({"nodule_id": ["P1_n0", "P2_n0"], "malignancy": [5, 1], "subtlety": [3, 2]})


def test_slice_windows_pad_by_repeating_the_edge_slice():
    windows, n_padded = slice_windows(tiny_slices().meta, seq_len=3)
    assert windows.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 3]]
    assert n_padded == 3
    w5, _ = slice_windows(tiny_slices().meta, seq_len=5)
    assert w5[0].tolist() == [0, 0, 0, 1, 2]
    with pytest.raises(ValueError, match="odd"):
        slice_windows(tiny_slices().meta, seq_len=2)


def test_nodule_sequences_shapes_removal_and_features():
    slices = tiny_slices()
    seqs, n_padded = build_nodule_sequences(slices, FEATURES, ["malignancy", "subtlety"], crop=16, dilate_px=1,
                                            intensity_range=(-0.5, 1.5))
    assert seqs.x.shape == seqs.x_removed.shape == seqs.m.shape == seqs.removal.shape == (4, 3, 16, 16)
    assert n_padded == 3 and seqs.meta["padded"].tolist() == [True, False, True, True]
    np.testing.assert_allclose(seqs.f, [[1.0, 0.5]] * 3 + [[0.0, 0.25]])
    assert np.array_equal(seqs.x_removed[~seqs.removal], seqs.x[~seqs.removal])  # untouched outside
    # inside: the median of the ring, lung tissue 0.5 -> (0.5 + 0.5) / 2 * 2 - 1 = 0.0 in [-1, 1]
    assert np.allclose(seqs.x_removed[seqs.removal], 0.0)
    assert (seqs.removal >= seqs.m).all() and seqs.removal.sum() > seqs.m.sum()
    assert seqs.x[1, 1][seqs.m[1, 1]].min() == 1.0  # the nodule, mapped to 1
    assert scale_features(np.array([1, 3, 5])).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(LabelMismatchError, match="no feature row"):
        build_nodule_sequences(slices, FEATURES.iloc[:1], ["malignancy"], crop=16)


def test_background_crops_stay_away_from_every_mask_and_inside_the_lung():
    slices = tiny_slices()
    y, meta = build_background_sequences(slices, n_per_slice=3, crop=8, margin_px=2, min_lung_fraction=1.0, seed=0)
    assert y.shape[1:] == (3, 8, 8) and len(y) == len(meta) == 12
    windows, _ = slice_windows(slices.meta)
    for row in meta.itertuples():
        win = windows[row.slice_index]
        region = (slice(row.top - 2, row.top + 10), slice(row.left - 2, row.left + 10))
        assert not slices.masks[win][:, region[0], region[1]].any()
        assert (slices.images[win, row.top:row.top + 8, row.left:row.left + 8] != 0).all()
    with pytest.raises(DataFileError, match="no background crop fits"):
        build_background_sequences(slices, crop=44, min_lung_fraction=1.0, max_tries=20)


def test_augment_batch_applies_one_transform_to_all_tensors():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(2, 3, 1, 4, 4)
    a, b = augment_batch([x, 2 * x], gen)
    assert torch.equal(b, 2 * a)
    assert sorted(a[0].flatten().tolist()) == sorted(x[0].flatten().tolist())
    with pytest.raises(ValueError, match="square|B="):
        augment_batch([x, x[:1]], gen)


def write_ct(folder, hu: np.ndarray, dz: float = 2.0) -> None:
    """Write a `(Z, Y, X)` HU volume as an axial CT series (slope 1, intercept -1024)."""
    folder.mkdir()
    for k, sl in enumerate(hu):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{k}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"s{k}"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.Modality = "1.2.826.0.1.3680043.8.498.77", "CT"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, k * dz]
        ds.PixelSpacing = [0.7, 0.7]
        ds.Rows, ds.Columns = sl.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
        ds.PixelData = (sl + 1024).astype("<i2").tobytes()
        ds.save_as(folder / f"s{k}", enforce_file_format=True)


def test_dicom_series_and_mask_volume_give_the_same_inputs(tmp_path):
    z, n = 4, 32
    zz, yy, xx = np.mgrid[:z, :n, :n]
    hu = np.full((z, n, n), -850, np.int16)  # lung parenchyma
    nodule = ((yy - 12) ** 2 + (xx - 12) ** 2 <= 9) & (zz >= 1)  # on slices 1..3
    hu[nodule] = 40
    write_ct(tmp_path / "series", hu)
    np.save(tmp_path / "mask.npy", nodule)
    slices, lung = load_ct_nodules(tmp_path / "series", tmp_path / "mask.npy", "CT1", malignancy={0: 4})
    assert slices.images.shape == (3, n, n) and lung.shape == (3, n, n)
    assert slices.meta["slice_no"].tolist() == [0, 1, 2] and set(slices.meta["malignancy"]) == {4}
    np.testing.assert_allclose(slices.images[0][slices.masks[0]], 40.0)
    seqs, n_padded = build_nodule_sequences(slices, pd.DataFrame({"nodule_id": ["CT1_nodule0"], "malignancy": [4]}),
                                            ["malignancy"], crop=16, intensity_range=CT_RANGE, lung=lung)
    assert seqs.x.shape == (3, 3, 16, 16) and n_padded == 2
    # HU 40 -> (40 + 1000) / 1400 * 2 - 1
    assert np.allclose(seqs.x[1, 1][seqs.m[1, 1]], (40 + 1000) / 1400 * 2 - 1, atol=1e-6)
    y, _ = build_background_sequences(slices, n_per_slice=2, crop=8, margin_px=2, intensity_range=CT_RANGE,
                                      lung=lung, seed=0)
    assert np.allclose(y, (-850 + 1000) / 1400 * 2 - 1, atol=1e-6)  # nodule-free parenchyma only
    with pytest.raises(LabelMismatchError, match="voxel-aligned"):
        slices_from_ct(read_ct_series(tmp_path / "series"), nodule[:, :-1], "CT1")
