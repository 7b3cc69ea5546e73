"""Read a DICOM CT series into a volume in Hounsfield units, with its geometry.

A CT series is a folder of single-slice DICOM files sharing one ``SeriesInstanceUID``.
:func:`read_ct_series` reads every file, checks that they form one consistent CT volume and
returns a :class:`CTVolume`:

- ``hu`` `(Z, Y, X)` float32 Hounsfield units, stored value -> HU through pydicom's
  ``apply_modality_lut`` (``HU = RescaleSlope * stored + RescaleIntercept``, per slice);
- slices ordered by their position along the slice normal: ``ImagePositionPatient``
  projected on ``n = row x column`` (the cross product of the two ``ImageOrientationPatient``
  direction cosines), never by ``InstanceNumber`` or file name, which are often wrong;
- ``spacing`` ``(dz, dy, dx)`` mm (``dz`` from the positions, ``dy, dx`` = ``PixelSpacing``),
  ``origin`` (patient x, y, z of voxel ``[0, 0, 0]``) and ``direction`` (unit vectors of the
  z, y, x array axes in patient coordinates; row 0 is the slice normal).

Problems raise a :class:`~medgan_core.data.errors.DataError` naming the folder or file: no
DICOM files, an unreadable or truncated file, several series in one folder (listed), a modality
other than CT, missing pixel data or geometry tags, inconsistent in-plane shape, pixel spacing
or orientation, two slices at one position, or uneven slice spacing (a missing slice).

**Privacy.** Only geometry and a few non-identifying acquisition fields (:data:`INFO_FIELDS`:
slice thickness, kVp, kernel, manufacturer and model, ...) are copied into the output. No
identifying header field (patient name, id, birth date, address, institution, station,
referring or performing physician, operator, accession number, dates, descriptions) is ever
copied; the series UID is kept because callers need it to tell series apart.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from medgan_core.data.errors import DataFileError, MissingDatasetError

#: named display windows ``(center, width)`` in HU.
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "soft_tissue": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}

#: the only header fields copied into :attr:`CTVolume.info` (DICOM keyword -> output name).
INFO_FIELDS: dict[str, str] = {
    "SliceThickness": "slice_thickness_mm",
    "KVP": "kvp",
    "XRayTubeCurrent": "tube_current_ma",
    "ConvolutionKernel": "convolution_kernel",
    "ReconstructionDiameter": "reconstruction_diameter_mm",
    "GantryDetectorTilt": "gantry_tilt_deg",
    "Manufacturer": "manufacturer",
    "ManufacturerModelName": "manufacturer_model",
}

_SKIP_NAMES = {"DICOMDIR"}
_NUMERIC_VRS = {"DS", "IS", "FL", "FD", "US", "SS", "UL", "SL"}


class DicomSeriesError(DataFileError):
    """The files can be read but do not form one consistent CT volume."""


@dataclass(frozen=True)
class CTVolume:
    """A CT volume in Hounsfield units with its patient-space geometry.

    Args:
        hu: `(Z, Y, X)` float32 Hounsfield units, z ascending along the slice normal.
        spacing: ``(dz, dy, dx)`` voxel size in mm.
        origin: patient-space ``(x, y, z)`` mm of voxel ``[0, 0, 0]``.
        direction: `(3, 3)` rows = unit vectors of the z, y, x array axes in patient space
            (row 0 is the slice normal, row 1 the column direction, row 2 the row direction).
        series_uid: the ``SeriesInstanceUID``.
        info: non-identifying acquisition fields (see :data:`INFO_FIELDS`).
    """

    hu: np.ndarray = field(repr=False)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(repr=False)
    series_uid: str
    info: dict[str, object] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"CTVolume(shape={self.shape}, spacing={self.spacing}, origin={self.origin}, "
                f"normal={self.normal.round(4).tolist()}, series_uid={self.series_uid!r}, info={self.info})")

    @property
    def shape(self) -> tuple[int, int, int]:
        """`(Z, Y, X)`."""
        return tuple(self.hu.shape)

    @property
    def normal(self) -> np.ndarray:
        """The slice normal (unit vector along increasing z)."""
        return self.direction[0]


def window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map HU to [0, 1] through a display window (values outside are clipped).

    Args:
        hu: Hounsfield units, any shape.
        center: window center (level) in HU; see :data:`WINDOWS` for named presets.
        width: window width in HU, > 0.

    Returns:
        float32 array of the same shape: ``clip((hu - (center - width / 2)) / width, 0, 1)``.
    """
    if not width > 0:
        raise ValueError(f"window width must be > 0 HU; got {width}.")
    low = center - width / 2.0
    return np.clip((np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(width), 0.0, 1.0)


def _read_file(path: Path) -> Dataset:
    """Read one DICOM file completely (pixel data included), with a clear error.

    Args:
        path: the file.
    """
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError as err:
        raise DataFileError(f"{path} is not a DICOM file ({err}). Move non-DICOM files out of the "
                            "series folder.") from err
    except Exception as err:  # pydicom raises many types on damaged files
        raise DataFileError(f"Cannot read DICOM file {path}: {err}. The file is truncated or corrupt; "
                            "replace it with a good copy.") from err


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    """Return a numeric multi-valued tag as float64, raising if it is absent or malformed.

    Args:
        ds: the dataset.
        keyword: the DICOM keyword (``ImagePositionPatient`` ...).
        n: the number of values expected.
        path: the file, named in errors.
    """
    value = ds.get(keyword)
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (n,):
        raise DataFileError(f"{path}: the tag {keyword} is missing or does not hold {n} numbers; "
                            "the reader needs it to place the slice.")
    return arr


def _info(ds: Dataset) -> dict[str, object]:
    """Copy the whitelisted, non-identifying acquisition fields of one slice.

    Args:
        ds: the dataset (first slice of the series).
    """
    info: dict[str, object] = {}
    for keyword, name in INFO_FIELDS.items():
        if keyword not in ds or ds[keyword].value in (None, ""):
            continue
        elem = ds[keyword]
        if elem.VR in _NUMERIC_VRS and elem.VM == 1:
            info[name] = float(elem.value)
        elif elem.VM > 1:
            info[name] = "\\".join(str(v) for v in elem.value)
        else:
            info[name] = str(elem.value)
    return info


def _hu(ds: Dataset, path: Path) -> np.ndarray:
    """Decode one slice and convert it to HU.

    Args:
        ds: the dataset.
        path: the file, named in errors.

    Returns:
        `(Y, X)` float32 HU.
    """
    try:
        stored = ds.pixel_array
    except Exception as err:  # truncated pixel data, unsupported compression, ...
        raise DataFileError(f"Cannot decode the pixel data of {path}: {err}. The file is truncated or "
                            "corrupt (or compressed with a codec that is not installed).") from err
    if stored.ndim != 2:
        raise DicomSeriesError(f"{path}: pixel data has shape {stored.shape}; only single-frame "
                               "grayscale slices are supported.")
    return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)


