"""The domain encoder: a small CNN trained by us on a dataset's real training split.

FID, KID and precision/recall/density/coverage are distances between *feature* distributions.
Inception-v3 features describe ImageNet photographs, not chest X-rays or blood cells, and its
weights cannot be downloaded here; so each dataset gets its own feature extractor: a
:class:`~medgan_core.models.classifier.SmallCNN` trained to classify the real training images
(cross-entropy, Adam, best validation epoch kept). Its penultimate layer ``f(x)`` is the
feature space of every fidelity metric:

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)),  with (mu, S) of f(x_real), f(x_fake)

Shapes: images uint8 `(N, H, W)` (grayscale) or `(N, H, W, C)` (RGB), any size, resized to
``size``; generator output (torch `(N, C, H, W)` in [-1, 1]) is accepted too.
``features(images)`` -> `(N, d)`; ``predict_proba(images)`` -> `(N, k)`.

Weights are cached: one safetensors file plus a JSON sidecar (training and validation
accuracy, configuration, class names) per (dataset, size, seed, short hash of the training
data and configuration) under ``cache_dir``; a second call with the same key loads instead of
training. The default cache folder is ``$MEDGAN_CACHE/encoders``, else ``./cache/encoders``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.metrics import accuracy_score

from medgan_core.atomic import write_json_atomic
from medgan_core.models.classifier import build_classifier, fit_classifier, images_to_tensor
from medgan_core.models.classifier import predict_proba as _predict_proba
from medgan_core.train.seeding import seed_everything

__all__ = ["DomainEncoder", "fit_domain_encoder", "default_cache_dir", "encoder_key"]


def default_cache_dir() -> Path:
    """The encoder cache folder: ``$MEDGAN_CACHE/encoders`` if the variable is set, else ``./cache/encoders``."""
    root = os.environ.get("MEDGAN_CACHE")
    return Path(root) / "encoders" if root else Path("cache") / "encoders"


class DomainEncoder:
    """A trained domain classifier used as a feature extractor (eval mode, no gradients).

    Args:
        net: the trained classifier (must have ``features``).
        size: side in pixels the images are resized to.
        in_channels: 1 (grayscale) or 3 (RGB).
        classes: class names, in the order of the classifier's outputs.
        info: the sidecar's content (accuracies, configuration, key).
        path: the safetensors file the weights live in (``None`` if never saved).
        device: where to run.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        size: int,
        in_channels: int,
        classes: list[str],
        info: dict[str, Any],
        path: Path | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.net = net.to(device).eval()
        self.size = size
        self.in_channels = in_channels
        self.classes = list(classes)
        self.info = info
        self.path = path
        self.device = device

    @property
    def feature_dim(self) -> int:
        """Size `d` of the feature vectors."""
        return int(self.net.feature_dim)

    def _tensor(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images -> `(N, C, size, size)` in [-1, 1], with the encoder's channel count."""
        return images_to_tensor(images, self.size, self.in_channels)

    @torch.no_grad()
    def features(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Penultimate features of images.

        Args:
            images: uint8 `(N, H, W[, C])` (numpy, channel-last) or float `(N, C, H, W)` in
                [-1, 1] (torch, a generator's output); any size.
            batch_size: images per forward pass.

        Returns:
            float64 array `(N, d)`.
        """
        x = self._tensor(images)
        self.net.eval()
        out = [self.net.features(x[i : i + batch_size].to(self.device)).double().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.feature_dim))

    def predict_proba(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Class probabilities of images.

        Args:
            images: as in :meth:`features`.
            batch_size: images per forward pass.

        Returns:
            float64 array `(N, k)`, columns in the order of :attr:`classes`.
        """
        return _predict_proba(self.net, self._tensor(images), batch_size=batch_size, device=self.device)

    def __repr__(self) -> str:
        acc = self.info.get("val_accuracy", self.info.get("train_accuracy"))
        return f"DomainEncoder(dataset={self.info.get('dataset')!r}, size={self.size}, classes={self.classes}, acc={acc})"


def _check_labelled(images: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``images`` are uint8 `(N, H, W[, C])` with one label each."""
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(
            f"{name}: expected uint8 images (N, H, W) or (N, H, W, C) with C = 1 or 3, got {images.dtype} "
            f"{images.shape}; convert with np.asarray(img, dtype=np.uint8)."
        )
    if len(images) != len(labels):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels; they must match one to one.")
    if len(images) == 0:
        raise ValueError(f"{name}: no images.")
    return images, labels


def encoder_key(images: np.ndarray, labels: np.ndarray, config: dict[str, Any]) -> str:
    """Short hash (12 hex digits) of the training images, labels and configuration.

    Args:
        images: the training images.
        labels: the training labels.
        config: the training configuration (JSON-serialisable).
    """
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True).encode())
    h.update(str((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(images).data)
    h.update(np.asarray([str(v) for v in labels]).astype("U").tobytes())
    return h.hexdigest()[:12]


def fit_domain_encoder(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    dataset: str,
    size: int,
    seed: int,
    cache_dir: str | Path | None = None,
    epochs: int = 10,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    arch: str = "small_cnn",
    width: int = 32,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> DomainEncoder:
    """Train (or load from the cache) the domain encoder of a dataset.

    Args:
        images: real *training* images, uint8 `(N, H, W)` or `(N, H, W, C)`.
        labels: their labels `(N,)` (class names or integers); classes are sorted.
        dataset: dataset name, part of the cache key (``"pneumoniamnist"``).
        size: side in pixels the images are resized to (>= 16).
        seed: seed of the initialisation and shuffling; part of the cache key.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        epochs: training epochs (the best validation epoch is kept when a validation set is given).
        val_images: validation images (same layout), or ``None``.
        val_labels: validation labels, or ``None``.
        arch: classifier name in :data:`medgan_core.models.classifier.CLASSIFIERS`.
        width: classifier width.
        batch_size: images per step.
        lr: Adam learning rate.
        device: where to train and run.
        progress: show a progress bar over epochs.

    Returns:
        The trained :class:`DomainEncoder`; its ``info`` holds the sidecar (accuracies, config,
        key, ``loaded_from_cache``).
    """
    images, labels = _check_labelled(images, labels, "fit_domain_encoder(images, labels)")
    if (val_images is None) != (val_labels is None):
        raise ValueError("fit_domain_encoder: pass both val_images and val_labels, or neither.")
    if not dataset or any(c in dataset for c in "/\\ "):
        raise ValueError(f"dataset must be a short name without slashes or spaces, got {dataset!r}.")
    classes = [str(c) for c in np.unique(labels)]  # numeric labels sort as numbers, names as text
    if len(set(classes)) != len(classes):
        raise ValueError(f"fit_domain_encoder: labels {classes} collide once written as text; use one type of label.")
    if len(classes) < 2:
        raise ValueError(f"fit_domain_encoder: the training labels hold a single class ({classes}); need >= 2.")
    in_channels = 1 if images.ndim == 3 else images.shape[-1]
    config = {
        "arch": arch, "width": width, "size": size, "in_channels": in_channels, "num_classes": len(classes),
        "classes": classes, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
    }
    key = encoder_key(images, labels, config)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = f"{dataset}_s{size}_seed{seed}_{key}"
    path_w, path_j = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    net_kw = {"width": width, "image_size": size}
    if path_w.exists() and path_j.exists():
        net = build_classifier(arch, in_channels, len(classes), **net_kw)
        try:
            info = json.loads(path_j.read_text())
            net.load_state_dict(load_file(str(path_w)))
        except Exception as err:  # a truncated or edited file: name it and say what to do
            raise RuntimeError(f"The cached encoder {path_w.name} (with {path_j.name}) in {folder} cannot be read "
                               f"({type(err).__name__}: {err}); delete both files and it is retrained.") from err
        info["loaded_from_cache"] = True
        return DomainEncoder(net, size, in_channels, classes, info, path_w, device)

    t0 = time.perf_counter()
    index = {c: i for i, c in enumerate(classes)}
    x_train = images_to_tensor(images, size, in_channels)  # `(N, C, size, size)`
    y_train = torch.as_tensor([index[str(v)] for v in labels])
    x_val = y_val = None
    if val_images is not None:
        val_images, val_labels = _check_labelled(val_images, val_labels, "fit_domain_encoder(val_images, val_labels)")
        unknown = sorted(str(v) for v in set(val_labels.astype(str)) - set(classes))
        if unknown:
            raise ValueError(f"fit_domain_encoder: validation labels {unknown} are not among the training "
                             f"classes {classes}.")
        x_val = images_to_tensor(val_images, size, in_channels)
        y_val = torch.as_tensor([index[str(v)] for v in val_labels])
    seed_everything(seed)
    net = build_classifier(arch, in_channels, len(classes), **net_kw)
    fit = fit_classifier(net, x_train, y_train, x_val, y_val, num_epochs=epochs, batch_size=batch_size,
                         lr=lr, seed=seed, device=device, progress=progress)
    train_acc = accuracy_score(y_train.numpy(), _predict_proba(net, x_train, device=device).argmax(1))
    val_acc = (accuracy_score(y_val.numpy(), _predict_proba(net, x_val, device=device).argmax(1))
               if x_val is not None else None)
    info = {
        "dataset": dataset, "size": size, "seed": seed, "key": key, "config": config,
        "n_train": len(x_train), "n_val": 0 if x_val is None else len(x_val),
        "train_accuracy": float(train_acc), "val_accuracy": None if val_acc is None else float(val_acc),
        "val_balanced_accuracy": fit.best_val_balanced_accuracy, "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run, "train_seconds": round(time.perf_counter() - t0, 2),
        "torch": torch.__version__,
    }
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, tmp)
        os.chmod(tmp, 0o644)  # `mkstemp` creates 0600: let other users of the cache read it
        os.replace(tmp, path_w)
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_json_atomic(path_j, info)
    info = dict(info, loaded_from_cache=False)
    return DomainEncoder(net, size, in_channels, classes, info, path_w, device)
