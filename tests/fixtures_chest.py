"""Tiny synthetic chest X-ray datasets in the exact on-disk layouts of the real folders.

Each ``write_*`` function builds one dataset folder under a data folder ``root`` (a pytest
``tmp_path``) with a handful of random images and returns facts the tests check against
(the arrays written, which rows are duplicates, ...). Layouts follow ``../shared/data/README.md``
sections 4-7; images are smaller than the real ones where the readers allow it (Kermany JPEGs
are 16 px), and exactly the real size where the readers check it (128 px and 160 px npz).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgan_core.data.paths import resolve_data_dir

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_data_dir(folder: str) -> Path:
    """Return the real data folder holding ``folder``, or skip the test saying why.

    Looks in the configured data folder (``$MEDGAN_DATA``, then ``./data``), then in the
    project's ``../shared/data``.

    Args:
        folder: a dataset folder name such as ``"kermany_pediatric_cxr_224"``.
    """
    for root in (resolve_data_dir(), SHARED_DATA):
        if (root / folder).is_dir():
            return root
    pytest.skip(f"real data folder {folder!r} not found in {resolve_data_dir().resolve()} or {SHARED_DATA}; "
                "set MEDGAN_DATA to the shared data folder to run the real-data checks")


def write_covid19_radiography(root: Path, n_covid: int = 6, n_normal: int = 6, seed: int = 0) -> dict:
    """Write ``covid19_radiography_128/`` with one duplicate pair inside COVID (rows 1 and 3).

    Args:
        root: the data folder.
        n_covid: COVID images (written first, as in the real file).
        n_normal: Normal images.
        seed: seeds the random images.

    Returns:
        ``{"folder", "images" `(N, 128, 128)`, "labels" `(N,)`, "filename", "duplicates" [(1, 3)]}``.
    """
    rng = np.random.default_rng(seed)
    folder = root / "covid19_radiography_128"
    folder.mkdir(parents=True)
    n = n_covid + n_normal
    images = rng.integers(0, 256, size=(n, 128, 128), dtype=np.uint8)
    images[3] = images[1]  # an exact duplicate within COVID
    labels = np.array([1] * n_covid + [0] * n_normal, dtype=np.uint8)
    filename = np.array([f"COVID-{i + 1}.png" for i in range(n_covid)]
                        + [f"Normal-{i + 1}.png" for i in range(n_normal)])
    class_name = np.where(labels == 1, "COVID", "Normal")
    np.savez_compressed(folder / "covid19_radiography_covid_normal_128.npz", images=images, labels=labels,
                        filename=filename, class_name=class_name)
    pd.DataFrame({"index": np.arange(n), "filename": filename, "class_name": class_name, "label": labels,
                  "orig_width": 224, "orig_height": 224, "orig_mode": "RGB",
                  "sha256_original_png": [hashlib.sha256(x.tobytes()).hexdigest() for x in images]},
                 ).to_csv(folder / "covid19_radiography_covid_normal_128_meta.csv", index=False)
    return {"folder": folder, "images": images, "labels": labels, "filename": filename, "duplicates": [(1, 3)]}


# (finding, finding_group, patientid) per image of the ieee8023 fixture
IEEE_ROWS = [
    ("COVID-19", "COVID-19", "1"),
    ("COVID-19", "COVID-19", "1"),
    ("COVID-19, ARDS", "COVID-19", "2"),
    ("COVID-19", "COVID-19", "7"),  # pixel copy of row 0 under another patient id
    ("Streptococcus", "Bacterial", "3"),
    ("SARS", "Viral (non-COVID)", "4"),
    ("Pneumocystis", "Fungal", "5"),
    ("No Finding", "No Finding", "6"),
    ("ARDS", "Other (ARDS)", "8"),
    ("todo", "Unlabelled (todo)", "9"),
    ("todo", "Unlabelled (todo)", "9"),
]


def write_ieee8023(root: Path, seed: int = 0) -> dict:
    """Write ``covid_chestxray_ieee8023_160/`` with the rows of :data:`IEEE_ROWS`.

    Args:
        root: the data folder.
        seed: seeds the random images.

    Returns:
        ``{"folder", "images" `(11, 160, 160)`}``; row 3 duplicates row 0, rows 9-10 are unlabelled.
    """
    rng = np.random.default_rng(seed)
    folder = root / "covid_chestxray_ieee8023_160"
    folder.mkdir(parents=True)
    n = len(IEEE_ROWS)
    images = rng.integers(0, 256, size=(n, 160, 160), dtype=np.uint8)
    images[3] = images[0]
    finding, group, pid = (np.array(col) for col in zip(*IEEE_ROWS))
    filename = np.array([f"img-{i:02d}.jpeg" for i in range(n)])
    view = np.array(["PA", "AP", "AP Supine", "", "PA", "PA", "AP", "PA", "?", "PA", "PA"])
    size_wh = np.stack([np.arange(n) + 500, np.arange(n) + 600], axis=1).astype(np.int32)
    np.savez_compressed(folder / "ieee8023_cxr_frontal_160.npz", images=images, filename=filename, patientid=pid,
                        finding=finding, finding_group=group, view=view, orig_size_wh=size_wh)
    pd.DataFrame({"index": np.arange(n), "filename": filename, "patientid": pid, "offset": "", "sex": "M",
                  "age": 50, "finding": finding, "finding_group": group, "view": view, "survival": "",
                  "location": "", "license": "CC BY 4.0", "doi": "", "url": "",
                  "orig_width": size_wh[:, 0], "orig_height": size_wh[:, 1], "orig_mode": "L",
                  "sha256_original": ""}).to_csv(folder / "ieee8023_cxr_frontal_160_meta.csv", index=False)
    return {"folder": folder, "images": images}


def _jpeg_bytes(rng: np.random.Generator, side: int = 16) -> bytes:
    """A random RGB JPEG with R = G = B, like the Kermany files.

    Args:
        rng: the random generator.
        side: image side in pixels.
    """
    gray = rng.integers(0, 256, size=(side, side), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# (split, class, number of patients, images per patient) of the Kermany fixture
KERMANY_LAYOUT = [
    ("train", "normal", 8, 1), ("train", "bacteria", 6, 2), ("train", "virus", 8, 1),
    ("test", "normal", 2, 1), ("test", "bacteria", 2, 1), ("test", "virus", 2, 1),
]


def write_kermany(root: Path, seed: int = 0, covid: dict | None = None) -> dict:
    """Write ``kermany_pediatric_cxr_224/`` with its index, overlap and site-pair CSVs.

    One pair of byte-identical train bacteria files is marked in ``pixel_duplicate_group``.
    If ``covid`` (from :func:`write_covid19_radiography`) is given, its first two Normal
    images are flagged as Kermany duplicates in the overlap CSV and left out of domain B.

    Args:
        root: the data folder.
        seed: seeds the random images.
        covid: facts of the COVID-19 Radiography fixture written in the same ``root``.

    Returns:
        ``{"folder", "index" (the index DataFrame written), "duplicates" (row pair), "overlap"
        (flagged covid indices), "counts" {(split, class): n}}``.
    """
    rng = np.random.default_rng(seed)
    folder = root / "kermany_pediatric_cxr_224"
    rows, counter = [], 0
    for split, cls, n_patients, per_patient in KERMANY_LAYOUT:
        binary = "NORMAL" if cls == "normal" else "PNEUMONIA"
        (folder / "images" / split / binary).mkdir(parents=True, exist_ok=True)
        for p in range(n_patients):
            for k in range(per_patient):
                counter += 1
                if cls == "normal":
                    pid, name = f"IM-{counter:04d}", f"IM-{counter:04d}-0001.jpeg"
                else:
                    pid, name = f"person{p + 1}", f"person{p + 1}_{cls}_{counter}.jpeg"
                rel = f"images/{split}/{binary}/{name}"
                rows.append({"path": rel, "split": split, "label_binary": binary, "label_3class": cls,
                             "patient_id": pid, "data": _jpeg_bytes(rng)})
    bacteria = [i for i, r in enumerate(rows) if r["split"] == "train" and r["label_3class"] == "bacteria"]
    dup_a, dup_b = bacteria[0], bacteria[2]  # person1 and person2 share one picture, as in the real data
    rows[dup_b]["data"] = rows[dup_a]["data"]
    for r in rows:
        (folder / r["path"]).write_bytes(r["data"])
    index = pd.DataFrame([{k: v for k, v in r.items() if k != "data"} for r in rows])
    index["width"], index["height"], index["mode"] = 16, 16, "RGB"
    index["bytes"] = [len(r["data"]) for r in rows]
    index["sha256"] = [hashlib.sha256(r["data"]).hexdigest() for r in rows]
    index["pixel_duplicate_group"] = np.nan
    index.loc[[dup_a, dup_b], "pixel_duplicate_group"] = 0.0
    index.to_csv(folder / "kermany_index.csv", index=False)

    train_normals = index.loc[(index["split"] == "train") & (index["label_3class"] == "normal"), "path"].tolist()
    flagged: list[int] = []
    overlap_rows = []
    if covid is not None:
        labels = covid["labels"]
        normal_idx = np.flatnonzero(labels == 0)
        flagged = normal_idx[:2].tolist()
        for i, lab in enumerate(labels):
            hit = i in flagged
            overlap_rows.append({"covid19_radiography_128_index": i,
                                 "covid19_filename": covid["filename"][i],
                                 "covid19_class": "COVID" if lab else "Normal",
                                 "best_kermany_path": train_normals[flagged.index(i)] if hit else index["path"][0],
                                 "cosine_similarity_32px": 0.999 if hit else 0.8,
                                 "is_kermany_duplicate": hit})
    pd.DataFrame(overlap_rows, columns=["covid19_radiography_128_index", "covid19_filename", "covid19_class",
                                        "best_kermany_path", "cosine_similarity_32px", "is_kermany_duplicate"]
                 ).to_csv(folder / "overlap_with_covid19_radiography_128.csv", index=False)

    normals = index[index["label_3class"] == "normal"]
    site_a = pd.DataFrame({"domain": "A_guangzhou_pediatric_kermany", "source_folder": "kermany_pediatric_cxr_224",
                           "key": normals["path"], "split": normals["split"], "native_size": "224x224",
                           "also_in_covid19_radiography_128": False})
    b_keys = [] if covid is None else [i for i in np.flatnonzero(covid["labels"] == 0) if i not in flagged]
    site_b = pd.DataFrame({"domain": "B_rsna_adult_via_covid19_radiography", "source_folder": "covid19_radiography_128",
                           "key": b_keys, "split": "", "native_size": "128x128", "also_in_covid19_radiography_128": ""})
    pd.concat([site_a, site_b]).to_csv(folder / "cyclegan_site_pair_index.csv", index=False)
    counts = index.groupby(["split", "label_3class"]).size().to_dict()
    return {"folder": folder, "index": index, "duplicates": (dup_a, dup_b), "overlap": flagged, "counts": counts}


def write_pneumoniamnist(root: Path, counts: dict | None = None, seed: int = 0) -> dict:
    """Write ``pneumoniamnist/pneumoniamnist_28_reassembled.npz`` (MedMNIST keys, labels `(N, 1)`).

    Args:
        root: the data folder.
        counts: ``{split: (n_normal, n_pneumonia)}``.
        seed: seeds the random images.

    Returns:
        ``{"path", "counts", "arrays"}``.
    """
    counts = counts or {"train": (3, 5), "val": (1, 2), "test": (2, 2)}
    rng = np.random.default_rng(seed)
    folder = root / "pneumoniamnist"
    folder.mkdir(parents=True)
    arrays = {}
    for split, (n0, n1) in counts.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n0 + n1, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array([0] * n0 + [1] * n1, dtype=np.uint8)[:, None]
    path = folder / "pneumoniamnist_28_reassembled.npz"
    np.savez_compressed(path, **arrays)
    return {"path": path, "counts": counts, "arrays": arrays}
