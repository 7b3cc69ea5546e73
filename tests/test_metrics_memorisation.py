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
