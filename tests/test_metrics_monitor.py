"""The training monitor: the study's metrics at every validation, without touching the training's random state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medgan_core.data.datasets import resize_images, to_tensor_images
from medgan_core.metrics.fidelity import RealImages
from medgan_core.metrics.monitor import GROUP_METRICS, TrainingMonitor

CLASSES = ("dark", "light")


def _images(n, level, rng, size=16):
    """Noisy images around one grey level with a random bright square: a class with variety."""
    x = np.clip(rng.normal(level, 20, (n, size, size, 3)), 0, 255)
    for i in range(n):
        r, c = rng.integers(0, size - 4, 2)
        x[i, r:r + 4, c:c + 4] = 255
    return x.astype(np.uint8)


def _split(n, rng):
    x = np.concatenate([_images(n, 60, rng), _images(n, 180, rng)])
    return x, np.repeat([0, 1], n)


def features(images):
    """A fixed random projection of the pixels: a stand-in encoder."""
    x = to_tensor_images(images) if isinstance(images, np.ndarray) else images
    w = torch.Generator().manual_seed(0)
    proj = torch.randn(x[0].numel(), 16, generator=w)
    return (x.flatten(1) @ proj).double().numpy()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return _split(60, rng), _split(30, rng)


def test_columns_per_class_and_reference_is_the_heldout_itself(data):
    train, held = data
    mon = TrainingMonitor(features, train, held, CLASSES, max_per_class=20, ms_ssim_pairs=10)
    ref = mon.reference()
    for m in GROUP_METRICS:
        assert m in ref and f"{m}[dark]" in ref and f"{m}[light]" in ref
    assert ref["nn_ratio"] == pytest.approx(1.0) and "c2st_auc" not in ref


def test_copies_of_training_images_read_as_memorised_and_fresh_images_do_not(data):
    train, held = data
    mon = TrainingMonitor(features, train, held, CLASSES, max_per_class=20, ms_ssim_pairs=10)
    copies = mon(RealImages((mon.x_tr, mon.y_tr)))  # samples drawn from the very training images compared against
    fresh = mon(RealImages(_split(40, np.random.default_rng(5))))
    assert copies["nn_ratio"] < 0.2 and copies["nn_ratio[dark]"] < 0.2
    assert 0.6 < fresh["nn_ratio"] < 1.6
    assert fresh["recall"] > 0.5 and fresh["precision"] > 0.5


def test_a_collapsed_generator_has_low_recall_and_high_ms_ssim(data):
    train, held = data
    mon = TrainingMonitor(features, train, held, CLASSES, max_per_class=20, ms_ssim_pairs=20)
    one = {c: np.repeat(train[0][train[1] == c][:1], 40, axis=0) for c in (0, 1)}

    def collapsed(cls, n, seed):
        return to_tensor_images(one[cls][:n])

    out, ref = mon.score_sampler(collapsed), mon.reference()
    assert out["recall"] < ref["recall"] / 2
    assert out["ms_ssim[dark]"] > 0.99 > ref["ms_ssim[dark]"]


def test_the_monitor_leaves_the_global_random_state_alone(data):
    train, held = data
    mon = TrainingMonitor(features, train, held, CLASSES, max_per_class=20, ms_ssim_pairs=10, c2st_epochs=1)
    torch.manual_seed(3)
    np.random.seed(3)
    before_t, before_n = torch.get_rng_state(), np.random.get_state()[1].copy()
    out = mon(RealImages(_split(40, np.random.default_rng(5))))
    assert 0.0 <= out["c2st_auc"] <= 1.0
    assert torch.equal(torch.get_rng_state(), before_t) and (np.random.get_state()[1] == before_n).all()


def test_checkpoint_table_spreads_the_validations(data):
    evals = pd.DataFrame({"step": [10, 20, 30, 40, 50], "seconds": range(5), "score": [5, 4, 3, 2, 1],
                          **{f"recall{s}": [0.1, 0.2, 0.3, 0.4, 0.5] for s in ("", "[dark]", "[light]")}})
    table = TrainingMonitor.checkpoint_table({"g": evals}, CLASSES, n_points=3)
    assert table.index.get_level_values("step").unique().tolist() == [10, 30, 50]
    assert table.loc[("g", 50, "all"), "kid"] == 1 and np.isnan(table.loc[("g", 50, "dark"), "kid"])
    assert table.loc[("g", 30, "light"), "recall"] == 0.3


def test_bad_settings_are_named(data):
    train, held = data
    with pytest.raises(ValueError, match="max_per_class"):
        TrainingMonitor(features, train, held, CLASSES, max_per_class=5)
    with pytest.raises(ValueError, match="1 classes were named"):
        TrainingMonitor(features, train, held, ("one",))


def test_resize_images_keeps_uint8_and_passes_equal_sizes_through():
    x = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert resize_images(x, 16) is x
    y = resize_images(x, 8)
    assert y.shape == (3, 8, 8, 3) and y.dtype == np.uint8
    assert abs(float(y.mean()) - float(x.mean())) < 3
    assert resize_images(x[..., 0], 8).shape == (3, 8, 8)
    with pytest.raises(TypeError, match="uint8"):
        resize_images(x.astype(np.float32), 8)
