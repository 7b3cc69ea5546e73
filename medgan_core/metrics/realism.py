"""Realism by a classifier two-sample test (C2ST): can a small CNN tell real from generated images?

Lopez-Paz & Oquab (2017), "Revisiting classifier two-sample tests". A small CNN
(:class:`medgan_core.models.classifier.SmallCNN`) learns "real training image (0) vs generated
image (1)" and is scored on **held-out** real images against **fresh** generated images (a draw
disjoint from the ones it trained on). If the two distributions were the same, no classifier
could rank the held-out images better than chance:

    AUC = P(p(x_fake) > p(x_real)) + 0.5 P(p(x_fake) = p(x_real)),   x_real, x_fake from the test sets

(the Mann-Whitney form of the ROC AUC of the "generated" probability ``p``). **AUC 0.5: the
classifier cannot tell them apart; 1.0: every generated image is told apart.** Accuracy is the
share of test images on the right side of ``p = 0.5``.

Balance: the training classes are balanced by random oversampling (inside
:func:`~medgan_core.models.classifier.fit_classifier`), the test classes by cutting the larger
side to the smaller (seeded), so accuracy has chance level 0.5.

Interval: a 95% percentile bootstrap of the AUC over test images
(:func:`medgan_core.metrics.stats.bootstrap_resample_ci`); with ``groups`` (e.g. the smear or
patient of each held-out real image) whole groups are resampled, each generated image being its
own unit and each side resampled on its own
(:func:`medgan_core.metrics.stats.cluster_bootstrap_resample_ci`), since images of one smear are
not independent. A resample is scored by a weighted Mann-Whitney count (:func:`_weighted_auc`).

Feature maps (experiment 03's generator makes a CNN's features, not pixels) get the same test with
a linear judge, :func:`c2st_features`: standardised, PCA-reduced flattened features and an
L2-regularised logistic regression (scikit-learn), scored and bootstrapped as above.

:func:`c2st_probabilities` is the one C2ST image trainer: the image version here (:func:`c2st_auc`,
:func:`c2st_study`) and the nodule-sequence version
(:func:`medgan_core.metrics.turing.classifier_two_sample_test`) both call it.

Images: float `(N, C, H, W)` in [-1, 1] (numpy or a generator's torch output) or uint8
channel-last `(N, H, W[, C])` as stored by the datasets; square, at least 16 px, ``C`` = 1 or 3.
Measured on the shared 2-core machine (32x32 RGB, ``width=16``, 10 epochs, 500 + 500 training
and 200 + 200 test images, load average 2.4-3.6 from other jobs): 7-10 s on one torch thread
(the default of :func:`c2st_probabilities`), 96 s on two contended threads.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch

from medgan_core.metrics.stats import bootstrap_resample_ci, check_groups, cluster_bootstrap_resample_ci
from medgan_core.models.classifier import build_classifier, fit_classifier, images_to_tensor, predict_proba

__all__ = ["STUDY_COLUMNS", "MIN_PER_SIDE", "c2st_probabilities", "c2st_auc", "c2st_study", "c2st_features"]

STUDY_COLUMNS = ["model", "class", "n_train", "n_test", "auc", "auc_ci_low", "auc_ci_high", "accuracy"]
MIN_PER_SIDE = 5  # a c2st_study group with fewer training or test images per side gets a NaN row
Split = tuple[Any, Any]  # images `(N, ...)`, int labels `(N,)`
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def c2st_probabilities(x_real_train: torch.Tensor, x_fake_train: torch.Tensor, x_test: torch.Tensor, *,
                       width: int = 16, num_epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
                       seed: int = 0, augment: Augment | None = None, device: str | torch.device = "cpu",
                       num_threads: int | None = 1) -> np.ndarray:
    """Train "real (0) vs generated (1)" and return the "generated" probability of test images.

    ``torch.manual_seed(seed)`` seeds the weights, ``fit_classifier(..., seed=seed)`` the
    oversampling, shuffling and augmentation; no model selection is done on the test images
    (the last epoch's weights are scored).

    Args:
        x_real_train: real training images `(n_r, C, S, S)` float in [-1, 1], ``C`` = 1 or 3.
        x_fake_train: generated training images `(n_f, C, S, S)`.
        x_test: images to score `(m, C, S, S)` (held-out real and fresh generated ones).
        width: the small CNN's first-block width.
        num_epochs: training epochs.
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seeds the weights, the oversampling, the shuffling and the augmentation.
        augment: ``augment(x, generator) -> x`` applied to training batches, or ``None``.
        device: where to train and score.
        num_threads: torch CPU threads while training (the caller's setting is restored after);
            1 is the fastest for a CNN this small on a shared machine (two contended threads
            measured 10x slower) and makes the result independent of the caller's setting;
            ``None`` keeps the caller's.

    Returns:
        `(m,)` float64 probabilities that each test image is generated.
    """
    sets = {"x_real_train": x_real_train, "x_fake_train": x_fake_train, "x_test": x_test}
    for name, x in sets.items():
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError(f"{name} must be a (N, C, S, S) float tensor; got {getattr(x, 'shape', type(x))}.")
    shapes = {name: tuple(x.shape[1:]) for name, x in sets.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"all sets must share (C, S, S); got {shapes}.")
    for name in ("x_real_train", "x_fake_train"):
        if len(sets[name]) < 2:
            raise ValueError(f"{name} needs at least 2 images (batch norm); got {len(sets[name])}.")
    c, s = x_test.shape[1], x_test.shape[-1]
    x_train = torch.cat([x_real_train, x_fake_train]).float()
    y_train = torch.cat([torch.zeros(len(x_real_train)), torch.ones(len(x_fake_train))]).long()
    before = torch.get_num_threads()
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None (keep the caller's), got {num_threads}.")
        torch.set_num_threads(num_threads)
    try:
        torch.manual_seed(seed)
        net = build_classifier("small_cnn", in_channels=c, num_classes=2, width=width, image_size=s)
        fit_classifier(net, x_train, y_train, num_epochs=num_epochs, batch_size=batch_size, lr=lr,
                       oversample=True, augment=augment, seed=seed, device=device)
        return predict_proba(net, x_test.float(), device=device)[:, 1]
    finally:
        torch.set_num_threads(before)


def _as_images(images: Any, name: str) -> torch.Tensor:
    """Float `(N, C, S, S)` in [-1, 1] from channel-first float or channel-last (uint8) images."""
    x = images
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
            x = torch.from_numpy(np.ascontiguousarray(x))  # channel-first numpy: a generator's output
    if len(x) == 0:
        raise ValueError(f"{name} is empty: pass at least one image.")
    if x.ndim < 3:
        raise ValueError(f"{name} must be images (N, C, H, W) or (N, H, W[, C]); got shape {tuple(x.shape)}.")
    h, w = (x.shape[-2], x.shape[-1]) if isinstance(x, torch.Tensor) else (x.shape[1], x.shape[2])
    if h != w:
        raise ValueError(f"{name} must hold square images; got shape {tuple(x.shape)}. Crop or resize them first.")
    try:
        return images_to_tensor(x, size=int(h))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _weighted_auc(prob: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``prob`` for ``truth`` (True = generated) under per-image weights, one per row.

    ``AUC = sum_{i real, j fake} w_i w_j ([p_j > p_i] + 0.5 [p_j = p_i]) / (sum w_real * sum w_fake)``;
    with all weights 1 it is :func:`sklearn.metrics.roc_auc_score`, with bootstrap counts it is
    the AUC of the resample.

    Args:
        prob: `(N,)` scores.
        truth: `(N,)` bool, True for generated images.
        weights: `(B, N)` non-negative weights (counts of each image in each resample).

    Returns:
        `(B,)` AUCs (NaN where a row has no real or no generated weight).
    """
    uniq, inv = np.unique(prob, return_inverse=True)
    b, k = weights.shape[0], len(uniq)
    keys = (np.arange(b)[:, None] * k + inv[None, :]).ravel()
    real = np.bincount(keys, (weights * ~truth).ravel(), minlength=b * k).reshape(b, k)  # `(B, K)` per score
    fake = np.bincount(keys, (weights * truth).ravel(), minlength=b * k).reshape(b, k)
    below = np.cumsum(real, axis=1) - real  # real weight strictly below each score
    numer = (fake * (below + 0.5 * real)).sum(axis=1)
    denom = real.sum(axis=1) * fake.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, numer / np.where(denom > 0, denom, 1.0), np.nan)


def _check_groups(groups: Any, n: int, name: str, unit: str) -> np.ndarray | None:
    """``groups`` as a flat array of ``n`` labels (``None`` stays ``None``), or a clear error."""
    return None if groups is None else check_groups(groups, n, "groups", name, f"group per {unit}")


def _auc_ci(prob: np.ndarray, truth: np.ndarray, groups: np.ndarray | None, n_boot: int,
            seed: int) -> tuple[float, float, float]:
    """AUC and its 95% bootstrap interval over test images (over groups of real images when given).

    Without groups every test image is a unit (:func:`~medgan_core.metrics.stats.bootstrap_resample_ci`,
    all resamples scored at once); with groups the real images' groups and the generated images
    are resampled within their side (:func:`~medgan_core.metrics.stats.cluster_bootstrap_resample_ci`,
    ``strata`` = real/generated).
    """
    n = len(prob)
    if groups is None:
        def auc_of_rows(idx: np.ndarray) -> np.ndarray:  # `(B, n)` indices -> `(B,)` AUCs
            b = len(idx)
            counts = np.bincount((np.arange(b)[:, None] * n + idx).ravel(), minlength=b * n).reshape(b, n)
            return _weighted_auc(prob, truth, counts.astype(np.float64))

        return bootstrap_resample_ci(n, auc_of_rows, n_boot=n_boot, seed=seed, level=0.95)
    _, real_units = np.unique(groups, return_inverse=True)
    units = np.empty(n, dtype=np.int64)  # real images keep their group, each generated image is its own
    units[~truth] = real_units
    units[truth] = real_units.max() + 1 + np.arange(int(truth.sum()))

    def auc_of(idx: np.ndarray) -> float:  # `(m,)` row indices, repeats allowed
        return float(_weighted_auc(prob, truth, np.bincount(idx, minlength=n)[None].astype(np.float64))[0])

    return cluster_bootstrap_resample_ci(units, auc_of, n_boot=n_boot, seed=seed, level=0.95,
                                         strata=truth.astype(np.int64))


def _equal_test_sides(n_real: int, n_fake: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted rows of the real and generated test sides, the larger cut (seeded) to the smaller's size (chance 0.5)."""
    n_test = min(n_real, n_fake)
    rng = np.random.default_rng([seed, 1])
    return np.sort(rng.choice(n_real, n_test, replace=False)), np.sort(rng.choice(n_fake, n_test, replace=False))


def c2st_auc(real_train: Any, fake_train: Any, real_test: Any, fake_test: Any, *, width: int = 16,
             num_epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, seed: int = 0, n_boot: int = 500,
             groups: Any = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """C2ST of one generator: train on real vs generated images, score held-out real vs fresh generated.

    ``fake_test`` must be a draw disjoint from ``fake_train`` (other latents), ``real_test``
    images the classifier never saw. The larger test side is cut (seeded) to the smaller's size.

    Args:
        real_train: real training images (see the module docstring for the layouts).
        fake_train: generated images to train on, same channels and size.
        real_test: held-out real images.
        fake_test: fresh generated images (not those in ``fake_train``).
        width: the small CNN's first-block width.
        num_epochs: training epochs.
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seeds the weights, the oversampling, the test cut and the bootstrap.
        n_boot: bootstrap resamples of the AUC interval, >= 2.
        groups: `(len(real_test),)` the unit of each held-out real image (smear, patient) for a
            cluster bootstrap, or ``None`` (every image its own unit).
        device: where to train.

    Returns:
        ``auc``, ``auc_ci_low``, ``auc_ci_high``, ``accuracy``, ``n_train`` and ``n_test`` (images of
        both sides), ``truth`` (`(n_test,)` bool, True = generated) and ``prob`` (the classifier's
        "generated" probabilities).
    """
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    sets = {name: _as_images(x, name) for name, x in (("real_train", real_train), ("fake_train", fake_train),
                                                       ("real_test", real_test), ("fake_test", fake_test))}
    shapes = {name: tuple(x.shape[1:]) for name, x in sets.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"all four sets must share (C, S, S) after conversion; got {shapes}. "
                         "Convert them to one channel count and size first.")
    rt, ft, re, fe = sets.values()
    g = _check_groups(groups, len(re), "real_test", "held-out real image")
    keep_r, keep_f = _equal_test_sides(len(re), len(fe), seed)
    n_test = len(keep_r)
    re, fe = re[torch.from_numpy(keep_r)], fe[torch.from_numpy(keep_f)]
    g = g[keep_r] if g is not None else None
    prob = c2st_probabilities(rt, ft, torch.cat([re, fe]), width=width, num_epochs=num_epochs,
                              batch_size=batch_size, lr=lr, seed=seed, device=device)
    truth = np.r_[np.zeros(n_test, bool), np.ones(n_test, bool)]
    auc, low, high = _auc_ci(prob, truth, g, n_boot, seed)
    return {"auc": auc, "auc_ci_low": low, "auc_ci_high": high, "accuracy": float(((prob >= 0.5) == truth).mean()),
            "n_train": int(len(rt) + len(ft)), "n_test": int(2 * n_test), "truth": truth, "prob": prob}


def _check_split(split: Split, name: str, num_classes: int) -> tuple[Any, np.ndarray]:
    """``(images, labels)`` with one label in ``0..num_classes-1`` per image."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"{name} must be a tuple (images, labels), got {type(split).__name__}.")
    images, labels = split[0], np.asarray(split[1]).reshape(-1).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{name} has {len(images)} images but {len(labels)} labels; pass one label per image.")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} labels must lie in 0..{num_classes - 1} (one per entry of classes); "
                         f"got {labels.min()}..{labels.max()}.")
    return images, labels


def _sampler(source: Any) -> Callable[[int, int, int], Any] | None:
    """``(cls, n, seed) -> images`` of a GAN-like object or a callable; ``None`` for an ``(x, y)`` split."""
    if isinstance(source, (tuple, list)):
        return None
    if hasattr(source, "sample"):
        return source.sample
    if callable(source):
        return source
    raise ValueError(f"fakes values must be (images, labels), an object with sample(cls, n, seed) or a callable "
                     f"(cls, n, seed) -> images; got {type(source).__name__}.")


def _take(images: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a numpy array or tensor."""
    return images[torch.from_numpy(idx)] if isinstance(images, torch.Tensor) else np.asarray(images)[idx]


def _concat(parts: list[Any]) -> Any:
    return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else np.concatenate([np.asarray(p) for p in parts])


class _Draw(NamedTuple):
    """The four image sets of one C2ST (``n_train`` / ``n_test`` images per side) and the test groups."""

    real_train: Any
    fake_train: Any
    real_test: Any
    fake_test: Any
    groups: np.ndarray | None
    n_train: int
    n_test: int


def _class_draw(x_tr: Any, y_tr: np.ndarray, x_he: Any, y_he: np.ndarray, g_he: np.ndarray | None, source: Any,
                name: str, k: int, c: int, max_train: int, max_test: int, seed: int) -> _Draw:
    """Steps 1-2 of :func:`c2st_study` for class ``c``: disjoint generated draws, equal counts per side."""
    rng = np.random.default_rng([seed, c])
    i_tr, i_he = rng.permutation(np.flatnonzero(y_tr == c)), rng.permutation(np.flatnonzero(y_he == c))
    n_test, n_train = min(len(i_he), max_test), min(len(i_tr), max_train)
    sample = _sampler(source)
    if sample is None:  # arrays: the test draw first, the training draw from the rest
        x_f, y_f = _check_split(source, name, k)
        i_f = np.random.default_rng([seed, c, 1]).permutation(np.flatnonzero(y_f == c))
        n_test = min(n_test, len(i_f) // 2)
        n_train = min(n_train, len(i_f) - n_test)
        f_te, f_tr = _take(x_f, i_f[:n_test]), _take(x_f, i_f[n_test:n_test + n_train])
    else:  # a sampler: two calls with different seeds, hence different latents
        f_tr = sample(c, n_train, 2 * seed) if n_train else None
        f_te = sample(c, n_test, 2 * seed + 1) if n_test else None
    return _Draw(_take(x_tr, i_tr[:n_train]), f_tr, _take(x_he, i_he[:n_test]), f_te,
                 None if g_he is None else g_he[i_he[:n_test]], n_train, n_test)


def _pool(draws: list[_Draw], max_train: int, max_test: int) -> _Draw:
    """Step 3 of :func:`c2st_study`: the classes' draws pooled, each cut proportionally (the same on both sides)."""
    scale_tr = min(1.0, max_train / max(sum(d.n_train for d in draws), 1))
    scale_te = min(1.0, max_test / max(sum(d.n_test for d in draws), 1))
    cuts = [(d, int(d.n_train * scale_tr), int(d.n_test * scale_te)) for d in draws]
    cuts = [(d, a, b) for d, a, b in cuts if a > 0 and b > 0]
    n_train, n_test = sum(a for _, a, _ in cuts), sum(b for _, _, b in cuts)
    if not cuts:
        return _Draw(None, None, None, None, None, n_train, n_test)
    groups = None if cuts[0][0].groups is None else np.concatenate([d.groups[:b] for d, _, b in cuts])
    return _Draw(_concat([d.real_train[:a] for d, a, _ in cuts]), _concat([d.fake_train[:a] for d, a, _ in cuts]),
                 _concat([d.real_test[:b] for d, _, b in cuts]), _concat([d.fake_test[:b] for d, _, b in cuts]),
                 groups, n_train, n_test)


def c2st_study(train: Split, heldout: Split, fakes: Mapping[str, Any], classes: Sequence[str], *, width: int = 16,
               num_epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, seed: int = 0, n_boot: int = 500,
               max_train: int = 1000, max_test: int = 500, groups: Any = None,
               device: str | torch.device = "cpu") -> pd.DataFrame:
    """C2ST AUC per generator and class (and pooled, ``class`` = ``"all"``).

    Per class ``c`` and generator, one rule:

    1. ``n_test`` = the held-out images of ``c`` (at most ``max_test``), and for a generated set
       given as arrays at most half its images of ``c``; ``n_test`` held-out real and ``n_test``
       generated images are drawn (seeded).
    2. ``n_train`` = the training images of ``c`` (at most ``max_train``), and for arrays at most
       the generated images of ``c`` left after the test draw (so the two draws are disjoint);
       ``n_train`` real and ``n_train`` generated images are drawn. A sampler is asked for
       ``n_train`` images with seed ``2 seed`` and ``n_test`` with seed ``2 seed + 1`` (other latents).
    3. The ``"all"`` row pools the class rows' images (the same class mix on both sides, so it
       measures realism, not a different class balance), cut proportionally per class to at
       most ``max_train`` / ``max_test`` per side.
    4. A group with fewer than :data:`MIN_PER_SIDE` images per side in training or test gets NaN.

    Args:
        train: real training split ``(images, labels)``, labels in ``0..len(classes)-1``.
        heldout: real held-out split, same format (never trained on).
        fakes: ``{model: (images, labels)}`` generated images with their classes, or
            ``{model: sampler}`` with a GAN (``sample(cls, n, seed)``) or a callable
            ``(cls, n, seed) -> images``.
        classes: class names in label order (the ``class`` column).
        width: the small CNN's first-block width.
        num_epochs: training epochs.
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seeds every draw, the training and the bootstrap.
        n_boot: bootstrap resamples of the AUC interval.
        max_train: the most training images per side (real, generated) of a group.
        max_test: the most test images per side of a group.
        groups: `(len(heldout images),)` the unit (smear, patient) of each held-out image for a
            cluster bootstrap, or ``None``.
        device: where to train.

    Returns:
        Long frame with :data:`STUDY_COLUMNS` (``n_train``, ``n_test``: images of both sides),
        rows ``"all"`` then each class, per model in the order of ``fakes``.
    """
    if max_train < MIN_PER_SIDE or max_test < MIN_PER_SIDE:
        raise ValueError(f"max_train and max_test must be at least {MIN_PER_SIDE}; got {max_train}, {max_test}.")
    if not fakes:
        raise ValueError("fakes is empty: pass {model: (images, labels)} or {model: sampler}.")
    k = len(classes)
    x_tr, y_tr = _check_split(train, "train", k)
    x_he, y_he = _check_split(heldout, "heldout", k)
    g_he = _check_groups(groups, len(y_he), "heldout", "held-out image")
    fit = dict(width=width, num_epochs=num_epochs, batch_size=batch_size, lr=lr, seed=seed, n_boot=n_boot,
               device=device)
    rows = []
    for model, source in fakes.items():
        draws = [_class_draw(x_tr, y_tr, x_he, y_he, g_he, source, f"fakes[{model!r}]", k, c, max_train, max_test,
                             seed) for c in range(k)]
        for cls, draw in [("all", _pool(draws, max_train, max_test))] + list(zip(map(str, classes), draws)):
            row = {"model": model, "class": cls, "n_train": 2 * draw.n_train, "n_test": 2 * draw.n_test}
            if draw.n_train >= MIN_PER_SIDE and draw.n_test >= MIN_PER_SIDE:
                out = c2st_auc(draw.real_train, draw.fake_train, draw.real_test, draw.fake_test, groups=draw.groups,
                               **fit)
                row |= {key: out[key] for key in STUDY_COLUMNS[4:]}  # auc, its interval, accuracy
            rows.append(row)
    return pd.DataFrame(rows, columns=STUDY_COLUMNS)


def c2st_features(real_train: Any, fake_train: Any, real_test: Any, fake_test: Any, *, n_components: int = 50,
                  seed: int = 0, n_boot: int = 500, groups: Any = None) -> dict[str, Any]:
    """C2ST of feature maps: a logistic regression tells real from generated features.

    Pipeline: flatten, standardise, PCA to ``min(n_components, n_train - 1)`` dimensions, logistic
    regression (L2, ``C = 1``, classes balanced); trained on ``real_train`` vs ``fake_train``, scored
    on ``real_test`` (features of images it never saw) vs ``fake_test`` (a fresh draw). The larger
    test side is cut (seeded) to the smaller's size; the AUC interval is as in :func:`c2st_auc`.

    Args:
        real_train: real feature maps `(N, C, H, W)` (tensor or array), or flat `(N, d)` features.
        fake_train: generated ones, same shape.
        real_test: held-out real ones.
        fake_test: fresh generated ones.
        n_components: PCA dimensions before the regression.
        seed: seeds the PCA solver, the test cut and the bootstrap.
        n_boot: bootstrap resamples of the AUC interval, >= 2.
        groups: `(len(real_test),)` the unit (patient) of each held-out real feature map, or ``None``.

    Returns:
        ``auc`` (0.5: cannot be told apart; 1.0: always told apart), ``auc_ci_low``, ``auc_ci_high``,
        ``accuracy``, ``n_train``, ``n_test``, ``truth`` and ``prob`` as in :func:`c2st_auc`.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    sets = {}
    for name, x in (("real_train", real_train), ("fake_train", fake_train), ("real_test", real_test),
                    ("fake_test", fake_test)):
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if a.ndim < 2 or len(a) < 2 or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name} must hold at least 2 float feature rows (N, ...), got {a.dtype} {a.shape}.")
        sets[name] = a.reshape(len(a), -1).astype(np.float64)
    if len({a.shape[1] for a in sets.values()}) != 1:
        raise ValueError(f"all four sets must have the same feature size; got { {k: v.shape for k, v in sets.items()} }.")
    rt, ft, re, fe = sets.values()
    g = _check_groups(groups, len(re), "real_test", "held-out real feature map")
    keep_r, keep_f = _equal_test_sides(len(re), len(fe), seed)
    n_test = len(keep_r)
    re, fe = re[keep_r], fe[keep_f]
    g = g[keep_r] if g is not None else None
    x_train = np.concatenate([rt, ft])
    y_train = np.r_[np.zeros(len(rt)), np.ones(len(ft))]
    dims = max(1, min(int(n_components), len(x_train) - 1, x_train.shape[1]))
    judge = make_pipeline(StandardScaler(), PCA(dims, random_state=seed),
                          LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    judge.fit(x_train, y_train)
    prob = judge.predict_proba(np.concatenate([re, fe]))[:, 1]
    truth = np.r_[np.zeros(n_test, bool), np.ones(n_test, bool)]
    auc, low, high = _auc_ci(prob, truth, g, n_boot, seed)
    return {"auc": auc, "auc_ci_low": low, "auc_ci_high": high, "accuracy": float(((prob >= 0.5) == truth).mean()),
            "n_train": int(len(x_train)), "n_test": int(2 * n_test), "truth": truth, "prob": prob}
