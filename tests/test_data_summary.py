"""Data-tour summaries: chest X-ray tables and samples, LIDC crops and intensities, grouped splits, train ratios.

The chest X-ray helpers run on the synthetic folders of ``fixtures_chest``; the rest on tiny
hand-built arrays and frames whose answers can be worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures_chest import write_covid19_radiography, write_ieee8023, write_kermany, write_pneumoniamnist
from medgan_core.data import covid19_radiography, ieee8023, kermany
from medgan_core.data.summary import (CHEST_SETS, chest_histogram_pixels, chest_indexes, chest_sample_images,
                                      chest_table, groups_disjoint, lidc_fold_table, lidc_intensities, nodule_zoom,
                                      per_class_sample, site_pair_table, train_imbalance_ratios, with_grouped_split,
                                      distinct_samples)


@pytest.fixture
def chest(tmp_path):
    """A data folder with the four synthetic chest X-ray sets."""
    covid = write_covid19_radiography(tmp_path)
    write_kermany(tmp_path, covid=covid)
    write_ieee8023(tmp_path)
    mnist = write_pneumoniamnist(tmp_path)
    return {"root": tmp_path, "mnist": mnist}


# ---------------------------------------------------------------- chest X-ray sets

def test_chest_indexes_and_table(chest):
    indexes = chest_indexes(chest["root"])
    assert tuple(indexes) == CHEST_SETS
    assert len(indexes["covid19_radiography"]) == 11  # 12 written, one exact duplicate dropped
    table = chest_table(indexes)
    assert list(table.columns) == ["images", "exact duplicates removed", "imbalance ratio"]
    assert list(table.index) == list(CHEST_SETS)
    assert table.loc["covid19_radiography", "images"] == 11
    assert table.loc["covid19_radiography", "exact duplicates removed"] == 1
    assert table.loc["pneumoniamnist", "exact duplicates removed"] == 0  # no attrs: counted as 0
    assert table.loc["covid19_radiography", "imbalance ratio"] == round(6 / 5, 1)  # 5 COVID left, 6 Normal
    assert table.loc["pneumoniamnist", "imbalance ratio"] == round(9 / 6, 1)  # 6 normal, 9 pneumonia


@pytest.mark.parametrize("name,side", [("covid19_radiography", 128), ("ieee8023 (Cohen)", 160), ("kermany", 128),
                                       ("pneumoniamnist", 28)])
def test_chest_sample_images_per_reader(chest, name, side):
    root = chest["root"]
    idx = chest_indexes(root)[name]
    picks = per_class_sample(idx["label"], 2, seed=0)
    imgs = chest_sample_images(name, idx, picks, data_dir=root)
    assert list(imgs) == list(picks)
    for cls, pos in picks.items():
        assert imgs[cls].shape == (len(pos), side, side) and imgs[cls].dtype == np.uint8
    cls, pos = next(iter(picks.items()))
    if name == "pneumoniamnist":  # the rows' own split and position, not the index row number
        rows = idx.iloc[pos]
        expected = np.stack([chest["mnist"]["arrays"][f"{r.split}_images"][r.index] for r in rows.itertuples()])
    elif name == "kermany":
        expected = kermany.load_images(idx.iloc[pos], size=128, data_dir=root, progress=False)
    else:
        reader = covid19_radiography if name == "covid19_radiography" else ieee8023
        expected = reader.load_images(idx.iloc[pos], data_dir=root)
    np.testing.assert_array_equal(imgs[cls], expected)


def test_chest_sample_images_rejects_unknown_set(chest):
    with pytest.raises(ValueError, match="unknown set 'cohen'"):
        chest_sample_images("cohen", pd.DataFrame(), {}, data_dir=chest["root"])


def test_chest_histogram_pixels(chest):
    root = chest["root"]
    indexes = chest_indexes(root)
    pixels = chest_histogram_pixels(indexes, 3, seed=0, data_dir=root)
    assert list(pixels) == ["covid19_radiography", "ieee8023 (Cohen)", "kermany"]
    assert [v.shape for v in pixels.values()] == [(3, 128, 128), (3, 160, 160), (3, 128, 128)]
    take = indexes["covid19_radiography"].sample(n=3, random_state=0)
    np.testing.assert_array_equal(pixels["covid19_radiography"], covid19_radiography.load_images(take, root))
    every = chest_histogram_pixels(indexes, None, data_dir=root, kermany_max=4)
    assert len(every["covid19_radiography"]) == len(indexes["covid19_radiography"])  # None: all images
    assert len(every["ieee8023 (Cohen)"]) == len(indexes["ieee8023 (Cohen)"])
    assert len(every["kermany"]) == 4  # Kermany capped


# ---------------------------------------------------------------- LIDC slices

def test_nodule_zoom_centres_on_the_mask():
    images = np.arange(2 * 20 * 20, dtype=np.float32).reshape(2, 20, 20)
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 9:12, 9:12] = True  # centre (10, 10)
    masks[1, 0:2, 18:20] = True  # centre (0, 18) after int(): at the corner, needs padding
    zoom, zoom_masks = nodule_zoom(images, masks, half=3)
    assert zoom.shape == zoom_masks.shape == (2, 6, 6) and zoom_masks.dtype == bool
    np.testing.assert_array_equal(zoom[0], images[0, 7:13, 7:13])
    np.testing.assert_array_equal(zoom_masks[0], masks[0, 7:13, 7:13])
    np.testing.assert_array_equal(zoom[1][3:, 3:5], images[1, 0:3, 18:20])  # inside the slice
    np.testing.assert_array_equal(zoom[1][:3, 3], np.full(3, images[1, 0, 18]))  # edge-padded above
    assert zoom_masks[1].sum() == masks[1].sum()  # the whole nodule is in the crop
    masks[1] = False
    with pytest.raises(ValueError, match=r"masks \[1\] are empty"):
        nodule_zoom(images, masks)
    with pytest.raises(ValueError, match="must both be"):
        nodule_zoom(images, masks[:1])


def test_lidc_intensities_leave_out_background_and_thin_the_lung():
    images = np.full((1, 4, 5), -1.0, np.float32)  # background -1 outside the lungs
    images[0, 1:3, 1:4] = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]  # lungs
    masks = np.zeros((1, 4, 5), bool)
    masks[0, 2, 3] = True  # the nodule at 0.6
    out = lidc_intensities(images, masks)
    assert list(out) == ["lung tissue", "nodule"]
    np.testing.assert_allclose(out["lung tissue"], [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(out["nodule"], [0.6])
    np.testing.assert_allclose(lidc_intensities(images, masks, max_lung=2)["lung tissue"], [0.1, 0.3, 0.5])  # k = 2


# ---------------------------------------------------------------- splits of section 6

def test_with_grouped_split_keeps_patients_together():
    index = pd.DataFrame({"label": ["a", "b"] * 20, "patient_id": np.repeat([f"p{i}" for i in range(10)], 4)},
                         index=np.arange(100, 140))
    out = with_grouped_split(index, "patient_id", seed=0)
    assert list(out.index) == list(range(40)) and list(index.index) == list(range(100, 140))  # renumbered copy
    assert "split" not in index.columns
    assert set(out["split"]) == {"train", "val", "test"} and groups_disjoint(out, "patient_id")
    assert (out["label"] == index["label"].to_numpy()).all()
    assert out["split"].value_counts()["train"] > out["split"].value_counts()["test"]  # 70 / 15 / 15


def test_lidc_fold_table():
    meta = pd.DataFrame({"patient_id": np.repeat(["LIDC-0001", "LIDC-0002", "LIDC-0003", "LIDC-0004"], [3, 2, 2, 1]),
                         "malignancy": [1, 1, 5, 5, 5, 1, 5, 1]})
    table = lidc_fold_table(meta, n_splits=2, seed=0)
    assert table.index.name == "fold" and list(table.index) == [0, 1]
    assert list(table.columns) == ["test patients", "train slices", "test slices", "patients shared"]
    assert (table["train slices"] + table["test slices"] == 8).all() and table["test slices"].sum() == 8
    assert (table["patients shared"] == 0).all()
    tested = [p for cell in table["test patients"] for p in cell.split(", ")]
    assert sorted(tested) == sorted(meta.patient_id.unique())  # each patient tested exactly once
    for cell in table["test patients"]:
        assert cell.split(", ") == sorted(cell.split(", "))


def test_site_pair_table():
    pairs = pd.DataFrame({"domain": ["A", "A", "B", "B", "B"], "split": ["train", "test", None, None, "train"]})
    table = site_pair_table(pairs)
    assert list(table.index) == ["A", "B", "total"]
    assert table.loc["B", "all (no official split)"] == 2 and table.loc["A", "train"] == 1
    assert table.loc["total", "total"] == 5 and table.loc["B", "total"] == 3


def test_train_imbalance_ratios():
    cells = pd.DataFrame({"split": ["train"] * 5 + ["test"] * 3, "label": ["RBC"] * 4 + ["WBC"] + ["WBC"] * 3})
    isic = pd.DataFrame({"split": ["train"] * 3, "label": ["nevus", "nevus", "melanoma"]})
    ratios = train_imbalance_ratios({"BCCD cells (train)": cells, "ISIC (train)": isic})
    assert ratios == {"BCCD cells (train)": 4.0, "ISIC (train)": 2.0}  # test rows are ignored
    with pytest.raises(ValueError, match="'empty' has no 'train' rows"):
        train_imbalance_ratios({"empty": cells[cells.split == "test"]})


def test_distinct_samples_counts_reused_source_images_once():
    table = pd.DataFrame({"found": [True, True, True, False], "samples": [5840, 5856, 364, 0],
                          "same_images_as": ["", "kermany", "", ""]},
                         index=["kermany", "pneumoniamnist", "bccd", "isic2017"])
    assert distinct_samples(table) == (5840 + 364, ["pneumoniamnist"])
    alone = table.drop(index="kermany")  # without Kermany found, PneumoniaMNIST's images count
    assert distinct_samples(alone) == (5856 + 364, [])
    from medgan_core.data.registry import DATASETS
    assert {d.name: d.same_images_as for d in DATASETS}["pneumoniamnist"] == "kermany"
