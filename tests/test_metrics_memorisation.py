"""Nearest-neighbour memorisation: copies of training images are flagged, fresh samples are not."""

from __future__ import annotations

import numpy as np
import pytest

from medgan_core.metrics.memorisation import (
    VERDICTS, heldout_shift, memorisation_stats, memorisation_verdict, nearest_distances, pixel_vectors,
)


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
                 "frac_fake_below", "frac_heldout_below", "mannwhitney_p", "n_exact_copies", "median_ratio"]
INTERVAL_COLUMNS = ["median_ratio_ci_low", "median_ratio_ci_high", "frac_fake_below_ci_low", "frac_fake_below_ci_high"]
PATIENT_COLUMNS = INTERVAL_COLUMNS + ["n_patients"]


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


def test_without_groups_the_summary_has_the_ratio_but_no_interval():
    train, held, _, fresh, _ = patient_sets()
    res = memorisation_stats(fresh, train, held)
    assert list(res.summary.columns) == PLAIN_COLUMNS
    row = res.summary.loc["feature"]
    assert row["median_ratio"] == pytest.approx(row["median_fake_to_train"] / row["median_heldout_to_train"])


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


# --- intervals by image (independent images, e.g. ISIC) and the verdict ---

IMAGE_COLUMNS = PLAIN_COLUMNS + INTERVAL_COLUMNS + ["n_units"]


def planted_copy_sets(seed: int = 0, fake_index: int = 17, train_index: int = 42):
    """Fresh generated features and 16-px RGB images, except one exact copy of a training image."""
    feats, _ = make_sets(seed)
    rng = np.random.default_rng(seed + 1)
    images = {name: rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
              for name, n in (("train", 200), ("held", 100), ("fresh", 60))}
    feats["fresh"][fake_index] = feats["train"][train_index]
    images["fresh"][fake_index] = images["train"][train_index]
    return feats, images


def test_a_planted_copy_among_fresh_images_is_found():
    feats, images = planted_copy_sets()
    res = memorisation_stats(feats["fresh"], feats["train"], feats["held"], images["fresh"], images["train"],
                             images["held"], image_intervals=True, n_boot=200)
    for space in ("feature", "pixel"):
        assert res.summary.loc[space, "n_exact_copies"] == 1
        closest = res.pairs[space].iloc[0]
        assert (closest["fake_index"], closest["train_index"]) == (17, 42) and closest["distance"] < 1e-6
        assert res.pairs[space]["distance"].iloc[1] > 0.1 * res.summary.loc[space, "median_heldout_to_train"]
        out = memorisation_verdict(res.summary, space)
        assert out["verdict"] == "copies found"
        assert out["sentence"].startswith(f"Copies found in {space} space: 1 generated image is an exact copy")
        assert "Exact copies of training images: 1." in out["sentence"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fresh_independent_images_give_no_sign_and_a_ratio_interval_around_one(seed):
    feats, images = make_sets(seed)
    res = memorisation_stats(feats["fresh"], feats["train"], feats["held"], images["fresh"], images["train"],
                             images["held"], image_intervals=True, n_boot=300, seed=seed)
    assert list(res.summary.columns) == IMAGE_COLUMNS
    for space in ("feature", "pixel"):
        row = res.summary.loc[space]
        assert row["n_units"] == 100 and row["n_exact_copies"] == 0
        assert row["median_ratio_ci_low"] < 1.0 < row["median_ratio_ci_high"]
        assert row["median_ratio_ci_low"] <= row["median_ratio"] <= row["median_ratio_ci_high"]
        assert row["frac_fake_below_ci_low"] <= row["frac_fake_below"] <= row["frac_fake_below_ci_high"]
        assert row["frac_fake_below_ci_low"] <= 0.05
        out = memorisation_verdict(res.summary, space)
        assert out["verdict"] == "no sign of memorisation"
        assert f"{row['median_ratio']:.3f} (95% CI {row['median_ratio_ci_low']:.3f} to " in out["sentence"]
        assert "below 1 means that generated images lie closer to the training images" in out["sentence"]


def test_image_intervals_resample_the_two_sets_separately():
    """Intervals by image: reproducible from the seed, narrower with more images, other columns untouched."""
    feats, _ = make_sets()
    args = (feats["fresh"], feats["train"], feats["held"])
    plain = memorisation_stats(*args).summary
    a = memorisation_stats(*args, image_intervals=True, n_boot=200, seed=3).summary
    b = memorisation_stats(*args, image_intervals=True, n_boot=200, seed=3).summary
    assert a.equals(b) and a[PLAIN_COLUMNS].equals(plain)
    small = memorisation_stats(feats["fresh"][:20], feats["train"], feats["held"][:20], image_intervals=True,
                               n_boot=200, seed=3).summary.loc["feature"]
    width = a.loc["feature", "median_ratio_ci_high"] - a.loc["feature", "median_ratio_ci_low"]
    assert small["median_ratio_ci_high"] - small["median_ratio_ci_low"] > width


def test_near_copies_are_closer_than_new_real_images():
    train, held, g_held, _, copies = patient_sets()  # training rows plus noise of sd 1e-3: no exact copy
    for kw in ({}, {"image_intervals": True, "n_boot": 200}, {"groups_fake": g_held, "groups_heldout": g_held,
                                                              "n_boot": 200}):
        summary = memorisation_stats(copies, train, held, **kw).summary
        assert summary.loc["feature", "n_exact_copies"] == 0
        out = memorisation_verdict(summary)
        assert out["verdict"] == "closer than new real images", kw
        assert out["sentence"].startswith("Generated images lie closer to the training images than new real images")


def test_a_share_of_near_copies_is_caught_by_the_fraction_below():
    """A third of the generated images are near copies: the median barely moves, the share below does."""
    feats, _ = make_sets()
    fake = feats["fresh"].copy()
    fake[:20] = feats["train"][:20] + 1e-3
    summary = memorisation_stats(fake, feats["train"], feats["held"], image_intervals=True, n_boot=300).summary
    row = summary.loc["feature"]
    assert row["frac_fake_below_ci_low"] > 0.05 and row["n_exact_copies"] == 0
    assert memorisation_verdict(summary)["verdict"] == "closer than new real images"


def test_closer_on_the_median_without_near_copies_says_so():
    """Every generated point sits at 0.75 x the held-out median distance from a training point: the median ratio
    falls below 1, but the share below the held-out 5th percentile does not rise: no near copies."""
    rng = np.random.default_rng(0)
    train, held = rng.normal(size=(400, 8)), rng.normal(size=(200, 8))
    direction = rng.normal(size=(300, 8))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    fake = train[rng.integers(0, 400, 300)] + 0.75 * 1.54 * direction  # 1.54: the held-out median NN distance
    summary = memorisation_stats(fake, train, held, image_intervals=True, n_boot=200, seed=0).summary
    row = summary.loc["feature"]
    assert row["median_ratio_ci_high"] < 1 and row["frac_fake_below_ci_high"] <= 0.05
    out = memorisation_verdict(summary)
    assert out["verdict"] == "closer than new real images"
    assert "without near copies" in out["sentence"] and "a sign of memorisation" not in out["sentence"]
    copies = memorisation_stats(train[:300] + 1e-3, train, held, image_intervals=True, n_boot=200, seed=0).summary
    assert "a sign of memorisation" in memorisation_verdict(copies)["sentence"]


def test_heldout_shift_shows_a_set_collected_differently():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (200, 8, 8, 3), dtype=np.uint8)
    same = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    darker = (rng.integers(0, 256, (50, 8, 8, 3)) * 0.5).astype(np.uint8)  # another "site": half as bright
    f = lambda x: x.reshape(len(x), -1)[:, :16].astype(float) / 255  # noqa: E731
    shift = heldout_shift(f(train), train, {"same": (f(same), same), "darker": (f(darker), darker)})
    assert shift.index.tolist() == ["same", "darker"] and shift.images.tolist() == [50, 50]
    assert shift.loc["darker", "pixel"] > shift.loc["same", "pixel"] and shift.loc["darker", "feature"] > shift.loc["same", "feature"]
    with pytest.raises(ValueError, match="held-out set 'same': 3 feature rows for 50 images"):
        heldout_shift(f(train), train, {"same": (f(same)[:3], same)})


