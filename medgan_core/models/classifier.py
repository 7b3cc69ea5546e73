"""A small CNN classifier: the utility harness's classifier and the domain encoder's backbone.

Three convolution blocks (3x3 conv, batch norm, ReLU, 2x2 max pool) widen the channels
``width -> 2 width -> 4 width`` and halve the resolution each time (with ``stem_stride=2`` the
first block's convolution strides 2 instead of pooling: every input pixel is still seen, and a
64-px image costs about what a 32-px one does); global average pooling and
a fully connected layer give the *penultimate features* ``f(x)``, and a linear head gives the
class logits. It is trained with the cross-entropy

    L = -1/n * sum_i w_{y_i} log softmax(W f(x_i) + b)_{y_i}

(``w`` = 1, or class weights in the harness's ``real+class_weights`` arm).

Shapes: input ``(n, C, H, W)`` float in [-1, 1] with ``C`` = 1 (grayscale) or 3 (RGB) and
``H, W >= 16``; ``features(x)`` is ``(n, feature_dim)``; ``forward(x)`` is ``(n, num_classes)``.

Images from the datasets (uint8 ``(N, H, W)`` or ``(N, H, W, C)``) become classifier input
through :func:`images_to_tensor`, which also resizes them. Models are built from the names used
in ``params/*.yaml`` through :data:`CLASSIFIERS` and :func:`build_classifier`.
:func:`fit_classifier` is the one training loop (Adam, optional class weights, balanced
oversampling and augmentation, optional learning-rate reduction on a validation plateau, early
stopping on validation balanced accuracy, best-validation weights restored);
:func:`predict_proba` gives class probabilities in eval mode.
:class:`ClassifierSettings` bundles what the utility harness chooses on validation (width,
learning rate, epochs, patience) and :data:`DEFAULT_GRID` is its small default grid
(``medgan_core.metrics.utility.select_classifier_settings`` picks one point of it).

Measured on the 2-core machine (32 px, batch 64, forward + backward + Adam step, other jobs
running): ``width=32`` about 1,100-1,300 images/s, ``width=16`` about 2,500 images/s, while
the machine was otherwise idle enough; under heavy contention two torch threads fall to a few
hundred images/s and ``torch.set_num_threads(1)`` is the faster choice for models this small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from torch import nn
from tqdm.auto import tqdm

from medgan_core.models.vgg_extractor import VGGFeatureClassifier

MIN_SIZE = 16  # three 2x2 poolings leave 2x2 positions at 16 px


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """Conv 3x3 -> BN -> ReLU -> max pool 2x2 (stride 1) or conv 3x3 stride 2 -> BN -> ReLU: halves `H, W`."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2) if stride == 1 else nn.Identity(),
    )


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, a feature layer and a linear head.

    Args:
        in_channels: 1 for grayscale, 3 for RGB.
        num_classes: number of classes (>= 2).
        width: channels of the first block (then 2x and 4x).
        image_size: side of the (square) input images in pixels, >= 16; checked in ``forward``.
        feature_dim: size of the penultimate features (default ``4 * width``).
        dropout: dropout probability before the head (0 = none).
        stem_stride: 1 (the first block pools) or 2 (its convolution strides instead: about 4x
            fewer operations per image at the same resolution).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 32,
        image_size: int = 32,
        feature_dim: int | None = None,
        dropout: float = 0.0,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"SmallCNN: in_channels must be 1 (grayscale) or 3 (RGB), got {in_channels}.")
        if num_classes < 2:
            raise ValueError(f"SmallCNN: num_classes must be >= 2, got {num_classes}.")
        if width < 1:
            raise ValueError(f"SmallCNN: width must be >= 1, got {width}.")
        if image_size < MIN_SIZE:
            raise ValueError(
                f"SmallCNN: image_size must be >= {MIN_SIZE} px (three 2x2 poolings), got {image_size}; "
                "resize the images first (images_to_tensor(..., size=32))."
            )
        if stem_stride not in (1, 2):
            raise ValueError(f"SmallCNN: stem_stride must be 1 (pool) or 2 (strided convolution), got {stem_stride!r}.")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.image_size = image_size
        self.feature_dim = feature_dim or 4 * width
        self.body = nn.Sequential(_block(in_channels, width, stem_stride), _block(width, 2 * width),
                                  _block(2 * width, 4 * width))
        self.fc = nn.Sequential(nn.Linear(4 * width, self.feature_dim), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features.

        Args:
            x: images `(n, C, H, W)` in [-1, 1].

        Returns:
            `(n, feature_dim)` features (after the ReLU of the feature layer).
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SmallCNN expects input (n, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                "use images_to_tensor() to convert (N, H, W[, C]) uint8 images."
            )
        if min(x.shape[2:]) < MIN_SIZE:
            raise ValueError(f"SmallCNN needs images of at least {MIN_SIZE} px, got {tuple(x.shape[2:])}.")
        h = self.body(x)  # `(n, 4w, H/8, W/8)`
        h = h.mean(dim=(2, 3))  # global average pooling: `(n, 4w)`
        return self.fc(h)  # `(n, feature_dim)`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            x: images `(n, C, H, W)` in [-1, 1].

        Returns:
            `(n, num_classes)` logits.
        """
        return self.head(self.drop(self.features(x)))


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": SmallCNN,
    "vgg_feature": VGGFeatureClassifier,  # experiment 03's extractor-classifier (models/vgg_extractor.py)
}


def build_classifier(name: str, in_channels: int, num_classes: int, **kw: Any) -> nn.Module:
    """Build a classifier from its name in :data:`CLASSIFIERS`.

    Args:
        name: registry name as written in ``params/*.yaml`` (``"small_cnn"``, ``"vgg_feature"``).
        in_channels: 1 (grayscale) or 3 (RGB).
        num_classes: number of classes.
        **kw: passed to the constructor (small CNN: ``width``, ``image_size``, ``feature_dim``, ``dropout``,
            ``stem_stride``; VGG: ``width``, ``image_size``, ``split``, ``dropout``).

    Returns:
        The (untrained) classifier.
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"Unknown classifier {name!r}; valid names: {sorted(CLASSIFIERS)}.")
    return CLASSIFIERS[name](in_channels, num_classes, **kw)


def images_to_tensor(
    images: np.ndarray | torch.Tensor, size: int, in_channels: int | None = None
) -> torch.Tensor:
    """Convert images to classifier input: float32 `(N, C, size, size)` in [-1, 1].

    Numpy arrays are channel-last: uint8 `(N, H, W)` or `(N, H, W, C)` in 0..255, or float in
    [-1, 1]. Torch tensors are channel-first float `(N, C, H, W)` in [-1, 1] (a generator's
    output) or uint8. Images are resized with antialiased bilinear interpolation.

    Args:
        images: the images, as above.
        size: output side in pixels (>= 16).
        in_channels: the channels the classifier expects (1 or 3); ``None`` keeps the images'.
            Grayscale is repeated to RGB when 3 is asked; RGB is never silently made gray.

    Returns:
        float32 tensor `(N, in_channels, size, size)`.
    """
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE} px for the small CNN, got {size}.")
    if isinstance(images, torch.Tensor):
        x = images.detach().cpu()
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"A torch tensor of images must be (N, C, H, W) with C = 1 or 3, got {tuple(x.shape)}.")
    else:
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
            raise ValueError(
                f"Images must be a numpy array (N, H, W) or (N, H, W, C) with C = 1 or 3, got shape {arr.shape}."
            )
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        x = x.float() / 127.5 - 1.0
    elif x.is_floating_point():
        x = x.float()
        if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
            raise ValueError(
                f"Float images must lie in [-1, 1], got [{x.min().item():.3f}, {x.max().item():.3f}]; "
                "pass uint8 images (0..255) or rescale with x / 127.5 - 1."
            )
    else:
        raise ValueError(f"Images must be uint8 or float in [-1, 1], got dtype {x.dtype}.")
    c = x.shape[1]
    if in_channels is not None and c != in_channels:
        if c == 1 and in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise ValueError(
                f"The classifier expects {in_channels} channel(s) but the images have {c}; "
                "convert RGB images to grayscale yourself (the choice of weights is yours)."
            )
    if x.shape[2] != size or x.shape[3] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp(-1.0, 1.0)
    return x.contiguous()


@dataclass(frozen=True)
class ClassifierSettings:
    """Training settings of the utility classifier, chosen on validation once per task.

    Args:
        width: channels of the first block, passed to the builder as ``width=...``; ``None``
            calls the builder without arguments (its own default width).
        lr: Adam learning rate.
        epochs: maximum epochs.
        patience: epochs without validation improvement before stopping (``None``: never).
    """

    width: int | None = None
    lr: float = 1e-3
    epochs: int = 30
    patience: int | None = 5

    def __post_init__(self) -> None:
        if self.width is not None and int(self.width) < 1:
            raise ValueError(f"ClassifierSettings: width must be >= 1 or None, got {self.width}.")
        if not self.lr > 0:
            raise ValueError(f"ClassifierSettings: lr must be > 0, got {self.lr}.")
        if int(self.epochs) < 1:
            raise ValueError(f"ClassifierSettings: epochs must be >= 1, got {self.epochs}.")
        if self.patience is not None and int(self.patience) < 1:
            raise ValueError(f"ClassifierSettings: patience must be >= 1 or None, got {self.patience}.")

    @classmethod
    def coerce(cls, value: "ClassifierSettings | dict[str, Any]") -> "ClassifierSettings":
        """A :class:`ClassifierSettings` from itself or a dict ``{"width", "lr", "epochs", "patience"}``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"width", "lr", "epochs", "patience"}
            if unknown:
                raise ValueError(f"Unknown classifier setting(s) {sorted(unknown)}; use width, lr, epochs, patience.")
            return cls(**value)
        raise ValueError(f"Classifier settings must be a ClassifierSettings or a dict, got {type(value).__name__}.")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for ``metrics.json`` and tables."""
        return {"width": self.width, "lr": self.lr, "epochs": self.epochs, "patience": self.patience}


# The utility harness's default grid (5 points, one seed each): widths 8 and 16 at two learning
# rates, and one long schedule for tiny training sets (about 200 images give 3 steps per epoch, so
# 10 epochs are 30 Adam steps: too few for any class but the largest).
DEFAULT_GRID: tuple[ClassifierSettings, ...] = (
    ClassifierSettings(width=8, lr=1e-3, epochs=30, patience=8),
    ClassifierSettings(width=8, lr=3e-3, epochs=30, patience=8),
    ClassifierSettings(width=16, lr=1e-3, epochs=30, patience=8),
    ClassifierSettings(width=16, lr=3e-3, epochs=30, patience=8),
    ClassifierSettings(width=16, lr=1e-3, epochs=80, patience=20),
)


@dataclass
class FitResult:
    """What :func:`fit_classifier` returns besides the trained model (modified in place).

    Args:
        best_epoch: epoch (1-based) whose weights were kept.
        best_val_balanced_accuracy: validation balanced accuracy of those weights (NaN without
            a validation set).
        epochs_run: epochs actually trained (fewer than asked when early stopping fired).
        history: one row per epoch: ``epoch, train_loss, val_loss, val_balanced_accuracy, lr`` (``lr``:
            the Adam learning rate the epoch trained with).
    """

    best_epoch: int
    best_val_balanced_accuracy: float
    epochs_run: int
    history: pd.DataFrame = field(repr=False)


def _balanced_indices(y: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Random oversampling: every class topped up (with replacement) to the largest class's count.

    Args:
        y: labels `(N,)`.
        num_classes: number of classes.
        gen: the generator of the draws.

    Returns:
        Shuffled indices `(num_classes * n_max,)` (classes absent from ``y`` are skipped).
    """
    counts = torch.bincount(y, minlength=num_classes)
    n_max = int(counts.max())
    parts = []
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) == 0:
            continue
        extra = idx[torch.randint(len(idx), (n_max - len(idx),), generator=gen)]
        parts.append(torch.cat([idx, extra]))
    all_idx = torch.cat(parts)
    return all_idx[torch.randperm(len(all_idx), generator=gen)]


REDUCE_LR_MIN_DELTA = 1e-4  # Keras' ReduceLROnPlateau min_delta: a smaller rise of balanced accuracy is no improvement


def _check_reduce_lr(reduce_lr_patience: int | None, reduce_lr_factor: float) -> None:
    """Raise a ValueError naming the argument unless both learning-rate reduction settings are valid.

    Args:
        reduce_lr_patience: ``None`` or an int >= 1.
        reduce_lr_factor: a number in (0, 1).
    """
    if reduce_lr_patience is not None and (isinstance(reduce_lr_patience, bool)
                                           or not isinstance(reduce_lr_patience, (int, np.integer))
                                           or reduce_lr_patience < 1):
        raise ValueError(f"reduce_lr_patience must be an int >= 1 (epochs without improvement before the learning "
                         f"rate drops) or None (constant learning rate), got {reduce_lr_patience!r}.")
    if isinstance(reduce_lr_factor, bool) or not isinstance(reduce_lr_factor, (int, float, np.number)) \
            or not 0.0 < float(reduce_lr_factor) < 1.0:
        raise ValueError(f"reduce_lr_factor must be a number in (0, 1) (the learning rate is multiplied by it), got "
                         f"{reduce_lr_factor!r}; e.g. 0.5 halves it.")


@torch.no_grad()
def predict_proba(net: nn.Module, x: torch.Tensor, batch_size: int = 512, device: str | torch.device = "cpu") -> np.ndarray:
    """Class probabilities in eval mode, batched, without gradients.

    Args:
        net: a classifier returning logits.
        x: images `(N, C, H, W)` in [-1, 1] (see :func:`images_to_tensor`).
        batch_size: images per forward pass.
        device: where to run.

    Returns:
        `(N, num_classes)` float64 probabilities (rows sum to 1).
    """
    was_training = net.training
    net.eval()
    out = [torch.softmax(net(x[i : i + batch_size].to(device)).double(), dim=1).cpu() for i in range(0, len(x), batch_size)]
    net.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def fit_classifier(
    net: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    *,
    num_epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = None,
    class_weights: torch.Tensor | None = None,
    oversample: bool = False,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    reduce_lr_patience: int | None = None,
    reduce_lr_factor: float = 0.5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> FitResult:
    """Train a classifier with Adam and cross-entropy; keep the best-validation weights.

    After each epoch the validation balanced accuracy is computed (ties broken by the lower
    validation loss); training stops after ``patience`` epochs without improvement and the best
    epoch's weights are loaded back into ``net``. Without a validation set the last weights
    are kept.

    With ``reduce_lr_patience`` the learning rate is reduced on a plateau, as Keras'
    ``ReduceLROnPlateau(monitor=val balanced accuracy, factor, patience)`` does:
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` in mode ``"max"`` is stepped once per epoch
    with the validation balanced accuracy, and after ``reduce_lr_patience`` epochs in a row
    without a rise of more than 1e-4 (Keras' ``min_delta``) the learning rate is multiplied by
    ``reduce_lr_factor`` for the following epochs (torch counts one more epoch than Keras for
    the same patience, so it is given ``reduce_lr_patience - 1``). The history's ``lr`` column
    shows the learning rate of each epoch.

    The shuffling order and augmentation draws come from a generator seeded with ``seed``; seed
    the weights' initialisation yourself before building ``net``.

    Args:
        net: the classifier (modified in place).
        x_train: training images `(N, C, H, W)` in [-1, 1].
        y_train: training labels `(N,)`, int64 in ``0..num_classes-1``.
        x_val: validation images, or ``None``.
        y_val: validation labels, or ``None``.
        num_epochs: maximum number of epochs.
        batch_size: images per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        patience: epochs without validation improvement before stopping (``None``: never stop early).
        class_weights: `(num_classes,)` cross-entropy weights, or ``None``.
        oversample: draw each epoch as a class-balanced random oversample (every class topped up
            to the largest class's count) instead of one pass over the data.
        augment: ``augment(x, generator) -> x`` applied to every training batch, or ``None``.
        reduce_lr_patience: epochs without validation improvement before the learning rate is
            multiplied by ``reduce_lr_factor`` (needs a validation set); ``None``: a constant learning rate.
        reduce_lr_factor: the factor of each reduction, in (0, 1).
        seed: seed of the shuffling and augmentation generator.
        device: where to train.
        progress: show a tqdm bar over epochs.

    Returns:
        A :class:`FitResult` (best epoch, its validation balanced accuracy, epochs run, history).
    """
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train has {len(x_train)} images but y_train has {len(y_train)} labels.")
    if len(x_train) == 0:
        raise ValueError("x_train is empty: nothing to train on.")
    if (x_val is None) != (y_val is None):
        raise ValueError("Pass both x_val and y_val, or neither.")
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1, got {num_epochs}.")
    _check_reduce_lr(reduce_lr_patience, reduce_lr_factor)
    if reduce_lr_patience is not None and x_val is None:
        raise ValueError("reduce_lr_patience needs a validation set (x_val, y_val) whose balanced accuracy it "
                         "watches; pass them, or reduce_lr_patience=None.")
    num_classes = int(getattr(net, "num_classes", int(y_train.max()) + 1))
    gen = torch.Generator().manual_seed(int(seed))
    net.to(device, memory_format=torch.channels_last)  # NHWC while training: faster for the small CNN, on CPU too
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = None
    if reduce_lr_patience is not None:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=float(reduce_lr_factor), patience=int(reduce_lr_patience) - 1,
            threshold=REDUCE_LR_MIN_DELTA, threshold_mode="abs")
    weight = class_weights.to(device, torch.float32) if class_weights is not None else None
    y_train = y_train.long()
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, stale, rows = 0, 0, []
    epochs = tqdm(range(1, num_epochs + 1), desc="epochs", leave=False, disable=not progress)
    for epoch in epochs:
        net.train()
        epoch_lr = float(opt.param_groups[0]["lr"])  # the learning rate of this epoch's steps
        if oversample:
            order = _balanced_indices(y_train, num_classes, gen)
        else:
            order = torch.randperm(len(x_train), generator=gen)
        total, seen = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2 and len(order) > 1:
                continue  # batch norm needs more than one image
            x_real = x_train[idx]
            if augment is not None:
                x_real = augment(x_real, gen)
            x_real, y = x_real.to(device, memory_format=torch.channels_last), y_train[idx].to(device)
            loss = F.cross_entropy(net(x_real), y, weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": np.nan, "val_balanced_accuracy": np.nan,
               "lr": epoch_lr}
        if x_val is not None:
            proba = predict_proba(net, x_val, device=device)
            y_v = y_val.long().numpy()
            row["val_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y_v)), y_v], 1e-12, None))))
            row["val_balanced_accuracy"] = float(balanced_accuracy_score(y_v, proba.argmax(1)))
            key = (row["val_balanced_accuracy"], -row["val_loss"])
            if best_key is None or key > best_key:
                best_key, best_epoch, stale = key, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
            if scheduler is not None:
                scheduler.step(row["val_balanced_accuracy"])  # once per epoch, on the watched score
        else:
            best_epoch = epoch
        rows.append(row)
        epochs.set_postfix(loss=f"{row['train_loss']:.3f}", val_bacc=f"{row['val_balanced_accuracy']:.3f}")
        if patience is not None and stale >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.to(memory_format=torch.contiguous_format)  # back to the default layout: a reloaded copy computes the same
    net.eval()
    best_val = best_key[0] if best_key is not None else float("nan")
    return FitResult(best_epoch, best_val, len(rows), pd.DataFrame(rows))
