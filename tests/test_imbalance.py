"""Imbalance tools: counts, subsampling, stratified and grouped splits, with hand-known results."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_core.data import imbalance as im

LABELS = np.array(["a"] * 20 + ["b"] * 10 + ["c"] * 2)


def test_class_counts_and_ratio():
    counts = im.class_counts(LABELS)
    assert counts.to_dict() == {"a": 20, "b": 10, "c": 2} and counts.name == "count"
    assert im.imbalance_ratio(LABELS) == 10.0
    assert im.imbalance_ratio([1, 1, 0, 0]) == 1.0


@pytest.mark.parametrize("fraction, n_kept", [(0.5, 10), (0.26, 5), (0.01, 1), (1.0, 20)])
def test_subsample_class(fraction, n_kept):
    kept = im.subsample_class(LABELS, "a", fraction, seed=3)
    assert (LABELS[kept] == "a").sum() == n_kept and (LABELS[kept] != "a").sum() == 12
    assert np.array_equal(kept, np.sort(kept)) and len(set(kept)) == len(kept)
    assert np.array_equal(kept, im.subsample_class(LABELS, "a", fraction, seed=3))  # deterministic


def test_subsample_seed_changes_choice():
    picks = {tuple(im.subsample_class(LABELS, "a", 0.25, seed=s)) for s in range(5)}
    assert len(picks) > 1


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1])
def test_subsample_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        im.subsample_class(LABELS, "a", fraction)


def test_subsample_unknown_class():
    with pytest.raises(ValueError, match="'z' is not in labels"):
        im.subsample_class(LABELS, "z", 0.5)


def test_cap_class_counts():
    kept = im.cap_class_counts(LABELS, 5, seed=0)
    assert im.class_counts(LABELS[kept]).to_dict() == {"a": 5, "b": 5, "c": 2}
    with pytest.raises(ValueError, match="positive int"):
        im.cap_class_counts(LABELS, 0)


def test_stratified_split_exact_per_class_sizes():
    parts = im.stratified_split(LABELS, (0.7, 0.15, 0.15), seed=0)
    # a: 14 / 3 / 3; b: 7 / 1.5 / 1.5 -> 7 / 2 / 1 (tie to the earlier part); c: 1.4 / 0.3 / 0.3 -> 2 / 0 / 0
    assert im.class_counts(LABELS[parts["train"]]).to_dict() == {"a": 14, "b": 7, "c": 2}
    assert im.class_counts(LABELS[parts["val"]]).to_dict() == {"a": 3, "b": 2}
    assert im.class_counts(LABELS[parts["test"]]).to_dict() == {"a": 3, "b": 1}
    everything = np.concatenate(list(parts.values()))
    assert sorted(everything.tolist()) == list(range(len(LABELS)))  # disjoint and complete


def test_stratified_split_names_and_seed():
    two = im.stratified_split(LABELS, (0.5, 0.5), seed=1)
    assert set(two) == {"train", "test"}
    assert not np.array_equal(two["train"], im.stratified_split(LABELS, (0.5, 0.5), seed=2)["train"])
    named = im.stratified_split(LABELS, (0.5, 0.5), seed=1, names=("fit", "hold"))
    assert np.array_equal(named["fit"], two["train"])


@pytest.mark.parametrize("fractions", [(0.7, 0.2), (1.0,), (0.0, 0.5, 0.5), (0.7, 0.4, -0.1)])
def test_stratified_split_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        im.stratified_split(LABELS, fractions)


def test_grouped_split_keeps_groups_whole():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 5)  # 20 patients of 5 samples
    labels = np.repeat(rng.integers(0, 3, size=20), 5)
    parts = im.grouped_split(labels, groups, (0.6, 0.2, 0.2), seed=4)
    owners = [set(groups[idx]) for idx in parts.values()]
    assert all(len(o) > 0 for o in owners)
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sum(len(idx) for idx in parts.values()) == 100
    assert 45 <= len(parts["train"]) <= 75  # near the 60 % target
    assert np.array_equal(parts["val"], im.grouped_split(labels, groups, (0.6, 0.2, 0.2), seed=4)["val"])


def test_grouped_split_every_part_gets_a_group():
    labels, groups = np.array([0, 0, 1, 1, 1]), np.array(["p", "p", "q", "r", "r"])
    parts = im.grouped_split(labels, groups, (0.8, 0.1, 0.1), seed=0)
    assert sorted(len(set(groups[idx])) for idx in parts.values()) == [1, 1, 1]


def test_grouped_split_too_few_groups():
    with pytest.raises(ValueError, match="only 2 groups for 3 parts"):
        im.grouped_split([0, 1, 0, 1], ["p", "p", "q", "q"], (0.6, 0.2, 0.2))


def test_grouped_kfold_each_group_tested_once():
    groups = np.repeat([f"LIDC-{k}" for k in range(8)], 3)
    labels = np.tile([1, 5, 5], 8)
    folds = im.grouped_kfold(labels, groups, n_splits=4, seed=0)
    assert len(folds) == 4
    tested = [g for fold in folds for g in sorted(set(groups[fold["test"]]))]
    assert sorted(tested) == sorted(set(groups))  # every group is the test part exactly once
    for fold in folds:
        assert not set(groups[fold["train"]]) & set(groups[fold["test"]])
        assert len(fold["train"]) + len(fold["test"]) == 24


@pytest.mark.parametrize("n_splits", [1, 9])
def test_grouped_kfold_bad_n_splits(n_splits):
    groups = np.repeat(np.arange(8), 2)
    with pytest.raises(ValueError, match=r"n_splits must be an int from 2 to the number of groups \(8\)"):
        im.grouped_kfold(np.zeros(16, int), groups, n_splits)


def test_length_mismatch():
    with pytest.raises(ValueError, match="one entry per label"):
        im.grouped_kfold([0, 1, 0], ["a", "b"], 2)
    with pytest.raises(ValueError, match="empty"):
        im.class_counts([])


def test_split_count_table_counts_every_class_and_split():
    splits = {"train": (None, np.array([0, 0, 2])), "val": (None, np.array([1]))}
    table = im.split_count_table(splits, ["a", "b", "c"])
    assert table.loc["a"].tolist() == [2, 0, 2] and table.loc["b"].tolist() == [0, 1, 1]
    assert table.loc["c", "train"] == 1 and list(table.columns) == ["train", "val", "total"]


def test_fold_with_most_levels_counts_each_group_once():
    labels = np.array([1, 1, 1, 2, 3, 3])
    groups = np.array(["n1", "n1", "n1", "n2", "n3", "n3"])
    folds = [{"train": np.array([3, 4, 5]), "test": np.array([0, 1, 2])},  # one level (1) however many rows
             {"train": np.array([0, 1, 2]), "test": np.array([3, 4, 5])}]  # two levels
    assert im.fold_with_most_levels(folds, labels, groups) == 1
    tie = [{"train": np.array([0]), "test": np.array([3])}, {"train": np.array([0, 1]), "test": np.array([4])}]
    assert im.fold_with_most_levels(tie, labels, groups) == 1  # ties: the larger training side
    with pytest.raises(ValueError, match="no folds"):
        im.fold_with_most_levels([], labels, groups)


# ---- proportional cap -----------------------------------------------------------------------------

@pytest.mark.parametrize("counts, max_total", [((1140, 100, 400), 500), ((3494, 1214), 1000), ((205, 87, 33), 150)])
def test_proportional_cap_preserves_the_ratio(counts, max_total):
    labels = np.repeat(np.arange(len(counts)), counts)
    kept = im.proportional_cap(labels, max_total, seed=1, min_per_class=5)
    after = np.bincount(labels[kept], minlength=len(counts))
    assert after.sum() == max_total and len(set(kept)) == len(kept) and np.array_equal(kept, np.sort(kept))
    n, scale = np.array(counts), max_total / sum(counts)
    assert np.all(np.abs(after - n * scale) < 1)  # each class within rounding of its share
    before_ratio, after_ratio = im.cap_ratio(labels, kept)
    assert before_ratio == pytest.approx(n.max() / n.min())
    # max/min within rounding: (n_max s +- 1) / (n_min s -+ 1)
    low, high = (n.max() * scale - 1) / (n.min() * scale + 1), (n.max() * scale + 1) / (n.min() * scale - 1)
    assert low <= after_ratio <= high
    assert np.array_equal(kept, im.proportional_cap(labels, max_total, seed=1, min_per_class=5))  # deterministic


def test_proportional_cap_versus_the_per_class_cap():
    labels = np.repeat(["rbc", "wbc", "platelet"], [1140, 100, 200])  # 11.4 : 1 : 2
    flat = im.cap_class_counts(labels, 300, seed=0)
    prop = im.proportional_cap(labels, 640, seed=0)
    assert im.cap_ratio(labels, flat) == pytest.approx((11.4, 3.0))  # the per-class cap erases the imbalance
    assert im.cap_ratio(labels, prop)[1] == pytest.approx(11.4, rel=0.03)


def test_proportional_cap_floor_small_classes_and_errors():
    labels = np.repeat([0, 1, 2], [1000, 100, 4])
    kept = im.proportional_cap(labels, 110, min_per_class=10)
    after = np.bincount(labels[kept])
    # share 110/1104: 99.6, 9.96, 0.4; class 2 is kept whole (4 < 10), class 1 lifted to its floor 10, class 0 gets the rest
    assert after.tolist() == [96, 10, 4]
    kept = im.proportional_cap(labels, 110, min_per_class=2)
    assert np.bincount(labels[kept]).tolist() == [98, 10, 2]  # class 2 floored at 2; 108 shared: 98.2, 9.8 -> 98, 10
    assert len(im.proportional_cap(labels, 5000)) == len(labels)  # nothing to cap
    with pytest.raises(ValueError, match="cannot keep 50 samples"):
        im.proportional_cap(labels, 60, min_per_class=50)
    with pytest.raises(ValueError, match="positive int"):
        im.proportional_cap(labels, 0)


def test_hold_out_groups_moves_whole_groups():
    from medgan_core.data.imbalance import hold_out_groups
    groups = np.array(["a", "a", "b", "b", "b", "c", "d"])
    kept, held, ids = hold_out_groups(np.array([0, 1, 2, 3, 4, 5]), groups, 1, seed=0)
    assert len(ids) == 1 and ids[0] in {"a", "b", "c"} and set(groups[held]) == set(ids)
    assert not set(groups[kept]) & set(ids) and sorted(np.r_[kept, held]) == [0, 1, 2, 3, 4, 5]
    assert hold_out_groups(np.array([0, 1]), groups, 0)[1].size == 0
    with pytest.raises(ValueError, match="n_groups"):
        hold_out_groups(np.array([0, 1]), groups, 1)  # one group only: nothing would be left to train on
