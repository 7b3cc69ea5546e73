"""DICOM CT reader: HU conversion, slice ordering, geometry, errors, and no identifying fields.

Synthetic series are written with pydicom (explicit VR little endian, files in shuffled
order, InstanceNumber deliberately wrong) with a known RescaleSlope/Intercept so that the
Hounsfield units can be checked by hand; pydicom's bundled ``CT_small.dcm`` is a real slice.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medgan_core.data.dicom import WINDOWS, CTVolume, DicomSeriesError, read_ct_file, read_ct_series, window
from medgan_core.data.errors import DataFileError, MissingDatasetError

SERIES_UID = "1.2.826.0.1.3680043.8.498.1001"
SLOPE, INTERCEPT = 2.0, -1024.0
DZ = 2.5  # mm between slices
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # normal +z
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)  # normal = row x col = (0, 1, 0)

# identifying header fields, set to values that must never reach the output
SENTINELS = {
    "PatientName": "SENTINELNAME^ALICE",
    "PatientID": "SENTINEL-PID-4711",
    "PatientBirthDate": "19010203",
    "PatientAddress": "1 Sentinel Road",
    "InstitutionName": "Sentinel General Hospital",
    "InstitutionAddress": "2 Sentinel Avenue",
    "ReferringPhysicianName": "SENTINELDOC^BOB",
    "OperatorsName": "SENTINELOP^CAROL",
    "StationName": "SENTINELSTATION",
    "AccessionNumber": "SENTINELACC99",
    "StudyDescription": "SENTINEL STUDY TEXT",
}


def stored_slice(k: int) -> np.ndarray:
    """Stored values of slice ``k`` (in position order): `(4, 6)` int16, distinct per slice."""
    return (np.arange(24, dtype=np.int16).reshape(4, 6) + 100 * k).astype(np.int16)


def write_slice(path: Path, k: int, *, orientation=AXIAL, uid: str = SERIES_UID, modality: str = "CT",
                pixels: bool = True, rows: int = 4, spacing=(0.7, 0.8), instance: int = 1) -> None:
    """Write slice ``k`` of a synthetic series at ``k * DZ`` mm along the slice normal.

    Args:
        path: the file to write.
        k: the slice's rank along the normal (also sets its pixel values).
        orientation: ImageOrientationPatient.
        uid: SeriesInstanceUID.
        modality: Modality.
        pixels: write PixelData.
        rows: Rows (4 unless testing a size mismatch).
        spacing: PixelSpacing (row spacing, column spacing) in mm.
        instance: InstanceNumber (deliberately unrelated to the position).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = f"{uid}.{k}.{instance}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = uid
    ds.Modality = modality
    ds.InstanceNumber = instance
    for keyword, value in SENTINELS.items():
        setattr(ds, keyword, value)
    ds.Manufacturer, ds.ManufacturerModelName, ds.KVP, ds.SliceThickness = "ACME", "Scan-9", "120", str(DZ)
    normal = np.cross(orientation[:3], orientation[3:])
    ds.ImageOrientationPatient = list(orientation)
    ds.ImagePositionPatient = [float(v) for v in np.array([-10.0, 20.0, 30.0]) + k * DZ * normal]
    ds.PixelSpacing = list(spacing)
    ds.Rows, ds.Columns = rows, 6
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = str(SLOPE), str(INTERCEPT)
    if pixels:
        ds.PixelData = np.resize(stored_slice(k), (rows, 6)).astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_series(folder: Path, n: int = 5, orientation=AXIAL, skip: tuple[int, ...] = (), seed: int = 0) -> list[Path]:
    """Write ``n`` slices in shuffled file order; file names and InstanceNumbers are scrambled.

    Args:
        folder: the series folder (created).
        n: number of slice positions.
        orientation: ImageOrientationPatient.
        skip: slice ranks left out (to create gaps).
        seed: seeds the shuffles.

    Returns:
        The file of each written rank, in rank order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names, instances = rng.permutation(n), rng.permutation(n) + 1
    paths = []
    for k in rng.permutation(n):  # write order shuffled as well
        if k in skip:
            continue
        path = folder / f"IMG{names[k]:04d}"
        write_slice(path, int(k), orientation=orientation, instance=int(instances[k]))
        paths.append((k, path))
    return [p for _, p in sorted(paths)]


def assert_no_sentinel(vol: CTVolume) -> None:
    """No identifying value may appear in the repr, the dataclass dict or the pickled object."""
    texts = [repr(vol), repr(asdict(vol)), str(vol.info)]
    blob = pickle.dumps(vol)
    for value in SENTINELS.values():
        assert all(value not in t for t in texts), value
        assert value.encode() not in blob, value


@pytest.mark.parametrize("orientation, normal", [(AXIAL, (0, 0, 1)), (CORONAL, (0, 1, 0))])
def test_series_sorted_along_normal_with_hand_computed_hu(tmp_path, orientation, normal):
    write_series(tmp_path / "s", n=5, orientation=orientation)
    vol = read_ct_series(tmp_path / "s")
    assert vol.shape == (5, 4, 6) and vol.hu.dtype == np.float32
    for k in range(5):  # HU = slope * stored + intercept, slices in position order
        np.testing.assert_array_equal(vol.hu[k], SLOPE * stored_slice(k) + INTERCEPT)
    assert vol.hu[0, 0, 0] == -1024.0 and vol.hu[4, 3, 5] == 2 * (400 + 23) - 1024
    np.testing.assert_allclose(vol.spacing, (DZ, 0.7, 0.8))
    np.testing.assert_allclose(vol.origin, (-10.0, 20.0, 30.0))
    np.testing.assert_allclose(vol.normal, normal)
    np.testing.assert_allclose(vol.direction[2], orientation[:3])  # x axis = row direction
    assert vol.series_uid == SERIES_UID
    assert vol.info == {"slice_thickness_mm": DZ, "kvp": 120.0, "manufacturer": "ACME", "manufacturer_model": "Scan-9"}
    assert_no_sentinel(vol)


def test_bundled_ct_small(tmp_path):
    path = get_testdata_file("CT_small.dcm")
    assert path is not None and Path(path).is_file()
    ds = pydicom.dcmread(path)
    vol = read_ct_file(path)
    assert vol.shape == (1, 128, 128)
    # CT_small: RescaleSlope 1, RescaleIntercept -1024
    np.testing.assert_array_equal(vol.hu[0], ds.pixel_array.astype(np.float32) - 1024.0)
    np.testing.assert_allclose(vol.spacing, (5.0, 0.661468, 0.661468))
    np.testing.assert_allclose(vol.origin, (-158.135803, -179.035797, -75.699997))
    assert vol.info["kvp"] == 120.0 and vol.info["manufacturer_model"] == "RHAPSODE"
    texts = repr(vol) + repr(asdict(vol))
    for value in ("CompressedSamples", "1CT1", "JFK IMAGING CENTER", "CT01_OC0", "ABCD1234"):
        assert value not in texts
    # the same slice read as a one-file series folder
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "slice.dcm").write_bytes(Path(path).read_bytes())
    np.testing.assert_array_equal(read_ct_series(tmp_path / "one").hu, vol.hu)


def test_mixed_series_lists_both_uids(tmp_path):
    write_series(tmp_path, n=3)
    write_slice(tmp_path / "other", 7, uid="1.2.826.0.1.3680043.8.498.2002")
    with pytest.raises(DicomSeriesError, match=r"mixes 2 series: .*1001 \(3 files\), .*2002 \(1 files\)"):
        read_ct_series(tmp_path)


def test_non_ct_modality(tmp_path):
    write_slice(tmp_path / "mr.dcm", 0, modality="MR")
    with pytest.raises(DicomSeriesError, match=r"mr\.dcm: Modality is 'MR', not 'CT'"):
        read_ct_file(tmp_path / "mr.dcm")


def test_missing_slice_is_a_gap(tmp_path):
    paths = write_series(tmp_path, n=5, skip=(2,))
    with pytest.raises(DicomSeriesError, match=rf"uneven slice spacing: 5.000 mm between {paths[1].name} "
                                               rf"and {paths[2].name}"):
        read_ct_series(tmp_path)
    assert read_ct_series(tmp_path, spacing_tol=1.5).shape == (4, 4, 6)  # a loose tolerance accepts it


def test_missing_pixel_data_names_the_file(tmp_path):
    write_series(tmp_path, n=3)
    write_slice(tmp_path / "nopix", 3, pixels=False)
    with pytest.raises(DataFileError, match="nopix has no pixel data"):
        read_ct_series(tmp_path)


def test_truncated_and_non_dicom_files(tmp_path):
    paths = write_series(tmp_path / "t", n=3)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) - 20])  # pixel data cut short
    with pytest.raises(DataFileError, match=rf"{paths[1].name}.*truncated or corrupt"):
        read_ct_series(tmp_path / "t")
    paths[1].write_bytes(b"not a dicom file at all")
    with pytest.raises(DataFileError, match=rf"{paths[1].name} is not a DICOM file"):
        read_ct_series(tmp_path / "t")


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(MissingDatasetError, match="holds no DICOM files"):
        read_ct_series(tmp_path / "empty")
    with pytest.raises(MissingDatasetError, match="not found"):
        read_ct_series(tmp_path / "nowhere")


@pytest.mark.parametrize("change, message", [
    ({"rows": 5}, "slice size differs"),
    ({"spacing": (0.7, 0.9)}, "PixelSpacing differs"),
    ({"orientation": CORONAL}, "ImageOrientationPatient differs"),
])
def test_inconsistent_in_plane_geometry(tmp_path, change, message):
    write_series(tmp_path, n=3)
    write_slice(tmp_path / "odd", 3, **change)
    with pytest.raises(DicomSeriesError, match=f"odd: {message}"):
        read_ct_series(tmp_path)


def test_two_slices_at_one_position(tmp_path):
    write_series(tmp_path, n=3)
    write_slice(tmp_path / "again", 1, instance=9)
    with pytest.raises(DicomSeriesError, match="same position"):
        read_ct_series(tmp_path)


def test_window_hand_values():
    hu = np.array([-1350.0, -600.0, -225.0, 150.0, 1000.0])
    np.testing.assert_allclose(window(hu, *WINDOWS["lung"]), [0.0, 0.5, 0.75, 1.0, 1.0])
    out = window(np.array([[-160, 40], [140, 240]]), *WINDOWS["mediastinum"])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.5], [0.75, 1.0]])
    assert WINDOWS["lung"] == (-600.0, 1500.0) and WINDOWS["mediastinum"] == (40.0, 400.0)
    with pytest.raises(ValueError, match="width must be > 0"):
        window(hu, 0.0, 0.0)