def _volume(items: list[tuple[Path, Dataset]], where: Path, spacing_tol: float) -> CTVolume:
    """Check that the slices form one CT volume and stack them.

    Args:
        items: ``(file, dataset)`` pairs, in any order.
        where: the folder or file, named in errors.
        spacing_tol: largest allowed deviation of a slice gap from the median gap, as a fraction.
    """
    uids = Counter(str(ds.get("SeriesInstanceUID", "<none>")) for _, ds in items)
    if len(uids) > 1:
        listing = ", ".join(f"{uid} ({n} files)" for uid, n in uids.most_common())
        raise DicomSeriesError(f"{where} mixes {len(uids)} series: {listing}. Put each series in its own folder.")
    for path, ds in items:
        modality = str(ds.get("Modality", ""))
        if modality != "CT":
            raise DicomSeriesError(f"{path}: Modality is {modality or 'missing'!r}, not 'CT'; "
                                   "this reader only reads CT (Hounsfield units).")
        if "PixelData" not in ds:
            raise DataFileError(f"{path} has no pixel data (a truncated file, or a non-image object). "
                                "Replace it or move it out of the series folder.")
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise DicomSeriesError(f"{path} is a multi-frame (enhanced) image; only single-slice files are supported.")

    path0, ds0 = items[0]
    iop0 = _floats(ds0, "ImageOrientationPatient", 6, path0)
    ps0 = _floats(ds0, "PixelSpacing", 2, path0)
    shape0 = (int(ds0.get("Rows", 0)), int(ds0.get("Columns", 0)))
    for path, ds in items[1:]:
        if not np.allclose(_floats(ds, "ImageOrientationPatient", 6, path), iop0, atol=1e-4):
            raise DicomSeriesError(f"{path}: ImageOrientationPatient differs from {path0.name}; "
                                   "the slices are not parallel, so they do not form one volume.")
        if not np.allclose(_floats(ds, "PixelSpacing", 2, path), ps0, rtol=1e-4):
            raise DicomSeriesError(f"{path}: PixelSpacing differs from {path0.name} ({list(ps0)} mm).")
        if (int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) != shape0:
            raise DicomSeriesError(f"{path}: slice size differs from {path0.name} ({shape0[0]}x{shape0[1]}).")

    row, col = iop0[:3], iop0[3:]  # row: direction of increasing column index (x); col: of increasing row (y)
    normal = np.cross(row, col)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise DataFileError(f"{path0}: ImageOrientationPatient {list(iop0)} is not two orthogonal unit vectors.")
    positions = np.stack([_floats(ds, "ImagePositionPatient", 3, p) for p, ds in items])  # `(Z, 3)`
    order = np.argsort(positions @ normal, kind="stable")
    items = [items[i] for i in order]
    positions = positions[order]
    along = positions @ normal  # `(Z,)` mm along the normal
    if len(items) > 1:
        gaps = np.diff(along)
        same = np.flatnonzero(gaps < 1e-3)
        if len(same):
            i = same[0]
            raise DicomSeriesError(f"{where}: {items[i][0].name} and {items[i + 1][0].name} lie at the same "
                                   "position; remove the duplicate slice.")
        dz = float(np.median(gaps))
        off = np.flatnonzero(np.abs(gaps - dz) > spacing_tol * dz)
        if len(off):
            i = off[0]
            raise DicomSeriesError(
                f"{where}: uneven slice spacing: {gaps[i]:.3f} mm between {items[i][0].name} and "
                f"{items[i + 1][0].name}, {dz:.3f} mm elsewhere ({len(off)} uneven gaps). A slice is "
                "probably missing; a volume with gaps would have wrong geometry.")
    else:
        thick = ds0.get("SpacingBetweenSlices") or ds0.get("SliceThickness")
        dz = float(thick) if thick not in (None, "") else float("nan")

    hu = np.stack([_hu(ds, p) for p, ds in items])  # `(Z, Y, X)`
    if hu.shape[1:] != shape0:
        raise DataFileError(f"{where}: decoded slices are {hu.shape[1:]}, the headers say {shape0}.")
    return CTVolume(
        hu=hu,
        spacing=(dz, float(ps0[0]), float(ps0[1])),
        origin=tuple(float(v) for v in positions[0]),
        direction=np.stack([normal, col, row]).astype(np.float64),
        series_uid=next(iter(uids)),
        info=_info(items[0][1]),
    )


def read_ct_series(folder: str | os.PathLike, spacing_tol: float = 0.1) -> CTVolume:
    """Read the CT series stored in ``folder`` (one file per slice, no subfolders).

    Args:
        folder: the series folder; hidden files and ``DICOMDIR`` are skipped, every other file
            must be a DICOM slice of the series.
        spacing_tol: allowed deviation of a slice gap from the median gap, as a fraction of it.

    Returns:
        The :class:`CTVolume`, slices sorted along the slice normal.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDatasetError(f"DICOM series folder not found: {folder}")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.name not in _SKIP_NAMES)
    if not files:
        raise MissingDatasetError(f"{folder} holds no DICOM files (subfolders are not searched; "
                                  "pass the folder of one series).")
    return _volume([(p, _read_file(p)) for p in files], folder, spacing_tol)


def read_ct_file(path: str | os.PathLike) -> CTVolume:
    """Read a single-file CT series (one slice) as a `(1, Y, X)` volume.

    ``dz`` is the header's ``SpacingBetweenSlices``, else ``SliceThickness``, else NaN.

    Args:
        path: the DICOM file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDatasetError(f"DICOM file not found: {path}")
    return _volume([(path, _read_file(path))], path, spacing_tol=0.1)
