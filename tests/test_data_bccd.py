"""BCCD reader: VOC boxes, splits, square crops, WBC subtypes, errors; real counts when present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures_data import BCCD_COLOURS, real_data_dir, truncate_file, write_bccd
from medgan_core.data import bccd
from medgan_core.data.errors import DataFileError, LabelMismatchError


@pytest.fixture
def data_dir(tmp_path):
    write_bccd(tmp_path)
    return tmp_path


def test_load_index_boxes_and_splits(data_dir):
    boxes = bccd.load_index(data_dir)
    assert boxes["label"].value_counts().to_dict() == {"RBC": 10, "WBC": 6, "Platelets": 4}
    split = boxes.drop_duplicates("image_id").set_index("image_id")["split"]
    assert split["BloodImage_00003"] == "val" and split["BloodImage_00004"] == "test"
    assert split["BloodImage_00005"] == "train"  # in no split file: assigned to train
    assert boxes["degenerate"].sum() == 1 and boxes.loc[boxes["degenerate"], "image_id"].item() == "BloodImage_00003"
    assert boxes["label_idx"].tolist() == [bccd.CLASSES.index(c) for c in boxes["label"]]


# (xmin, ymin, xmax, ymax, margin) -> (x0, y0, side), computed by hand
SQUARE_CASES = [
    ((10, 20, 30, 30, 0.0), (10, 15, 20)),   # 20x10 box: side 20, centred at (20, 25)
    ((10, 20, 30, 30, 0.5), (5, 10, 30)),    # side 30 -> x0 = 20 - 15, y0 = 25 - 15
    ((0, 10, 14, 24, 0.1), (-1, 9, 15)),     # round(15.4) = 15; floor(7 - 7.5) = -1
    ((5, 5, 5, 5, 0.0), (4, 4, 1)),          # zero area: side at least 1
]


@pytest.mark.parametrize("box, expected", SQUARE_CASES)
def test_square_window(box, expected):
    assert bccd.square_window(*box) == expected


def test_crop_square_pads_outside_part():
    image = np.arange(4 * 5 * 1, dtype=np.uint8).reshape(4, 5, 1)  # `(H=4, W=5, 1)`
    edge = bccd.crop_square(image, -1, 2, 3, "edge")[..., 0]
    assert edge.tolist() == [[10, 10, 11], [15, 15, 16], [15, 15, 16]]
    zero = bccd.crop_square(image, -1, 2, 3, "constant")[..., 0]
    assert zero.tolist() == [[0, 10, 11], [0, 15, 16], [0, 0, 0]]
    with pytest.raises(ValueError, match="outside"):
        bccd.crop_square(image, 10, 10, 2)


def test_crop_cells_aligned_and_coloured(data_dir, monkeypatch):
    boxes = bccd.load_index(data_dir)
    calls = []
    real_read = bccd.read_image
    monkeypatch.setattr(bccd, "read_image", lambda path, mode=None: calls.append(path) or real_read(path, mode))
    crops, frame = bccd.crop_cells(boxes.iloc[::-1], 8, margin=0.0, progress=False)
    assert crops.shape == (19, 8, 8, 3) and crops.dtype == np.uint8  # 20 boxes less the zero-area one
    assert not frame["degenerate"].any() and len(frame) == 19
    assert len(calls) == 6 and len(set(calls)) == 6  # one decode per image
    assert frame["image_id"].iloc[0] == "BloodImage_00005"  # order of the boxes asked for
    # a square WBC box with no margin is all WBC colour (JPEG noise aside)
    k = frame.index[(frame["image_id"] == "BloodImage_00003") & (frame["label"] == "WBC")].item()
    assert np.abs(crops[k].reshape(-1, 3).mean(0) - BCCD_COLOURS["WBC"]).max() < 12


def test_wbc_subtypes_reasons(data_dir):
    table = bccd.wbc_subtypes(data_dir).set_index("image_no")
    assert table["excluded_reason"].to_dict() == {0: "", 1: "", 2: "two subtypes", 3: "", 4: "blank",
                                                  5: "", 6: "no image"}
    assert table.loc[[0, 1, 3, 5], "label"].tolist() == ["NEUTROPHIL", "EOSINOPHIL", "LYMPHOCYTE", "NEUTROPHIL"]
    assert table["n_wbc_boxes"].tolist() == [1, 2, 1, 1, 1, 0, 0]
    rare = bccd.wbc_subtypes(data_dir, min_count=2).set_index("image_no")
    assert rare.loc[1, "excluded_reason"] == "eosinophil (1 image)"
    assert rare["usable"].sum() == 2  # the two neutrophils


def test_wbc_crops_largest_box_and_no_box(data_dir):
    crops, frame = bccd.wbc_crops(8, data_dir, min_count=0, progress=False)
    assert frame["image_id"].tolist() == ["BloodImage_00000", "BloodImage_00001", "BloodImage_00003"]
    assert frame.set_index("image_id").loc["BloodImage_00001", "xmin"] == 30  # the larger of two WBC boxes
    assert frame.attrs["classes"] == ("NEUTROPHIL", "EOSINOPHIL", "LYMPHOCYTE")
    assert frame["label_idx"].tolist() == [0, 1, 2] and crops.shape == (3, 8, 8, 3)


def test_bad_xml_named(data_dir):
    bad = data_dir / "bccd_blood" / "Annotations" / "BloodImage_00002.xml"
    bad.write_text("<annotation><filename>BloodImage_00002.jpg</filename>")
    with pytest.raises(DataFileError, match="BloodImage_00002.xml"):
        bccd.load_index(data_dir)
    n_files, problems = bccd.verify(data_dir)
    assert n_files == 6 + 6 + 3 + 1 and len(problems) == 1 and "BloodImage_00002.xml" in problems[0]


def test_xml_naming_another_image(data_dir):
    xml = data_dir / "bccd_blood" / "Annotations" / "BloodImage_00001.xml"
    xml.write_text(xml.read_text().replace("<filename>BloodImage_00001.jpg", "<filename>BloodImage_00004.jpg"))
    with pytest.raises(LabelMismatchError, match="BloodImage_00001.xml.*BloodImage_00004.jpg"):
        bccd.load_index(data_dir)


def test_truncated_jpeg_named(data_dir):
    truncate_file(data_dir / "bccd_blood" / "JPEGImages" / "BloodImage_00004.jpg", keep=0.3)
    with pytest.raises(DataFileError, match="BloodImage_00004.jpg"):
        bccd.crop_cells(bccd.load_index(data_dir), 8, progress=False)
    problems = bccd.verify(data_dir)[1]
    assert len(problems) == 1 and "BloodImage_00004.jpg" in problems[0]


def test_image_in_two_splits(data_dir):
    with open(data_dir / "bccd_blood" / "ImageSets" / "Main" / "test.txt", "a") as handle:
        handle.write("BloodImage_00000\n")
    with pytest.raises(LabelMismatchError, match="test.txt: BloodImage_00000 is already in train"):
        bccd.load_index(data_dir)


def test_annotation_without_image(data_dir):
    (data_dir / "bccd_blood" / "JPEGImages" / "BloodImage_00005.jpg").unlink()
    with pytest.raises(LabelMismatchError, match="BloodImage_00005.xml: annotation has no image"):
        bccd.load_index(data_dir)


def test_image_without_subtype_row(data_dir):
    csv = data_dir / "bccd_blood" / "wbc_subtype_labels.csv"
    csv.write_text("\n".join(line for line in csv.read_text().splitlines() if not line.startswith(",3,")))
    with pytest.raises(LabelMismatchError, match="wbc_subtype_labels.csv.*BloodImage_00003"):
        bccd.wbc_subtypes(data_dir)


def test_real_data_counts():
    root = real_data_dir(bccd.FOLDER)
    if root is None:
        pytest.skip("real BCCD data not found (set MEDGAN_DATA or stage /work/shared/data)")
    boxes = bccd.load_index(root)  # parses the 364 XMLs, decodes no image
    assert boxes["label"].value_counts().to_dict() == {"RBC": 4155, "WBC": 372, "Platelets": 361}
    per_image = boxes.drop_duplicates("image_id")
    assert per_image["split"].value_counts().to_dict() == {"train": 205, "val": 87, "test": 72}
    assert boxes.groupby("image_id")["split"].nunique().max() == 1
    table = bccd.wbc_subtypes(root, min_count=10)
    staged = table[table["excluded_reason"] != "no image"]
    assert len(staged) == 364
    single = staged[staged["label"] != ""]["label"].value_counts().to_dict()
    assert single == {"NEUTROPHIL": 205, "EOSINOPHIL": 87, "LYMPHOCYTE": 33, "MONOCYTE": 20, "BASOPHIL": 3}
    reasons = staged["excluded_reason"].value_counts().to_dict()
    assert reasons["two subtypes"] == 15 and reasons["blank"] == 1 and reasons["basophil (3 images)"] == 3


def test_cell_type_task_split_by_smear(data_dir):
    splits, classes, smears = bccd.load_cell_types(16, data_dir, smears=True)
    assert classes == list(bccd.CLASSES) and set(splits) == set(bccd.SPLITS) == set(smears)
    for x, y in splits.values():
        assert x.shape[1:] == (16, 16, 3) and x.dtype == np.uint8 and len(x) == len(y)
    boxes = bccd.load_index(data_dir)
    kept = boxes[~boxes.degenerate]
    for split, ids in smears.items():  # each crop's smear, aligned with the split's crops; no smear in two splits
        assert len(ids) == len(splits[split][1])
        assert set(ids) == set(kept[kept.split == split].image_id)
        per_smear = pd.crosstab(ids, splits[split][1])  # cells per (smear, type), from the crops
        boxes_of = kept[kept.split == split]
        assert per_smear.to_numpy().tolist() == pd.crosstab(boxes_of.image_id, boxes_of.label_idx).to_numpy().tolist()
    assert not set(smears["train"]) & set(smears["test"])
    assert sum(len(y) for _, y in splits.values()) == len(kept)
    one = bccd.load_cell_types(16, data_dir, max_smears_per_split=1)[0]
    assert sum(len(y) for _, y in one.values()) < len(kept)
    with pytest.raises(ValueError, match="max_smears_per_split"):
        bccd.load_cell_types(16, data_dir, max_smears_per_split=-1)


def test_wbc_subtype_task_on_real_data(real_data):
    splits, classes, excluded = bccd.load_wbc_subtypes(16, real_data)
    assert classes == ["NEUTROPHIL", "EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE"]  # basophils dropped
    totals = sum(np.bincount(y, minlength=4) for _, y in splits.values())
    assert totals.tolist() == [203, 84, 33, 20]
    assert excluded.loc["two subtypes", "rows"] == 15 and excluded.loc["basophil (3 images)", "rows"] == 3
