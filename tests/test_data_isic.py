"""ISIC 2017 reader: index, images, verify, error messages; real counts when the data is present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fixtures_data import ISIC_CSV, real_data_dir, truncate_file, write_isic
from medgan_core.data import isic
from medgan_core.data.errors import DataFileError, LabelMismatchError, MissingDatasetError
from medgan_core.data.files import read_image


@pytest.fixture
def data_dir(tmp_path):
    write_isic(tmp_path, per_class=(2, 1, 1), size=16)
    return tmp_path


def test_load_index_labels_and_splits(data_dir):
    index = isic.load_index(data_dir)
    assert list(index.columns) == ["image_id", "path", "split", "label", "label_idx"]
    counts = pd.crosstab(index["split"], index["label"])
    assert counts.loc["train"].tolist() == [2, 2, 2] and counts.loc["test"].tolist() == [1, 1, 1]
    # the fixture cycles melanoma, nevus (no flag), seborrheic_keratosis from ISIC_0000000 on
    assert index.set_index("image_id").loc["ISIC_0000001", "label"] == "nevus"
    assert index["label_idx"].tolist() == [isic.CLASSES.index(c) for c in index["label"]]
    assert index["path"].map(lambda p: p.endswith(".jpg")).all()


@pytest.mark.parametrize("size", [8, 16, 20])
def test_load_images_shape_dtype(data_dir, size):
    index = isic.load_index(data_dir)
    images = isic.load_images(index.iloc[::-1], size, progress=False)
    assert images.shape == (len(index), size, size, 3) and images.dtype == np.uint8
    if size == 16:  # native size: the exact decoded pixels, in the order asked for
        assert np.array_equal(images[0], read_image(index["path"].iloc[-1], mode="RGB"))


def test_load_images_rebuilds_paths_from_ids(data_dir):
    index = isic.load_index(data_dir).drop(columns="path")
    assert isic.load_images(index.iloc[:2], 4, data_dir=data_dir, progress=False).shape == (2, 4, 4, 3)


def test_load_images_rejects_bad_size(data_dir):
    with pytest.raises(ValueError, match="positive int"):
        isic.load_images(isic.load_index(data_dir), 0, progress=False)


def test_verify_clean_fixture_reads_every_file(data_dir):
    n_files, problems = isic.verify(data_dir)
    assert problems == []
    assert n_files == 12 + 3 + 2  # images, label CSVs, metadata CSVs


def test_truncated_jpeg_named_by_loader_and_verify(data_dir):
    bad = data_dir / "isic2017_256" / "images" / "val" / "ISIC_0000006.jpg"
    truncate_file(bad, keep=0.4)
    with pytest.raises(DataFileError, match="ISIC_0000006.jpg"):
        isic.load_images(isic.load_index(data_dir), 8, progress=False)
    n_files, problems = isic.verify(data_dir)
    assert n_files == 17 and len(problems) == 1 and "ISIC_0000006.jpg" in problems[0]


def test_label_without_image(data_dir):
    (data_dir / "isic2017_256" / "images" / "test" / "ISIC_0000010.jpg").unlink()
    with pytest.raises(LabelMismatchError, match="ISIC_0000010.jpg does not exist"):
        isic.load_index(data_dir)
    problems = isic.verify(data_dir)[1]
    assert any(ISIC_CSV["test"] in p and "ISIC_0000010" in p for p in problems)


def test_image_without_label(data_dir):
    Image.new("RGB", (16, 16)).save(data_dir / "isic2017_256" / "images" / "train" / "ISIC_9999999.jpg")
    with pytest.raises(LabelMismatchError, match="ISIC_9999999.jpg: image has no label row"):
        isic.load_index(data_dir)


def test_both_flags_set_is_a_file_error(data_dir):
    csv = data_dir / "isic2017_256" / "labels" / ISIC_CSV["val"]
    frame = pd.read_csv(csv)
    frame.loc[0, ["melanoma", "seborrheic_keratosis"]] = 1.0
    frame.to_csv(csv, index=False)
    with pytest.raises(DataFileError, match=ISIC_CSV["val"] + ".*both flags"):
        isic.load_index(data_dir)


def test_missing_dataset_names_folder(tmp_path):
    with pytest.raises(MissingDatasetError, match="isic2017_256"):
        isic.load_index(tmp_path)
    with pytest.raises(MissingDatasetError, match="isic2017_256"):
        isic.verify(tmp_path)


def test_real_data_counts():
    root = real_data_dir(isic.FOLDER)
    if root is None:
        pytest.skip("real ISIC 2017 data not found (set MEDGAN_DATA or stage /work/shared/data)")
    index = isic.load_index(root)  # metadata only: labels matched against the image listing
    counts = pd.crosstab(index["split"], index["label"])[list(isic.CLASSES)]
    assert counts.loc["train"].tolist() == [374, 1372, 254]
    assert counts.loc["val"].tolist() == [30, 78, 42]
    assert counts.loc["test"].tolist() == [117, 393, 90]
    assert index["image_id"].is_unique and len(index) == 2750


def test_load_splits_keeps_the_chosen_classes_in_label_order(tmp_path):
    write_isic(tmp_path, per_class=(6, 2, 2), size=16)
    splits, ids = isic.load_splits(8, ("melanoma", "nevus"), tmp_path)
    index = isic.load_index(tmp_path).set_index("image_id")
    for split, (x, y) in splits.items():
        assert x.shape[1:] == (8, 8, 3) and x.dtype == np.uint8 and len(x) == len(y) == len(ids[split])
        names = index.loc[ids[split], "label"].to_numpy()
        assert "seborrheic_keratosis" not in names
        assert (np.array(["melanoma", "nevus"])[y] == names).all()  # melanoma is label 0, nevus 1
    y_nevus_first = isic.load_splits(8, ("nevus", "melanoma"), tmp_path)[0]["train"][1]
    assert (y_nevus_first == 1 - splits["train"][1]).all()


def test_load_splits_subsample_keeps_every_class_and_errors(tmp_path):
    write_isic(tmp_path, per_class=(10, 2, 2), size=16)
    splits, _ = isic.load_splits(8, data_dir=tmp_path, max_per_split=6, seed=1)
    assert len(splits["train"][1]) <= 7 and set(splits["train"][1]) == {0, 1}
    with pytest.raises(ValueError, match="classes must be distinct names"):
        isic.load_splits(8, ("melanoma", "basal_cell"), tmp_path)


@pytest.mark.skipif(real_data_dir(isic.FOLDER) is None, reason="real ISIC data not present")
def test_real_melanoma_nevus_splits():
    splits, ids = isic.load_splits(16, data_dir=real_data_dir(isic.FOLDER))
    assert {s: np.bincount(y).tolist() for s, (_, y) in splits.items()} == {
        "train": [374, 1372], "val": [30, 78], "test": [117, 393]}
    assert len(set(np.concatenate(list(ids.values())))) == 2364  # no image in two splits