def test_fresh_images_without_intervals_give_no_sign():
    feats, _ = make_sets()
    out = memorisation_verdict(memorisation_stats(feats["fresh"], feats["train"], feats["held"]).summary)
    assert out["verdict"] == "no sign of memorisation" and "Mann-Whitney p = " in out["sentence"]


def test_too_few_images_give_no_verdict():
    feats, _ = make_sets()
    summary = memorisation_stats(feats["fresh"][:5], feats["train"], feats["held"][:2], image_intervals=True).summary
    row = summary.loc["feature"]
    assert np.isfinite(row["median_ratio"]) and row["n_units"] == 2
    assert np.isnan(row[INTERVAL_COLUMNS].to_numpy(dtype=float)).all()
    out = memorisation_verdict(summary)
    assert out["verdict"] == "no verdict" and "an interval needs at least 3" in out["sentence"]
    two_patients = patient_sets(n_held_patients=2)
    train, held, g_held, fresh, _ = two_patients
    summary = memorisation_stats(fresh, train, held, groups_fake=g_held, groups_heldout=g_held).summary
    assert memorisation_verdict(summary)["verdict"] == "no verdict"
    assert set(VERDICTS) == {"copies found", "closer than new real images", "no sign of memorisation", "no verdict"}


def test_image_interval_and_verdict_errors_name_the_argument():
    train, held, g_held, fresh, _ = patient_sets()
    with pytest.raises(ValueError, match="not both"):
        memorisation_stats(fresh, train, held, groups_fake=g_held, groups_heldout=g_held, image_intervals=True)
    with pytest.raises(ValueError, match="n_boot must be at least 2"):
        memorisation_stats(fresh, train, held, image_intervals=True, n_boot=1)
    summary = memorisation_stats(fresh, train, held).summary
    with pytest.raises(ValueError, match="space 'pixel' is not in the summary"):
        memorisation_verdict(summary, "pixel")
    with pytest.raises(ValueError, match="summary lacks the columns \\['median_ratio'\\]"):
        memorisation_verdict(summary.drop(columns="median_ratio"))
    with pytest.raises(ValueError, match="quantile must lie in"):
        memorisation_verdict(summary, quantile=5)
