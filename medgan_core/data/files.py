"""Careful file readers shared by every dataset module.

Each function reads one file completely and turns any failure (missing, truncated, corrupt,
wrong keys or columns) into a :class:`~medgan_core.data.errors.DataError` whose message names
the file and says what is wrong. Dataset readers build on these, and so does
``medgan data check``, which is why they read the *whole* file (``Image.load()``, every npz
array), not just its header.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from medgan_core.data.errors import DataFileError, MissingDatasetError


def require_file(path: Path, hint: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`MissingDatasetError` naming it.

    Args:
        path: the file that must exist.
        hint: an extra sentence on where the file comes from or how to obtain it.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDatasetError(f"Missing file: {path}" + (f"\n  {hint}" if hint else ""))
    return path


def read_image(path: Path, mode: str | None = None) -> np.ndarray:
    """Decode an image file fully and return it as a ``uint8`` array.

    Args:
        path: the image file (JPEG, PNG, ...).
        mode: PIL mode to convert to (``"L"`` grayscale, ``"RGB"``); ``None`` keeps the file's.

    Returns:
        `(H, W)` for grayscale or `(H, W, C)` arrays of dtype ``uint8``.
    """
    path = require_file(Path(path))
    try:
        with Image.open(path) as img:
            img.load()  # forces a full decode: truncated files fail here, not later
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            return np.asarray(img, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFileError(f"Cannot decode image {path}: {err}. Replace the file with a good copy.") from err


def load_npz(path: Path, keys: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file, checking that ``keys`` are present.

    Args:
        path: the ``.npz`` file.
        keys: names that must be in the file.

    Returns:
        A plain dict of arrays (the file is closed afterwards).
    """
    path = require_file(Path(path))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise DataFileError(f"Cannot load {path}: {err}. The file is truncated or corrupt; "
                            "replace it with a good copy.") from err
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataFileError(f"{path} lacks the arrays {missing}; it has {sorted(arrays)}.")
    return arrays


def read_csv(path: Path, columns: Iterable[str] = (), **kwargs) -> pd.DataFrame:
    """Read a CSV file, checking that the required ``columns`` are present.

    Args:
        path: the CSV file.
        columns: column names that must be present.
        **kwargs: passed to :func:`pandas.read_csv`.
    """
    path = require_file(Path(path))
    try:
        frame = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise DataFileError(f"Cannot parse CSV {path}: {err}") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFileError(f"{path} lacks the columns {missing}; it has {list(frame.columns)}.")
    return frame


def parse_xml(path: Path) -> ET.Element:
    """Parse an XML file and return its root element.

    Args:
        path: the XML file.
    """
    path = require_file(Path(path))
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DataFileError(f"Cannot parse XML {path}: {err}") from err


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file.

    Args:
        path: the file.
        chunk: bytes read at a time.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256sums(folder: Path, listing: str = "SHA256SUMS") -> tuple[int, list[str]]:
    """Check every file listed in ``folder/listing`` (``sha256sum`` format).

    Args:
        folder: the dataset folder holding the listing.
        listing: the name of the checksum file.

    Returns:
        ``(number of files checked, problems)``, one problem string per missing or
        mismatching file, naming it.
    """
    folder = Path(folder)
    sums = require_file(folder / listing)
    problems: list[str] = []
    checked = 0
    for lineno, line in enumerate(sums.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            problems.append(f"{sums}:{lineno}: not a 'sha256  path' line")
            continue
        expected, name = parts[0].lower(), parts[1].strip().lstrip("*")
        target = folder / name
        checked += 1
        if not target.is_file():
            problems.append(f"{target}: listed in {listing} but missing")
        elif sha256_of(target) != expected:
            problems.append(f"{target}: sha256 mismatch (file changed or damaged; replace it)")
    return checked, problems


def select_npz_rows(arrays: dict[str, np.ndarray], index: pd.DataFrame, npz_name: str) -> np.ndarray:
    """The images of an npz dataset at the rows an index names, checked against its file names.

    Used by the npz-based chest X-ray readers, whose ``load_index`` keeps the array position in
    ``index`` and the source file name in ``filename``.

    Args:
        arrays: the npz content, with ``images`` and ``filename``.
        index: a frame from the dataset's ``load_index`` (possibly filtered).
        npz_name: the npz file's name, for messages.
    """
    from medgan_core.data.errors import LabelMismatchError

    if not {"index", "filename"} <= set(index.columns):
        raise ValueError("index must come from load_index (it needs the columns 'index' and 'filename').")
    pos = index["index"].to_numpy(dtype=np.int64)
    n = len(arrays["images"])
    if len(pos) and (pos.min() < 0 or pos.max() >= n):
        raise LabelMismatchError(f"index rows point outside the {n} images of {npz_name}; rebuild it with load_index.")
    bad = np.flatnonzero(arrays["filename"].astype(str)[pos] != index["filename"].to_numpy().astype(str))
    if len(bad):
        raise LabelMismatchError(f"index file names disagree with {npz_name} at rows {bad[:5].tolist()}; "
                                 "the index belongs to another copy of the data, rebuild it with load_index.")
    return arrays["images"][pos]
