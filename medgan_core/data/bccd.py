"""BCCD blood smears: VOC boxes of RBC / WBC / platelets, cell crops and WBC subtypes.

Layout of ``<data_dir>/bccd_blood/`` (see the data README, section 2)::

    JPEGImages/BloodImage_NNNNN.jpg         364 smears, 640x480 RGB
    Annotations/BloodImage_NNNNN.xml        Pascal-VOC boxes: RBC 4155, WBC 372, Platelets 361
    ImageSets/Main/{train,val,test}.txt     the repository split: 205 / 87 / 72 image ids
    wbc_subtype_labels.csv                  ``,Image,Category``: WBC subtype(s) of BloodImage_N

Facts checked on the staged data, and how this module handles them:

- every image is in exactly one of ``train.txt``, ``val.txt``, ``test.txt`` (``trainval.txt``
  is their union and is ignored). An image listed in none would be assigned to ``train``
  (deterministic, and visible in the index); an id in two split files, or naming no image, is a
  :class:`LabelMismatchError`;
- two RBC boxes have zero area (``BloodImage_00338`` and ``BloodImage_00343``); they stay in
  :func:`load_index` (so the totals match the README) with ``degenerate=True``, and
  :func:`crop_cells` skips them;
- 14 images hold two WBC boxes and 6 hold none; :func:`wbc_crops` takes the largest WBC box
  of an image and drops subtype-labelled images without a WBC box (203 neutrophils, 84
  eosinophils, 33 lymphocytes, 20 monocytes, 2 basophils remain before ``min_count``);
- ``wbc_subtype_labels.csv`` has 411 rows: 47 name images that are not staged, 15 staged
  images list two subtypes (7 of them the same subtype twice; all 15 are excluded, since the
  crop cannot be tied to one label for sure) and 1 is blank. Single-subtype counts:
  NEUTROPHIL 205, EOSINOPHIL 87, LYMPHOCYTE 33, MONOCYTE 20, BASOPHIL 3.

Public API: :data:`FOLDER`, :data:`CLASSES`, :data:`SUBTYPES`, :func:`load_index`,
:func:`crop_cells`, :func:`wbc_subtypes`, :func:`wbc_crops`, :func:`load_cell_types` and
:func:`load_wbc_subtypes` (the two classification tasks of experiment 01, split by smear), :func:`verify`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from medgan_core.data.errors import DataError, DataFileError, LabelMismatchError, MissingDatasetError
from medgan_core.data.files import parse_xml, read_csv, read_image
from medgan_core.data.paths import dataset_dir

FOLDER = "bccd_blood"
CLASSES = ("RBC", "WBC", "Platelets")
SUBTYPES = ("NEUTROPHIL", "EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "BASOPHIL")  # most to least frequent
SPLITS = ("train", "val", "test")
SUBTYPE_CSV = "wbc_subtype_labels.csv"
BOX_COLUMNS = ["image_id", "path", "split", "label", "label_idx", "xmin", "ymin", "xmax", "ymax",
               "width", "height", "degenerate"]
PAD_MODES = ("edge", "constant", "reflect")
_MAX_LISTED = 10


def parse_annotation(xml_path: Path) -> pd.DataFrame:
    """Read one VOC XML into one row per box, checking it describes the image it is named after.

    Args:
        xml_path: ``Annotations/BloodImage_NNNNN.xml``.

    Returns:
        Columns ``image_id, label, xmin, ymin, xmax, ymax, width, height`` (pixel corners, and
        the image size the XML declares).

    Raises:
        DataFileError: the XML cannot be parsed, lacks a field, has an unknown class name or a
            box outside the image.
        LabelMismatchError: its ``<filename>`` names another image.
    """
    xml_path = Path(xml_path)
    root = parse_xml(xml_path)
    image_id = xml_path.stem
    filename = (root.findtext("filename") or "").strip()
    if filename != f"{image_id}.jpg":
        raise LabelMismatchError(f"{xml_path}: <filename> is {filename!r}, expected '{image_id}.jpg'. "
                                 "The annotation belongs to another image; restore the original XML.")
    try:
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
        rows = []
        for obj in root.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if name not in CLASSES:
                raise DataFileError(f"{xml_path}: unknown object class {name!r}; expected one of {CLASSES}.")
            corners = [int(float(obj.findtext(f"bndbox/{k}"))) for k in ("xmin", "ymin", "xmax", "ymax")]
            rows.append((image_id, name, *corners, width, height))
    except DataError:
        raise
    except (TypeError, ValueError) as err:  # a missing tag gives None -> TypeError
        raise DataFileError(f"{xml_path}: missing or non-numeric <size> or <bndbox> field ({err}).") from err
    boxes = pd.DataFrame(rows, columns=["image_id", "label", "xmin", "ymin", "xmax", "ymax", "width", "height"])
    outside = ((boxes.xmin < 0) | (boxes.ymin < 0) | (boxes.xmax > boxes.width) | (boxes.ymax > boxes.height)
               | (boxes.xmax < boxes.xmin) | (boxes.ymax < boxes.ymin))
    if outside.any():
        raise DataFileError(f"{xml_path}: boxes outside the {width}x{height} image or inverted: "
                            f"{boxes.loc[outside, ['label', 'xmin', 'ymin', 'xmax', 'ymax']].to_dict('records')}")
    return boxes


def _read_splits(folder: Path, image_ids: set[str]) -> dict[str, str]:
    """Map each image id to its repository split, checking the split files against the images.

    Args:
        folder: the dataset folder.
        image_ids: ids of the images on disk.
    """
    split_of: dict[str, str] = {}
    for split in SPLITS:
        path = folder / "ImageSets" / "Main" / f"{split}.txt"
        if not path.is_file():
            raise MissingDatasetError(f"Missing split file {path} (expected ImageSets/Main/{{train,val,test}}.txt).")
        for image_id in path.read_text().split():
            if image_id in split_of:
                raise LabelMismatchError(f"{path}: {image_id} is already in {split_of[image_id]}.txt; "
                                         "an image must be in one split only.")
            if image_id not in image_ids:
                raise LabelMismatchError(f"{path}: lists {image_id}, but JPEGImages/{image_id}.jpg does not exist.")
            split_of[image_id] = split
    for image_id in image_ids - split_of.keys():
        split_of[image_id] = "train"  # in no split file: deterministic fallback (none on the staged data)
    return split_of


def _pair_files(folder: Path) -> tuple[list[str], list[str]]:
    """Return ``(ids with both a JPEG and an XML, one line per unpaired file)``.

    Args:
        folder: the dataset folder.
    """
    for sub in ("JPEGImages", "Annotations"):
        if not (folder / sub).is_dir():
            raise MissingDatasetError(f"Missing folder {folder / sub} "
                                      "(expected JPEGImages/*.jpg and Annotations/*.xml).")
    jpgs = {p.stem for p in (folder / "JPEGImages").glob("*.jpg")}
    xmls = {p.stem for p in (folder / "Annotations").glob("*.xml")}
    unpaired = [f"{folder / 'JPEGImages' / (i + '.jpg')}: image has no annotation Annotations/{i}.xml"
                for i in sorted(jpgs - xmls)]
    unpaired += [f"{folder / 'Annotations' / (i + '.xml')}: annotation has no image JPEGImages/{i}.jpg"
                 for i in sorted(xmls - jpgs)]
    return sorted(jpgs & xmls), unpaired


def load_index(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per box of every VOC XML, with the image's repository split.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).

    Returns:
        Columns ``image_id, path, split, label, label_idx, xmin, ymin, xmax, ymax, width,
        height, degenerate`` (``label`` in :data:`CLASSES`; ``path`` is the JPEG; ``degenerate``
        marks zero-area boxes). Real totals: RBC 4155, WBC 372, Platelets 361.

    Raises:
        MissingDatasetError, DataFileError, LabelMismatchError: see :func:`parse_annotation`;
        also for an image without an XML (or the reverse) and for bad split files.
    """
    folder = dataset_dir(FOLDER, data_dir)
    ids, unpaired = _pair_files(folder)
    if unpaired:
        raise LabelMismatchError("BCCD images and annotations disagree:\n  " + "\n  ".join(unpaired[:_MAX_LISTED]))
    split_of = _read_splits(folder, set(ids))
    boxes = pd.concat([parse_annotation(folder / "Annotations" / f"{i}.xml") for i in ids], ignore_index=True)
    boxes["split"] = boxes["image_id"].map(split_of)
    boxes["path"] = [str(folder / "JPEGImages" / f"{i}.jpg") for i in boxes["image_id"]]
    boxes["label_idx"] = boxes["label"].map({c: k for k, c in enumerate(CLASSES)}).astype(np.int64)
    boxes["degenerate"] = (boxes.xmax <= boxes.xmin) | (boxes.ymax <= boxes.ymin)
    return boxes[BOX_COLUMNS]


