"""The CheXpert reader on a fixture in Stanford's layout: uncertainty policies, the six classes, patients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgan_core.data import chexpert
from medgan_core.data.errors import DataFileError, MissingDatasetError

# (patient/study/view, frontal?, {label: value}); labels not listed are blank.
ROWS = [
    ("patient00001/study1/view1_frontal.jpg", "Frontal", {"Edema": 1, "Cardiomegaly": -1}),
    ("patient00001/study1/view2_lateral.jpg", "Lateral", {"Edema": 1}),
    ("patient00002/study1/view1_frontal.jpg", "Frontal", {"No Finding": 1}),
    ("patient00003/study1/view1_frontal.jpg", "Frontal", {"Atelectasis": -1}),
    ("patient00004/study2/view1_frontal.jpg", "Frontal", {"Pleural Effusion": 1, "Support Devices": 1}),
    ("patient00005/study1/view1_frontal.jpg", "Frontal", {"Consolidation": 0, "Pneumonia": 1}),
]


@pytest.fixture
def root(tmp_path):
    """``tmp/CheXpert-v1.0-small`` with train.csv and one small gray JPEG per row."""
    folder = tmp_path / "CheXpert-v1.0-small"
    records = []
    for i, (rel, view, labels) in enumerate(ROWS):
        path = folder / "train" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((40, 32), 20 * i, dtype=np.uint8)).save(path)
        rec = {"Path": f"CheXpert-v1.0-small/train/{rel}", "Sex": "Female", "Age": 50, "Frontal/Lateral": view,
               "AP/PA": "AP" if view == "Frontal" else ""}
        rec.update({c: labels.get(c, np.nan) for c in chexpert.LABELS})
        records.append(rec)
    pd.DataFrame(records).to_csv(folder / "train.csv", index=False)
    return folder


def test_policies_map_uncertain_and_blank(root):
    frame = chexpert.read_labels(root / "train.csv")
    assert frame.loc[0, "Cardiomegaly"] == -1 and np.isnan(frame.loc[0, "Atelectasis"])
    ones, zeros = chexpert.apply_policy(frame, "u_ones"), chexpert.apply_policy(frame, "u_zeros")
    assert ones.loc[0, "Cardiomegaly"] == 1 and zeros.loc[0, "Cardiomegaly"] == 0
    assert ones.loc[3, "Atelectasis"] == 1 and zeros.loc[3, "Atelectasis"] == 0
    assert ones.loc[0, "Atelectasis"] == zeros.loc[0, "Atelectasis"] == 0  # blank is negative under both
    assert set(np.unique(ones[list(chexpert.LABELS)])) <= {0, 1}
    with pytest.raises(ValueError, match="Unknown uncertainty policy 'u_ignore'"):
        chexpert.apply_policy(frame, "u_ignore")


def test_single_label_selection_depends_on_the_policy(root):
    frame = chexpert.read_labels(root / "train.csv")
    ones = chexpert.select_single_label(chexpert.apply_policy(frame, "u_ones"))
    zeros = chexpert.select_single_label(chexpert.apply_policy(frame, "u_zeros"))
    # U-Ones: row 0 has Edema and (uncertain) Cardiomegaly -> two classes, dropped; row 3 becomes Atelectasis.
    assert ones.index.tolist() == [1, 2, 3, 4]
    assert ones.class_name.tolist() == ["Edema", "No Finding", "Atelectasis", "Pleural Effusion"]
    # U-Zeros: row 0 is Edema alone; row 3 has no class left.
    assert zeros.index.tolist() == [0, 1, 2, 4]
    assert zeros.label.tolist() == [chexpert.WRITEUP_CLASSES.index(c) for c in zeros.class_name]
    exclusive = chexpert.select_single_label(chexpert.apply_policy(frame, "u_zeros"), exclusive=True)
    assert 4 not in exclusive.index  # Pleural Effusion with Support Devices
    raw = frame.copy()
    raw[list(chexpert.LABELS)] = raw[list(chexpert.LABELS)].fillna(-1)  # -1 and blank, as read
    with pytest.raises(ValueError, match="apply an uncertainty policy first"):
        chexpert.select_single_label(raw)
    with pytest.raises(ValueError, match="distinct names"):
        chexpert.select_single_label(chexpert.apply_policy(frame, "u_ones"), ("Edema", "Flu"))


def test_load_split_frontal_images_and_patients(root):
    x, y, pid = chexpert.load_split(root, "train", policy="u_zeros", size=16)
    assert x.shape == (3, 16, 16) and x.dtype == np.uint8  # the lateral view is left out
    assert pid.tolist() == ["patient00001", "patient00002", "patient00004"]
    assert y.tolist() == [chexpert.WRITEUP_CLASSES.index(c) for c in ("Edema", "No Finding", "Pleural Effusion")]
    assert x[1].mean() == pytest.approx(40, abs=1)  # row 2 was drawn at gray level 40
    with pytest.raises(MissingDatasetError, match="valid.csv"):
        chexpert.load_split(root, "valid")


def test_bad_label_values_are_named(root):
    frame = pd.read_csv(root / "train.csv")
    frame.loc[2, "Edema"] = 2
    frame.to_csv(root / "train.csv", index=False)
    with pytest.raises(DataFileError, match=r"Edema.*lines \[4\]"):
        chexpert.read_labels(root / "train.csv")
    with pytest.raises(DataFileError, match="patientNNNNN"):
        chexpert.patient_ids(pd.Series(["elsewhere/view1.jpg"]))
