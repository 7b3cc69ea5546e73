"""Chest X-ray readers: COVID-19 Radiography, Cohen ieee8023, Kermany, PneumoniaMNIST.

Synthetic fixtures (``fixtures_chest``) exercise every path, including the errors; the
real-data checks at the end compare counts with the data README and skip when the shared
data folder is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures_chest import (real_data_dir, write_covid19_radiography, write_ieee8023, write_kermany,
                            write_pneumoniamnist)
from medgan_core.data import covid19_radiography, ieee8023, kermany, medmnist
from medgan_core.data.errors import DataFileError, LabelMismatchError, MissingDatasetError
from medgan_core.data.files import read_image


@pytest.fixture
def chest(tmp_path):
    """A data folder with the COVID-19 Radiography, Kermany, ieee8023 and PneumoniaMNIST fixtures."""
    covid = write_covid19_radiography(tmp_path)
    kerm = write_kermany(tmp_path, covid=covid)
    write_ieee8023(tmp_path)
    mnist = write_pneumoniamnist(tmp_path)
    return {"root": tmp_path, "covid": covid, "kermany": kerm, "mnist": mnist}


# ---------------------------------------------------------------- COVID-19 Radiography

def test_covid_index_drops_duplicates_and_overlap(chest):
    root, covid = chest["root"], chest["covid"]
    full = covid19_radiography.load_index(root, drop_duplicates=False)
    assert len(full) == 12 and set(full["split"]) == {"all"}
    assert full["label"].tolist() == ["COVID"] * 6 + ["Normal"] * 6
    assert full.loc[1, "duplicate_group"] == full.loc[3, "duplicate_group"]

    index = covid19_radiography.load_index(root)
    assert len(index) == 11 and index.attrs["n_duplicates_dropped"] == 1
    assert 3 not in index["index"].tolist() and 1 in index["index"].tolist()  # the first copy is kept

    assert covid19_radiography.kermany_overlap(root).tolist() == [6, 7]
    clean = covid19_radiography.load_index(root, exclude_kermany_overlap=True)
    assert clean.attrs == {"n_duplicates_dropped": 1, "n_kermany_overlap_dropped": 2}
    assert not set(clean["index"]) & {3, 6, 7} and len(clean) == 9

    images = covid19_radiography.load_images(clean, root)
    assert images.shape == (9, 128, 128) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, covid["images"][clean["index"]])


def test_covid_errors_name_the_file(chest, tmp_path):
    root, folder = chest["root"], chest["covid"]["folder"]
    npz = folder / "covid19_radiography_covid_normal_128.npz"
    meta = folder / "covid19_radiography_covid_normal_128_meta.csv"

    with pytest.raises(MissingDatasetError, match="covid19_radiography_128"):
        covid19_radiography.load_index(tmp_path / "nowhere")

    frame = pd.read_csv(meta)
    frame.loc[4, "label"] = 0  # CSV says Normal, npz says COVID
    frame.to_csv(meta, index=False)
    with pytest.raises(LabelMismatchError, match="meta.csv.*'label'"):
        covid19_radiography.load_index(root)
    count, problems = covid19_radiography.verify(root)
    assert count == 2 and len(problems) == 1 and str(meta) in problems[0]

    data = dict(np.load(npz))
    data["labels"] = data["labels"][:-1]  # one label short
    np.savez(npz, **data)
    with pytest.raises(LabelMismatchError, match="array lengths"):
        covid19_radiography.load_index(root)

    npz.write_bytes(npz.read_bytes()[:5000])  # truncated
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        covid19_radiography.load_index(root)
    count, problems = covid19_radiography.verify(root)
    assert count == 2 and str(npz) in problems[0]


def test_covid_stale_index_and_bad_overlap(chest):
    root = chest["root"]
    index = covid19_radiography.load_index(root)
    index.loc[0, "filename"] = "COVID-999.png"
    with pytest.raises(LabelMismatchError, match="rebuild it with load_index"):
        covid19_radiography.load_images(index, root)

    path = chest["kermany"]["folder"] / "overlap_with_covid19_radiography_128.csv"
    overlap = pd.read_csv(path)
    overlap.loc[0, "is_kermany_duplicate"] = True  # a COVID image flagged as a Kermany normal
    overlap.to_csv(path, index=False)
    with pytest.raises(LabelMismatchError, match="not class Normal"):
        covid19_radiography.kermany_overlap(root)


# ---------------------------------------------------------------- ieee8023

def test_ieee_index_classes_patients_duplicates(chest):
    root = chest["root"]
    index = ieee8023.load_index(root)
    # 11 rows - 2 unlabelled - 1 pixel duplicate (row 3 repeats row 0 under patient "7")
    assert len(index) == 8
    assert index.attrs == {"n_unlabelled_dropped": 2, "n_duplicates_dropped": 1}
    assert index["label"].tolist() == ["COVID-19"] * 3 + ["Bacterial", "Viral (non-COVID)", "Fungal",
                                                          "No Finding", "Other"]
    assert index["label_id"].tolist() == [0, 0, 0, 1, 2, 3, 4, 5]
    assert index["patient_id"].tolist()[:3] == ["1", "1", "2"] and "7" not in set(index["patient_id"])
    assert index.loc[7, "finding_group"] == "Other (ARDS)" and index.loc[7, "view"] == "?"

    everything = ieee8023.load_index(root, drop_unlabelled=False, drop_duplicates=False)
    assert len(everything) == 11
    assert everything.loc[9:, "label_id"].tolist() == [-1, -1]
    images = ieee8023.load_images(index, root)
    assert images.shape == (8, 160, 160)
    np.testing.assert_array_equal(images[3], ieee8023.load_images(everything, root)[4])
    assert ieee8023.verify(root) == (2, [])


def test_ieee_errors(chest):
    root = chest["root"]
    folder = root / "covid_chestxray_ieee8023_160"
    meta = folder / "ieee8023_cxr_frontal_160_meta.csv"
    frame = pd.read_csv(meta, dtype={"patientid": str})
    frame.loc[2, "patientid"] = "99"
    frame.to_csv(meta, index=False)
    with pytest.raises(LabelMismatchError, match="'patientid'"):
        ieee8023.load_index(root)

    npz = folder / "ieee8023_cxr_frontal_160.npz"
    data = dict(np.load(npz))
    data["finding_group"] = data["finding_group"].astype("<U20")
    data["finding_group"][0] = "Martian flu"
    np.savez(npz, **data)
    count, problems = ieee8023.verify(root)
    assert count == 2 and len(problems) == 1
    assert str(npz) in problems[0] and "Martian flu" in problems[0]


# ---------------------------------------------------------------- Kermany

def test_kermany_index_split_labels_duplicates(chest):
    root, kerm = chest["root"], chest["kermany"]
    full = kermany.load_index(root, drop_duplicates=False)
    assert full.groupby(["split", "label"]).size().to_dict() == kerm["counts"]
    index = kermany.load_index(root)
    assert len(index) == len(full) - 1 and index.attrs["n_duplicates_dropped"] == 1
    a, b = kerm["duplicates"]
    assert kerm["index"]["path"][a] in set(index["path"]) and kerm["index"]["path"][b] not in set(index["path"])
    groups = index.set_index("path")["group"]
    assert groups["images/train/NORMAL/IM-0001-0001.jpeg"] == "train/NORMAL/IM-0001"
    assert groups["images/test/PNEUMONIA/person1_virus_33.jpeg"] == "test/PNEUMONIA/person1"
    assert set(index["label"]) == set(kermany.CLASSES)
    assert (index["label_id"] == index["label"].map({"normal": 0, "bacteria": 1, "virus": 2})).all()

    binary = kermany.load_index(root, binary=True)
    assert set(binary["label"]) == {"normal", "pneumonia"}
    assert (binary["label_id"] == (binary["label_3class"] != "normal")).all()


def test_kermany_val_split_is_grouped_stratified_and_seeded(chest):
    index = kermany.load_index(chest["root"])
    split = kermany.with_val_split(index, fraction=0.25, seed=0)
    val, train = split[split["split"] == "val"], split[split["split"] == "train"]
    assert not set(val["group"]) & set(train["group"])  # no patient on both sides
    assert set(val["label"]) == set(kermany.CLASSES)  # every class represented
    assert 0.15 < len(val) / (len(val) + len(train)) < 0.35
    assert (split[index["split"] == "test"]["split"] == "test").all()
    again = kermany.with_val_split(index, fraction=0.25, seed=0)
    pd.testing.assert_frame_equal(split, again)
    with pytest.raises(ValueError, match="fraction"):
        kermany.with_val_split(index, fraction=0.8)
    with pytest.raises(ValueError, match="already has a val"):
        kermany.with_val_split(split)


def test_kermany_load_images_modes_and_sizes(chest):
    root = chest["root"]
    index = kermany.load_index(root).head(3)
    gray = kermany.load_images(index, 16, "L", root, progress=False)
    assert gray.shape == (3, 16, 16) and gray.dtype == np.uint8
    path = chest["kermany"]["folder"] / index["path"][0]
    np.testing.assert_array_equal(gray[0], read_image(path, mode="L"))
    assert kermany.load_images(index, 8, "RGB", root, progress=False).shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="mode"):
        kermany.load_images(index, 8, "CMYK", root)


def test_kermany_missing_extra_and_mislabelled_images(chest):
    root, folder = chest["root"], chest["kermany"]["folder"]
    index_csv = folder / "kermany_index.csv"
    victim = folder / chest["kermany"]["index"]["path"][5]
    data = victim.read_bytes()
    victim.unlink()
    with pytest.raises(LabelMismatchError, match=f"no image file.*{victim.name}"):
        kermany.load_index(root)
    count, problems = kermany.verify(root)
    assert any(str(victim) in p and "missing" in p for p in problems)
    victim.write_bytes(data)

    stray = folder / "images/train/NORMAL/stray.jpeg"
    stray.write_bytes(data)
    with pytest.raises(LabelMismatchError, match="stray.jpeg"):
        kermany.load_index(root)
    stray.unlink()

    frame = pd.read_csv(index_csv)
    frame.loc[0, "label_3class"] = "virus"  # a NORMAL-folder image labelled virus
    frame.to_csv(index_csv, index=False)
    with pytest.raises(LabelMismatchError, match="wrong class folder"):
        kermany.load_index(root)


def test_kermany_verify_decodes_and_checks_sha(chest):
    root, kerm = chest["root"], chest["kermany"]
    count, problems = kermany.verify(root)
    assert count == len(kerm["index"]) + 3 and problems == []
    broken = kerm["folder"] / kerm["index"]["path"][0]
    broken.write_bytes(broken.read_bytes()[:200])  # truncated JPEG
    changed = kerm["folder"] / kerm["index"]["path"][1]
    changed.write_bytes(kerm["folder"].joinpath(kerm["index"]["path"][2]).read_bytes())
    count, problems = kermany.verify(root)
    assert len(problems) == 2
    assert str(broken) in problems[0] or str(broken) in problems[1]
    assert any(str(changed) in p and "sha256" in p for p in problems)


def test_kermany_site_pair_index(chest):
    root, kerm = chest["root"], chest["kermany"]
    pairs = kermany.site_pair_index(root)
    n_normal = kerm["counts"][("train", "normal")] + kerm["counts"][("test", "normal")]
    assert (pairs["site"] == "A").sum() == n_normal
    b = pairs[pairs["site"] == "B"]
    assert b["index"].tolist() == [8, 9, 10, 11]  # Normal images 6 and 7 are Kermany duplicates
    csv = kerm["folder"] / "cyclegan_site_pair_index.csv"
    frame = pd.read_csv(csv)
    frame.loc[frame.index[-1], "key"] = "6"
    frame.to_csv(csv, index=False)
    with pytest.raises(LabelMismatchError, match="domain-B keys"):
        kermany.site_pair_index(root)


# ---------------------------------------------------------------- MedMNIST / PneumoniaMNIST

def test_medmnist_reader_and_pneumoniamnist(chest):
    root, mnist = chest["root"], chest["mnist"]
    data = medmnist.load_medmnist(mnist["path"])
    assert set(data) == {"train", "val", "test"}
    images, labels = data["train"]
    assert images.shape == (8, 28, 28) and labels.shape == (8,) and labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    index = medmnist.load_index(root)
    assert index.groupby(["split", "label"]).size().to_dict() == {
        ("test", "normal"): 2, ("test", "pneumonia"): 2, ("train", "normal"): 3,
        ("train", "pneumonia"): 5, ("val", "normal"): 1, ("val", "pneumonia"): 2}
    assert medmnist.verify(root) == (1, [])


def test_medmnist_errors(tmp_path):
    path = tmp_path / "bad.npz"
    arrays = {f"{s}_{k}": np.zeros((3, 28, 28) if k == "images" else (3, 1), np.uint8)
              for s in ("train", "val", "test") for k in ("images", "labels")}
    arrays["val_labels"] = np.zeros((2, 1), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(LabelMismatchError, match="3 val images but 2 val labels"):
        medmnist.load_medmnist(path)
    del arrays["test_images"]
    np.savez(path, **arrays)
    with pytest.raises(DataFileError, match="test_images"):
        medmnist.load_medmnist(path)

    info = write_pneumoniamnist(tmp_path)
    arrays = dict(info["arrays"])
    arrays["test_labels"] = arrays["test_labels"] + 2  # label 2 or 3: not a PneumoniaMNIST class
    np.savez(info["path"], **arrays)
    count, problems = medmnist.verify(tmp_path)
    assert count == 1 and str(info["path"]) in problems[0] and "0 (normal) or 1" in problems[0]


# ---------------------------------------------------------------- real data (skipped without it)

def test_real_covid19_radiography_counts():
    root = real_data_dir(covid19_radiography.FOLDER)
    full = covid19_radiography.load_index(root, drop_duplicates=False)
    assert full["label"].value_counts().to_dict() == {"COVID": 1700, "Normal": 1700}
    index = covid19_radiography.load_index(root, exclude_kermany_overlap=True)
    assert index.attrs == {"n_duplicates_dropped": 17, "n_kermany_overlap_dropped": 193}
    assert index["label"].value_counts().to_dict() == {"COVID": 1683, "Normal": 1507}
    assert covid19_radiography.verify(root) == (2, [])


def test_real_ieee8023_counts():
    root = real_data_dir(ieee8023.FOLDER)
    everything = ieee8023.load_index(root, drop_unlabelled=False, drop_duplicates=False)
    assert len(everything) == 605 and everything["patient_id"].nunique() == 360
    assert everything["label"].value_counts().to_dict() == {
        "COVID-19": 423, "Unlabelled (todo)": 84, "Bacterial": 33, "Viral (non-COVID)": 21,
        "Other": 18, "Fungal": 13, "No Finding": 13}
    assert everything["duplicate_group"].duplicated().sum() == 2
    index = ieee8023.load_index(root)
    assert len(index) == 520 and index.attrs == {"n_unlabelled_dropped": 84, "n_duplicates_dropped": 1}
    assert ieee8023.verify(root) == (2, [])


def test_real_kermany_counts_and_site_pair():
    root = real_data_dir(kermany.FOLDER)
    full = kermany.load_index(root, drop_duplicates=False)
    assert full.groupby(["split", "label"]).size().to_dict() == {
        ("train", "normal"): 1341, ("train", "bacteria"): 2530, ("train", "virus"): 1345,
        ("test", "normal"): 234, ("test", "bacteria"): 242, ("test", "virus"): 148}
    index = kermany.load_index(root)
    assert index.attrs["n_duplicates_dropped"] == 32  # 30 groups: 28 pairs and 2 triples
    split = kermany.with_val_split(index, 0.1, seed=0)
    assert not set(split.loc[split["split"] == "val", "group"]) & set(split.loc[split["split"] == "train", "group"])
    pairs = kermany.site_pair_index(root)
    assert pairs["site"].value_counts().to_dict() == {"A": 1575, "B": 1507}


def test_real_pneumoniamnist_counts():
    root = real_data_dir(medmnist.FOLDER)
    index = medmnist.load_index(root)
    assert index.groupby(["split", "label"]).size().to_dict() == {
        ("test", "normal"): 234, ("test", "pneumonia"): 390, ("train", "normal"): 1214,
        ("train", "pneumonia"): 3494, ("val", "normal"): 135, ("val", "pneumonia"): 389}
    assert medmnist.verify(root) == (1, [])


@pytest.mark.parametrize("module", [covid19_radiography, ieee8023, kermany, medmnist])
def test_verify_raises_only_for_a_missing_folder(module, tmp_path):
    with pytest.raises(MissingDatasetError, match=module.FOLDER):
        module.verify(tmp_path)