def square_window(xmin: float, ymin: float, xmax: float, ymax: float, margin: float) -> tuple[int, int, int]:
    """Square window centred on a box: ``(x0, y0, side)``, side = max box side * (1 + margin).

    Args:
        xmin: left edge of the box (pixels).
        ymin: top edge.
        xmax: right edge (exclusive).
        ymax: bottom edge (exclusive).
        margin: extra context as a fraction of the longer box side (0 = tight).
    """
    side = max(1, int(round(max(xmax - xmin, ymax - ymin) * (1.0 + margin))))
    x0 = int(np.floor((xmin + xmax) / 2.0 - side / 2.0))
    y0 = int(np.floor((ymin + ymax) / 2.0 - side / 2.0))
    return x0, y0, side


def crop_square(image: np.ndarray, x0: int, y0: int, side: int, pad_mode: str = "edge") -> np.ndarray:
    """Cut ``image[y0:y0+side, x0:x0+side]``, padding the part that falls outside the image.

    Args:
        image: `(H, W, C)` array.
        x0: left column of the window (may be negative).
        y0: top row of the window (may be negative).
        side: window side in pixels.
        pad_mode: :func:`numpy.pad` mode for the outside part: ``"edge"`` repeats the border
            pixels, ``"constant"`` fills black, ``"reflect"`` mirrors.

    Returns:
        `(side, side, C)` array.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}.")
    h, w = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"window x0={x0}, y0={y0}, side={side} lies outside the {w}x{h} image.")
    patch = image[cy0:cy1, cx0:cx1]
    pad = ((cy0 - y0, y0 + side - cy1), (cx0 - x0, x0 + side - cx1)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(patch, pad, mode=pad_mode) if any(p for pair in pad for p in pair) else patch


def crop_cells(boxes: pd.DataFrame, size: int, data_dir: str | os.PathLike | None = None,
               margin: float = 0.1, pad_mode: str = "edge", progress: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """Square crops centred on each box, resized to ``size`` x ``size`` (antialiased).

    Each JPEG is decoded once per call, however many of its boxes are asked for. Zero-area
    boxes (``degenerate``) are skipped; the returned frame says which boxes the crops are.

    Args:
        boxes: rows of :func:`load_index` (any subset, any order).
        size: output side in pixels.
        data_dir: the data folder, used only when ``boxes`` has no ``path`` column.
        margin: context around the cell, as a fraction of the longer box side.
        pad_mode: how to fill the part of a window beyond the image border (see :func:`crop_square`).
        progress: show a tqdm progress bar over images.

    Returns:
        ``(crops, frame)``: `(N, size, size, 3)` ``uint8`` crops and the matching rows of
        ``boxes`` (index reset), in the order of ``boxes``.
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int (e.g. 32), got {size!r}.")
    if margin < 0:
        raise ValueError(f"margin must be >= 0 (a fraction of the box side), got {margin}.")
    missing = {"image_id", "xmin", "ymin", "xmax", "ymax"} - set(boxes.columns)
    if missing:
        raise ValueError(f"boxes lacks the columns {sorted(missing)}; pass rows of bccd.load_index().")
    degenerate = (boxes.xmax <= boxes.xmin) | (boxes.ymax <= boxes.ymin)
    frame = boxes.loc[~degenerate].reset_index(drop=True)
    if "path" in frame.columns:
        paths = dict(zip(frame["image_id"], frame["path"]))
    else:
        folder = dataset_dir(FOLDER, data_dir)
        paths = {i: str(folder / "JPEGImages" / f"{i}.jpg") for i in frame["image_id"]}
    crops = np.empty((len(frame), size, size, 3), dtype=np.uint8)  # `(N, size, size, 3)`
    corners = frame[["xmin", "ymin", "xmax", "ymax"]].to_numpy(dtype=np.float64)  # `(N, 4)`
    rows_of = frame.groupby("image_id", sort=False).indices  # image id -> row positions
    for image_id, rows in tqdm(rows_of.items(), total=len(rows_of), desc="BCCD crops", disable=not progress):
        image = read_image(Path(paths[image_id]), mode="RGB")  # `(H, W, 3)`, decoded once
        for r in rows:
            x0, y0, side = square_window(*corners[r], margin)
            patch = crop_square(image, x0, y0, side, pad_mode)  # `(side, side, 3)`
            crops[r] = np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.LANCZOS))
    return crops, frame


