"""Nearest-neighbour memorisation: copies of training images are flagged, fresh samples are not."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_core.metrics.memorisation import memorisation_stats, nearest_distances, pixel_vectors


def make_sets(seed: int = 0):
    """Features and 16-px images from one distribution: train, held-out and fresh samples."""
    rng = np.random.default_rng(seed)
    feats = {name: rng.normal(size=(n, 8)) for name, n in (("train", 200), ("held", 100), ("fresh", 60))}
    images = {name: rng.integers(0, 256, (n, 16, 16), dtype=np.uint8)
              for name, n in (("train", 200), ("held", 100), ("fresh", 60))}
    return feats, images


def test_nearest_distances_hand_values():
    ref = np.array([[0.0, 0.0], [10.0, 0.0]])
    dist, idx = nearest_distances(np.array([[1.0, 0.0], [10.0, 3.0]]), ref)
    assert dist == pytest.approx([1.0, 3.0]) and idx.tolist() == [0, 1]


def test_pixel_vectors_are_rms_scaled():
    a = np.zeros((1, 4, 4), dtype=np.uint8)
    b = np.full((1, 4, 4), 51, dtype=np.uint8)  # every pixel differs by 0.2
    dist, _ = nearest_distances(pixel_vectors(a), pixel_vectors(b))
    assert dist[0] == pytest.approx(0.2)


def test_copies_of_training_images_are_flagged():
    feats, images = make_sets()
    copy_idx = np.arange(0, 100, 2)  # 50 training images copied
    res = memorisation_stats(feats["train"][copy_idx], feats["train"], feats["held"],
                             images["train"][copy_idx], images["train"], images["held"])
    assert list(res.summary.index) == ["feature", "pixel"]
    for space in ("feature", "pixel"):
        row = res.summary.loc[space]
        assert row["frac_fake_below"] == 1.0 and row["n_exact_copies"] == 50
        assert row["median_fake_to_train"] < 1e-6 < row["median_heldout_to_train"]
        assert row["mannwhitney_p"] < 1e-10
        pairs = res.pairs[space]
        assert (copy_idx[pairs["fake_index"]] == pairs["train_index"]).all()  # each copy finds its original
        assert pairs["distance"].is_monotonic_increasing


def test_fresh_samples_are_not_flagged():
    feats, images = make_sets()
    res = memorisation_stats(feats["fresh"], feats["train"], feats["held"],
                             images["fresh"], images["train"], images["held"])
    for space in ("feature", "pixel"):
        row = res.summary.loc[space]
        assert row["frac_fake_below"] < 0.2 and row["n_exact_copies"] == 0
        assert row["mannwhitney_p"] > 0.05
        assert row["frac_heldout_below"] == pytest.approx(0.05, abs=0.011)


def test_feature_only_and_input_errors():
    feats, images = make_sets()
    res = memorisation_stats(feats["fresh"], feats["train"], feats["held"])
    assert list(res.summary.index) == ["feature"] and set(res.pairs) == {"feature"}
    with pytest.raises(ValueError, match="together"):
        memorisation_stats(feats["fresh"], feats["train"], feats["held"], images_fake=images["fresh"])
    with pytest.raises(ValueError, match="same size"):
        memorisation_stats(feats["fresh"], feats["train"], feats["held"],
                           images["fresh"], images["train"][:, :8, :8], images["held"])
    with pytest.raises(ValueError, match="different widths"):
        memorisation_stats(feats["fresh"][:, :4], feats["train"], feats["held"])


# --- intervals by patient: the held-out patients are resampled, generated rows with their input's patient ---

PLAIN_COLUMNS = ["n_fake", "n_train", "n_heldout", "median_fake_to_train", "median_heldout_to_train", "threshold",
                 "frac_fake_below", "frac_heldout_below", "mannwhitney_p", "n_exact_copies"]
PATIENT_COLUMNS = ["median_ratio", "median_ratio_ci_low", "median_ratio_ci_high", "frac_fake_below_ci_low",
                   "frac_fake_below_ci_high", "n_patients"]


def patient_sets(seed: int = 0, n_held_patients: int = 4, per_patient: int = 15):
    """Features of crops clustered by patient (centre sd 1, jitter sd 0.5), 8-d; train of 12 other patients."""
    rng = np.random.default_rng(seed)

    def crops(n_patients: int, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        centres = rng.normal(0.0, 1.0, (n_patients, 8))
        groups = np.repeat([f"{prefix}{i}" for i in range(n_patients)], per_patient)
        return centres[np.repeat(np.arange(n_patients), per_patient)] + rng.normal(0, 0.5, (len(groups), 8)), groups

    (train, _), (held, g_held) = crops(12, "t"), crops(n_held_patients, "h")
    fresh = held + rng.normal(0.0, 0.5, held.shape)  # a new crop around each held-out input's patient centre
    copies = train[rng.choice(len(train), len(held), replace=False)] + rng.normal(0.0, 1e-3, held.shape)
    return train, held, g_held, fresh, copies


def test_without_groups_the_summary_is_unchanged():
    train, held, _, fresh, _ = patient_sets()
    res = memorisation_stats(fresh, train, held)
    assert list(res.summary.columns) == PLAIN_COLUMNS


def test_a_copying_generator_has_a_median_ratio_far_below_one_with_its_interval():
    train, held, g_held, _, copies = patient_sets()
    res = memorisation_stats(copies, train, held, groups_fake=g_held, groups_heldout=g_held, n_boot=300)
    row = res.summary.loc["feature"]
    assert list(res.summary.columns) == PLAIN_COLUMNS + PATIENT_COLUMNS
    assert row["median_ratio"] == pytest.approx(row["median_fake_to_train"] / row["median_heldout_to_train"])
    assert row["median_ratio"] < 0.01 and row["median_ratio_ci_high"] < 0.05 and row["n_patients"] == 4
    assert row["median_ratio_ci_low"] <= row["median_ratio"] <= row["median_ratio_ci_high"]
    assert row["frac_fake_below"] == 1.0 and row["frac_fake_below_ci_low"] == 1.0  # every draw: all copies below


def test_a_generator_that_does_not_copy_has_a_ratio_interval_around_one():
    train, held, g_held, fresh, _ = patient_sets()
    row = memorisation_stats(fresh, train, held, groups_fake=g_held, groups_heldout=g_held).summary.loc["feature"]
    assert row["median_ratio_ci_low"] < 1.0 < row["median_ratio_ci_high"]
    assert row["median_ratio_ci_low"] <= row["median_ratio"] <= row["median_ratio_ci_high"]
    assert row["frac_fake_below_ci_low"] <= row["frac_fake_below"] <= row["frac_fake_below_ci_high"]
    assert row["frac_fake_below_ci_high"] > row["frac_fake_below_ci_low"]


def test_pixel_space_gets_the_intervals_too():
    train, held, g_held, _, _ = patient_sets()
    rng = np.random.default_rng(1)
    im_train, im_held = (rng.integers(0, 256, (len(x), 8, 8), dtype=np.uint8) for x in (train, held))
    copy_idx = rng.choice(len(train), len(held), replace=False)
    res = memorisation_stats(train[copy_idx], train, held, im_train[copy_idx], im_train, im_held,
                             groups_fake=g_held, groups_heldout=g_held, n_boot=200)
    assert list(res.summary.index) == ["feature", "pixel"]
    assert (res.summary["median_ratio_ci_high"] < 0.01).all() and (res.summary["n_patients"] == 4).all()


def test_two_patients_give_no_interval():
    train, held, g_held, fresh, _ = patient_sets(n_held_patients=2)
    row = memorisation_stats(fresh, train, held, groups_fake=g_held, groups_heldout=g_held).summary.loc["feature"]
    assert np.isfinite(row["median_ratio"]) and row["n_patients"] == 2
    assert np.isnan([row["median_ratio_ci_low"], row["median_ratio_ci_high"], row["frac_fake_below_ci_low"],
                     row["frac_fake_below_ci_high"]]).all()


def test_group_errors_name_the_argument():
    train, held, g_held, fresh, _ = patient_sets()
    with pytest.raises(ValueError, match="together"):
        memorisation_stats(fresh, train, held, groups_fake=g_held)
    with pytest.raises(ValueError, match="groups_fake has 59 labels"):
        memorisation_stats(fresh, train, held, groups_fake=g_held[:-1], groups_heldout=g_held)
    with pytest.raises(ValueError, match="groups_heldout has 59 labels"):
        memorisation_stats(fresh, train, held, groups_fake=g_held, groups_heldout=g_held[:-1])
    with pytest.raises(ValueError, match="not held-out patients"):
        memorisation_stats(fresh, train, held, groups_fake=np.full(60, "stranger"), groups_heldout=g_held)
