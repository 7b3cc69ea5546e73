"""The small CNN classifier, its training loop, and the cached domain encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medgan_core.metrics.encoder import DomainEncoder, default_cache_dir, fit_domain_encoder
from medgan_core.models.classifier import (
    CLASSIFIERS, DEFAULT_GRID, ClassifierSettings, SmallCNN, _balanced_indices, build_classifier, fit_classifier,
    images_to_tensor, predict_proba,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster and steadier on one thread when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_images(n_per_class: int, size: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: dark vs bright centre square, plus noise; uint8 `(N, H, W[, C])`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(100, 20, size=(2 * n_per_class, size, size, channels))
    y = np.repeat([0, 1], n_per_class)
    c = size // 4
    x[y == 1, c:-c, c:-c] += 100
    x = np.clip(x, 0, 255).astype(np.uint8)
    return (x[..., 0] if channels == 1 else x), y


# ---------------------------------------------------------------- SmallCNN and builder

CNN_CASES = [  # (in_channels, size, width)
    (1, 16, 4),
    (1, 28, 8),
    (3, 16, 4),
    (3, 32, 8),
]


@pytest.mark.parametrize("in_channels,size,width", CNN_CASES)
def test_small_cnn_shapes(in_channels, size, width):
    torch.manual_seed(0)
    net = SmallCNN(in_channels, 3, width=width, image_size=size).eval()
    x = torch.randn(5, in_channels, size, size)
    assert net(x).shape == (5, 3)
    assert net.features(x).shape == (5, 4 * width)
    assert SmallCNN(in_channels, 2, width=width, image_size=size, feature_dim=7).features(x).shape == (5, 7)


@pytest.mark.parametrize("size", [16, 64])
def test_small_cnn_stem_stride_halves_like_the_pool(size):
    torch.manual_seed(0)
    pooled, strided = SmallCNN(3, 2, width=4, image_size=size), SmallCNN(3, 2, width=4, image_size=size, stem_stride=2)
    x = torch.randn(3, 3, size, size)
    assert pooled.body(x).shape == strided.body(x).shape == (3, 16, size // 8, size // 8)
    assert sum(p.numel() for p in pooled.parameters()) == sum(p.numel() for p in strided.parameters())
    assert isinstance(strided.body[0][3], torch.nn.Identity) and strided.body[0][0].stride == (2, 2)
    with pytest.raises(ValueError, match="stem_stride must be 1"):
        SmallCNN(3, 2, stem_stride=4)


def test_small_cnn_rejects_bad_input():
    with pytest.raises(ValueError, match="image_size must be >= 16"):
        SmallCNN(1, 2, image_size=8)
    with pytest.raises(ValueError, match="in_channels must be 1"):
        SmallCNN(2, 2)
    net = SmallCNN(1, 2, width=4)
    with pytest.raises(ValueError, match=r"expects input \(n, 1, H, W\)"):
        net(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 16 px"):
        net(torch.randn(2, 1, 8, 8))


def test_build_classifier_registry():
    net = build_classifier("small_cnn", 3, 4, width=4, image_size=16)
    assert isinstance(net, SmallCNN) and net.num_classes == 4 and net.in_channels == 3
    with pytest.raises(ValueError, match="valid names: \\['small_cnn'"):
        build_classifier("resnet9000", 1, 2)
    assert set(CLASSIFIERS) >= {"small_cnn"}


def test_classifier_settings_and_default_grid():
    st = ClassifierSettings.coerce({"width": 16, "lr": 3e-3, "epochs": 30, "patience": 8})
    assert st == ClassifierSettings(16, 3e-3, 30, 8) and ClassifierSettings.coerce(st) is st
    assert st.as_dict() == {"width": 16, "lr": 3e-3, "epochs": 30, "patience": 8}
    assert 4 <= len(DEFAULT_GRID) <= 6 and len(set(DEFAULT_GRID)) == len(DEFAULT_GRID)  # small, no repeats
    with pytest.raises(ValueError, match="Unknown classifier setting"):
        ClassifierSettings.coerce({"width": 8, "momentum": 0.9})
    with pytest.raises(ValueError, match="lr must be > 0"):
        ClassifierSettings(lr=0)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        ClassifierSettings(epochs=0)


# ---------------------------------------------------------------- images_to_tensor

def test_images_to_tensor_layouts_and_range():
    gray = np.array([[[0, 255], [255, 0]]] * 2, dtype=np.uint8).repeat(8, 1).repeat(8, 2)  # `(2, 16, 16)`
    t = images_to_tensor(gray, 16)
    assert t.shape == (2, 1, 16, 16) and t.dtype == torch.float32
    assert t.min().item() == -1.0 and t.max().item() == 1.0
    rgb = images_to_tensor(gray, 16, in_channels=3)  # grayscale repeated to RGB
    assert rgb.shape == (2, 3, 16, 16) and torch.equal(rgb[:, 0], rgb[:, 2])
    hwc = np.zeros((3, 20, 24, 3), dtype=np.uint8)
    assert images_to_tensor(hwc, 16).shape == (3, 3, 16, 16)
    fake = torch.zeros(4, 3, 32, 32)  # a generator's output, channel-first in [-1, 1]
    assert images_to_tensor(fake, 16, 3).shape == (4, 3, 16, 16)


def test_images_to_tensor_errors():
    with pytest.raises(ValueError, match="convert RGB images to grayscale"):
        images_to_tensor(np.zeros((2, 16, 16, 3), np.uint8), 16, in_channels=1)
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        images_to_tensor(np.full((2, 16, 16), 3.0, np.float32), 16)
    with pytest.raises(ValueError, match="size must be >= 16"):
        images_to_tensor(np.zeros((2, 16, 16), np.uint8), 8)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        images_to_tensor(np.zeros((2, 16, 16, 2), np.uint8), 16)


# ---------------------------------------------------------------- training loop

def test_balanced_indices_equalises_classes():
    y = torch.tensor([0] * 10 + [1] * 3 + [2] * 1)
    idx = _balanced_indices(y, 3, torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx], minlength=3).tolist() == [10, 10, 10]
    assert set(idx[y[idx] == 2].tolist()) == {13}


def test_fit_classifier_learns_and_keeps_best_epoch():
    x, y = toy_images(40, 16, 1)
    xv, yv = toy_images(10, 16, 1, seed=1)
    t, tv = images_to_tensor(x, 16), images_to_tensor(xv, 16)
    torch.manual_seed(0)
    net = SmallCNN(1, 2, width=4, image_size=16)
    fit = fit_classifier(net, t, torch.as_tensor(y), tv, torch.as_tensor(yv), num_epochs=6, patience=2, seed=0,
                        batch_size=16, lr=3e-3)
    hist = fit.history
    assert 1 <= fit.epochs_run <= 6 and len(hist) == fit.epochs_run
    assert fit.best_val_balanced_accuracy == hist.val_balanced_accuracy.max()
    assert hist.val_balanced_accuracy[fit.best_epoch - 1] == fit.best_val_balanced_accuracy
    proba = predict_proba(net, tv)  # the restored best weights give the logged score
    assert np.allclose(proba.sum(1), 1.0)
    assert (proba.argmax(1) == yv).mean() == pytest.approx(fit.best_val_balanced_accuracy)  # balanced val set
    assert fit.best_val_balanced_accuracy >= 0.9


def test_fit_classifier_checks_inputs():
    net = SmallCNN(1, 2, width=4)
    with pytest.raises(ValueError, match="3 images but y_train has 2"):
        fit_classifier(net, torch.zeros(3, 1, 16, 16), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="both x_val and y_val"):
        fit_classifier(net, torch.zeros(3, 1, 16, 16), torch.zeros(3, dtype=torch.long), x_val=torch.zeros(1, 1, 16, 16))


def plateau_data(n_val: int = 8) -> tuple[torch.Tensor, ...]:
    """A learnable training set and a validation set no net can improve on: every validation image is the
    same, half labelled 0 and half 1, so its balanced accuracy is 0.5 at every epoch."""
    x, y = toy_images(16, 16, 1)
    t = images_to_tensor(x, 16)
    tv = t[:1].repeat(n_val, 1, 1, 1)
    yv = torch.arange(n_val) % 2
    return t, torch.as_tensor(y), tv, yv


@pytest.mark.parametrize("reduce_lr_patience,factor,expected", [
    # Keras' counting: epoch 1 sets the best; after `patience` epochs without a rise the next epoch runs slower.
    (2, 0.5, [1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3]),
    (1, 0.1, [1e-2, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]),
    (3, 0.5, [1e-2, 1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 5e-3]),
])
def test_learning_rate_drops_after_reduce_lr_patience_epochs_without_improvement(reduce_lr_patience, factor, expected):
    t, y, tv, yv = plateau_data()
    torch.manual_seed(0)
    net = SmallCNN(1, 2, width=4, image_size=16)
    fit = fit_classifier(net, t, y, tv, yv, num_epochs=7, lr=1e-2, batch_size=16, seed=0,
                         reduce_lr_patience=reduce_lr_patience, reduce_lr_factor=factor)
    hist = fit.history
    assert (hist.val_balanced_accuracy == 0.5).all()  # the plateau the scheduler watches
    assert hist.lr.tolist() == pytest.approx(expected, rel=1e-9)
    assert fit.epochs_run == 7 and fit.best_epoch == 1  # no early stopping: patience=None


def test_without_reduce_lr_the_learning_rate_and_the_run_are_unchanged():
    t, y, tv, yv = plateau_data()
    runs = []
    for kw in ({}, {"reduce_lr_patience": 50}):  # a patience never reached must not change a single step
        torch.manual_seed(0)
        net = SmallCNN(1, 2, width=4, image_size=16)
        runs.append((fit_classifier(net, t, y, tv, yv, num_epochs=4, lr=1e-2, batch_size=16, seed=0, **kw), net))
    (a, net_a), (b, net_b) = runs
    assert a.history.lr.tolist() == [1e-2] * 4 and list(a.history.columns) == [
        "epoch", "train_loss", "val_loss", "val_balanced_accuracy", "lr"]
    assert a.history.equals(b.history)
    assert all(torch.equal(p, q) for p, q in zip(net_a.state_dict().values(), net_b.state_dict().values()))


def test_the_lowered_learning_rate_slows_the_steps():
    """The optimizer really steps at the lowered rate: Adam's steps shrink with it (~100x for factor 0.01)."""
    t, y, tv, yv = plateau_data()
    step_sizes = {}
    for patience in (None, 1):
        torch.manual_seed(0)
        net = SmallCNN(1, 2, width=4, image_size=16)
        weights = []

        def spy(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            """Record the weights before every step (the augmentation hook runs once per batch)."""
            weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
            return x

        fit_classifier(net, t, y, tv, yv, num_epochs=3, lr=1e-2, batch_size=16, seed=0, augment=spy,
                       reduce_lr_patience=patience, reduce_lr_factor=0.01)
        assert len(weights) == 6  # 32 images, 2 steps per epoch
        step_sizes[patience] = [float((b - a).abs().max()) for a, b in zip(weights, weights[1:])]
    # Epochs 1 and 2 (steps 1-4) are identical; the step from epoch 3's first batch is 100x smaller with the drop.
    assert step_sizes[1][:4] == step_sizes[None][:4]
    assert step_sizes[1][4] < 0.05 * step_sizes[None][4]


def test_reduce_lr_arguments_are_checked():
    t, y, tv, yv = plateau_data()
    net = SmallCNN(1, 2, width=4)
    with pytest.raises(ValueError, match="reduce_lr_patience must be an int >= 1"):
        fit_classifier(net, t, y, tv, yv, reduce_lr_patience=0)
    with pytest.raises(ValueError, match="reduce_lr_patience must be an int >= 1"):
        fit_classifier(net, t, y, tv, yv, reduce_lr_patience=2.5)
    with pytest.raises(ValueError, match="reduce_lr_factor must be a number in \\(0, 1\\)"):
        fit_classifier(net, t, y, tv, yv, reduce_lr_patience=2, reduce_lr_factor=1.0)
    with pytest.raises(ValueError, match="reduce_lr_patience needs a validation set"):
        fit_classifier(net, t, y, reduce_lr_patience=2)


# ---------------------------------------------------------------- domain encoder

ENCODER_CASES = [  # (channels, image side, encoder size)
    (1, 20, 16),
    (1, 28, 24),
    (3, 24, 16),
    (3, 40, 32),
]


@pytest.mark.parametrize("channels,side,size", ENCODER_CASES)
def test_domain_encoder_shapes(tmp_path, channels, side, size):
    x, y = toy_images(12, side, channels)
    enc = fit_domain_encoder(x, y, dataset="toy", size=size, seed=0, cache_dir=tmp_path, epochs=1, width=4)
    assert isinstance(enc, DomainEncoder) and enc.in_channels == channels and enc.classes == ["0", "1"]
    feats = enc.features(x[:5])
    assert feats.shape == (5, enc.feature_dim) == (5, 16)
    proba = enc.predict_proba(x[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(1), 1.0)
    fake = torch.rand(3, channels, 32, 32) * 2 - 1  # generator output, any size
    assert enc.features(fake).shape == (3, 16)


def test_domain_encoder_cache(tmp_path):
    x, y = toy_images(16, 16, 1)
    xv, yv = toy_images(6, 16, 1, seed=3)
    labels = np.where(y == 1, "bright", "dark")
    vlabels = np.where(yv == 1, "bright", "dark")
    kw = dict(dataset="toy", size=16, cache_dir=tmp_path, epochs=3, width=4, val_images=xv, val_labels=vlabels)
    first = fit_domain_encoder(x, labels, seed=0, **kw)
    assert first.info["loaded_from_cache"] is False
    assert first.classes == ["bright", "dark"]  # sorted class names
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].startswith("toy_s16_seed0_") and files[0].endswith(".json")
    sidecar = json.loads((tmp_path / files[0]).read_text())
    assert 0.0 <= sidecar["train_accuracy"] <= 1.0 and 0.0 <= sidecar["val_accuracy"] <= 1.0
    assert sidecar["config"]["epochs"] == 3 and sidecar["n_train"] == 32 and sidecar["n_val"] == 12

    second = fit_domain_encoder(x, labels, seed=0, **kw)  # same key: loaded, not trained
    assert second.info["loaded_from_cache"] is True
    assert second.info["train_accuracy"] == sidecar["train_accuracy"]
    np.testing.assert_array_equal(first.features(x), second.features(x))

    other = fit_domain_encoder(x, labels, seed=1, **kw)  # another seed: another key and file
    assert other.info["loaded_from_cache"] is False and other.path != first.path
    assert not np.array_equal(first.features(x), other.features(x))
    changed = x.copy()
    changed[0, 0, 0] ^= 1  # one pixel of the training data changes the hash
    assert fit_domain_encoder(changed, labels, seed=0, **kw).path != first.path

    first.path.write_bytes(first.path.read_bytes()[:40])  # a truncated cache file is named, with the fix
    with pytest.raises(RuntimeError, match=rf"cached encoder {first.path.name} .*cannot be read.*delete both files"):
        fit_domain_encoder(x, labels, seed=0, **kw)
    assert len(list(tmp_path.glob("*.safetensors"))) == 3


def test_domain_encoder_errors(tmp_path, monkeypatch):
    x, y = toy_images(4, 16, 1)
    with pytest.raises(ValueError, match="8 images but 7 labels"):
        fit_domain_encoder(x, y[:7], dataset="toy", size=16, seed=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="expected uint8 images"):
        fit_domain_encoder(x.astype(float), y, dataset="toy", size=16, seed=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="single class"):
        fit_domain_encoder(x, np.zeros(8), dataset="toy", size=16, seed=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"validation labels \['7'\]"):
        fit_domain_encoder(x, y, dataset="toy", size=16, seed=0, cache_dir=tmp_path, epochs=1,
                           val_images=x[:1], val_labels=np.array([7]))
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "encoders"
    monkeypatch.delenv("MEDGAN_CACHE")
    assert str(default_cache_dir()) == "cache/encoders"