def _subtype_rows(folder: Path) -> pd.DataFrame:
    """Read ``wbc_subtype_labels.csv`` into ``image_no, image_id, category`` (raw, '' if blank).

    Args:
        folder: the dataset folder.
    """
    path = folder / SUBTYPE_CSV
    raw = read_csv(path, columns=("Image", "Category"), dtype={"Category": str})
    try:
        numbers = raw["Image"].astype(np.int64)
    except (TypeError, ValueError) as err:
        raise DataFileError(f"{path}: column Image must hold integers N of BloodImage_N ({err}).") from err
    if numbers.duplicated().any():
        raise DataFileError(f"{path}: images listed twice: {numbers[numbers.duplicated()].tolist()[:_MAX_LISTED]}")
    return pd.DataFrame({"image_no": numbers.to_numpy(),
                         "image_id": [f"BloodImage_{n:05d}" for n in numbers],
                         "category": raw["Category"].fillna("").str.strip().to_numpy()})


def wbc_subtypes(data_dir: str | os.PathLike | None = None, min_count: int = 0) -> pd.DataFrame:
    """One row per row of ``wbc_subtype_labels.csv``, with the subtype and whether it is usable.

    Exclusion reasons, first match wins: ``"no image"`` (the CSV names an image that is not
    staged), ``"blank"``, ``"two subtypes"`` (the Category lists two cells),
    ``"<subtype> (<n> images)"`` (a subtype with fewer than ``min_count`` single-subtype staged
    images, e.g. ``"basophil (3 images)"``).

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        min_count: drop subtypes with fewer usable images than this (0 keeps all).

    Returns:
        Columns ``image_no, image_id, split, category, label, usable, excluded_reason,
        n_wbc_boxes``; ``label`` is the single subtype (``""`` otherwise), ``split`` is ``""``
        for rows without an image.

    Raises:
        LabelMismatchError: a staged image has no row in the CSV.
        DataFileError: an unknown subtype name.
    """
    return _subtype_table(dataset_dir(FOLDER, data_dir), load_index(data_dir), min_count)


def _subtype_table(folder: Path, boxes: pd.DataFrame, min_count: int) -> pd.DataFrame:
    """The frame of :func:`wbc_subtypes`, from already-parsed boxes.

    Args:
        folder: the dataset folder.
        boxes: the frame of :func:`load_index`.
        min_count: drop subtypes with fewer usable images than this.
    """
    path = folder / SUBTYPE_CSV
    frame = _subtype_rows(folder)
    staged = set(boxes["image_id"])
    unlabelled = sorted(staged - set(frame["image_id"]))
    if unlabelled:
        raise LabelMismatchError(f"{path}: no subtype row for the images {unlabelled[:_MAX_LISTED]}; "
                                 "restore the original CSV.")
    names = [[n.strip() for n in cat.split(",") if n.strip()] for cat in frame["category"]]
    unknown = sorted({n for parts in names for n in parts} - set(SUBTYPES))
    if unknown:
        raise DataFileError(f"{path}: unknown subtypes {unknown}; expected names from {SUBTYPES}.")
    frame["label"] = [parts[0] if len(parts) == 1 else "" for parts in names]
    has_image = frame["image_id"].isin(staged).to_numpy()
    reasons = ["no image" if not img else "blank" if not parts else "two subtypes" if len(parts) > 1 else ""
               for img, parts in zip(has_image, names)]
    counts = frame.loc[[r == "" for r in reasons], "label"].value_counts()  # single-subtype staged images
    for k, (reason, label) in enumerate(zip(reasons, frame["label"])):
        if reason == "" and counts[label] < min_count:
            reasons[k] = f"{label.lower()} ({counts[label]} image{'s' if counts[label] != 1 else ''})"
    frame["excluded_reason"] = reasons
    frame["usable"] = frame["excluded_reason"] == ""
    split_of = boxes.drop_duplicates("image_id").set_index("image_id")["split"]
    frame["split"] = frame["image_id"].map(split_of).fillna("")
    wbc_per_image = boxes[boxes["label"] == "WBC"].groupby("image_id").size()
    frame["n_wbc_boxes"] = frame["image_id"].map(wbc_per_image).fillna(0).astype(np.int64)
    return frame[["image_no", "image_id", "split", "category", "label", "usable", "excluded_reason", "n_wbc_boxes"]]


def wbc_crops(size: int, data_dir: str | os.PathLike | None = None, min_count: int = 10, margin: float = 0.1,
              progress: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """The WBC crop of every usable subtype-labelled image, with its subtype and split.

    If an image has several WBC boxes the largest one (by area) is taken; images without a WBC
    box are dropped (6 on the staged data, see the module docstring). ``min_count`` is applied
    to the counts of :func:`wbc_subtypes` (basophil: 3 images).

    Args:
        size: output side in pixels.
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        min_count: drop subtypes with fewer usable images than this.
        margin: context around the cell, as a fraction of the longer box side.
        progress: show a tqdm progress bar.

    Returns:
        ``(crops, frame)``: `(N, size, size, 3)` ``uint8`` crops; the frame has the box columns
        of :func:`load_index` with ``label`` = subtype, ``label_idx`` its position in
        ``frame.attrs["classes"]`` (the kept subtypes, in :data:`SUBTYPES` order) and
        ``n_wbc_boxes``.
    """
    boxes = load_index(data_dir)
    subtypes = _subtype_table(dataset_dir(FOLDER, data_dir), boxes, min_count)
    keep = subtypes[subtypes["usable"] & (subtypes["n_wbc_boxes"] > 0)]
    wbc = boxes[(boxes["label"] == "WBC") & boxes["image_id"].isin(keep["image_id"])].copy()
    wbc["area"] = (wbc.xmax - wbc.xmin) * (wbc.ymax - wbc.ymin)
    largest = wbc.sort_values(["image_id", "area"], ascending=[True, False], kind="stable").drop_duplicates("image_id")
    largest = largest.drop(columns=["area", "label", "label_idx"])
    largest = largest.merge(keep[["image_id", "label", "n_wbc_boxes"]], on="image_id", how="left")
    classes = tuple(s for s in SUBTYPES if s in set(largest["label"]))
    largest["label_idx"] = largest["label"].map({c: k for k, c in enumerate(classes)}).astype(np.int64)
    largest = largest[BOX_COLUMNS + ["n_wbc_boxes"]]
    crops, frame = crop_cells(largest, size, data_dir, margin=margin, progress=progress)
    frame.attrs["classes"] = classes
    return crops, frame


Split = tuple[np.ndarray, np.ndarray]  # uint8 images `(N, S, S, 3)`, int64 labels `(N,)`


def _by_split(images: np.ndarray, frame: pd.DataFrame) -> dict[str, Split]:
    """``{split: (images, labels)}`` from crops and their frame (``split``, ``label_idx``)."""
    return {s: (images[(frame.split == s).to_numpy()], frame.label_idx.to_numpy()[(frame.split == s).to_numpy()])
            for s in SPLITS}


def load_cell_types(size: int, data_dir: str | os.PathLike | None = None, max_smears_per_split: int = 0,
                    progress: bool = False, smears: bool = False
                    ) -> tuple[dict[str, Split], list[str]] | tuple[dict[str, Split], list[str], dict[str, np.ndarray]]:
    """Cell types (RBC / WBC / platelets): every non-degenerate box as a square crop, split by source smear.

    Cells cropped from one smear share its stain and its patient, so they are not independent:
    with ``smears=True`` the smear (image id) of every crop comes back too, for intervals that
    resample whole smears (``stats.cluster_bootstrap_resample_ci``, ``realism.c2st_study(groups=)``,
    ``utility.run_utility_study(test_groups=)``).

    Args:
        size: crop side in pixels.
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        max_smears_per_split: keep only the first this many smears of each split (0 = all; smoke runs).
        progress: show a progress bar while cropping.
        smears: also return ``{split: (N,) smear id of each crop}``, aligned with the split's images.

    Returns:
        ``({"train"|"val"|"test": (images, labels)}, class names)``, labels indexing :data:`CLASSES`;
        with ``smears=True`` a third item, the smear ids per split.
    """
    if max_smears_per_split < 0:
        raise ValueError(f"max_smears_per_split must be >= 0 (0 = all), got {max_smears_per_split}.")
    boxes = load_index(data_dir)
    if max_smears_per_split:
        keep = [i for s in SPLITS for i in sorted(boxes[boxes.split == s].image_id.unique())[:max_smears_per_split]]
        boxes = boxes[boxes.image_id.isin(keep)]
    images, frame = crop_cells(boxes, size, data_dir, progress=progress)
    if not smears:
        return _by_split(images, frame), list(CLASSES)
    smear_ids = {s: frame.image_id.to_numpy()[(frame.split == s).to_numpy()] for s in SPLITS}
    return _by_split(images, frame), list(CLASSES), smear_ids


def load_wbc_subtypes(size: int, data_dir: str | os.PathLike | None = None, min_count: int = 10,
                      progress: bool = False) -> tuple[dict[str, Split], list[str], pd.DataFrame]:
    """White-cell subtypes: the largest WBC box of each usable subtype-labelled smear, split by smear.

    Args:
        size: crop side in pixels.
        data_dir: the data folder.
        min_count: subtypes with fewer usable smears are dropped (basophils: 3).
        progress: show a progress bar while cropping.

    Returns:
        ``(splits, class names, exclusions)``: exclusions counts the CSV rows left out per reason
        (``no image``, ``blank``, ``two subtypes``, ``basophil (3 images)``) and the usable smears
        without a WBC box.
    """
    images, frame = wbc_crops(size, data_dir, min_count=min_count, progress=progress)
    table = wbc_subtypes(data_dir, min_count=min_count)
    reasons = table.loc[~table.usable, "excluded_reason"].value_counts()
    no_box = int((table.usable & (table.n_wbc_boxes == 0)).sum())
    exclusions = pd.concat([reasons, pd.Series({"usable label but no WBC box": no_box})]).rename("rows").to_frame()
    exclusions.index.name = "excluded because"
    return _by_split(images, frame), list(frame.attrs["classes"]), exclusions


def verify(data_dir: str | os.PathLike | None = None) -> tuple[int, list[str]]:
    """Decode every JPEG, parse every XML, split file and the subtype CSV.

    Returns ``(files read, problem lines)``; each line names the file and what is wrong.
    Only a missing dataset folder raises.

    Args:
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
    """
    folder = dataset_dir(FOLDER, data_dir)
    checked, problems = 0, []
    try:
        ids, unpaired = _pair_files(folder)
        problems.extend(unpaired)
    except DataError as err:
        return checked, [str(err)]
    for path in sorted((folder / "JPEGImages").glob("*.jpg")):
        checked += 1
        try:
            read_image(path, mode="RGB")
        except DataError as err:
            problems.append(str(err))
    for path in sorted((folder / "Annotations").glob("*.xml")):
        checked += 1
        try:
            parse_annotation(path)
        except DataError as err:
            problems.append(str(err))
    checked += len(SPLITS)
    try:
        _read_splits(folder, set(ids))
    except DataError as err:
        problems.append(str(err))
    checked += 1
    try:
        labelled = set(_subtype_rows(folder)["image_id"])
        problems.extend(f"{folder / 'JPEGImages' / (i + '.jpg')}: no row in {folder / SUBTYPE_CSV}"
                        for i in ids if i not in labelled)
    except DataError as err:
        problems.append(str(err))
    return checked, problems
