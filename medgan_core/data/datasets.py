"""From uint8 image arrays to float tensors, and back: a torch ``Dataset`` and batch converters.

Every reader of the study returns images as ``uint8`` numpy arrays, `(N, H, W)` grayscale or
`(N, H, W, C)` channel-last. Models take float32 `(N, C, size, size)` tensors, scaled by one of:

- ``"tanh"``: ``x / 127.5 - 1`` in [-1, 1], the GAN convention (generators end in ``tanh``);
- ``"unit"``: ``x / 255`` in [0, 1];
- ``"standard"``: ``(x / 255 - mean) / std`` per channel, for classifiers and encoders.

Resizing uses ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``; a
non-square image is stretched to ``size`` x ``size``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

NORMALISATIONS = ("tanh", "unit", "standard")


def _check_images(images: np.ndarray) -> np.ndarray:
    """Return ``images`` as a channel-last `(N, H, W, C)` uint8 array (a view where possible).

    Args:
        images: `(N, H, W)` or `(N, H, W, C)` uint8 array with C in 1, 3, 4.
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array, got {type(images).__name__}.")
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8 (0..255), got {images.dtype}; convert with "
                        "to_uint8_images() or np.clip(x, 0, 255).astype(np.uint8).")
    if images.ndim == 3:
        return images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be (N, H, W) or channel-last (N, H, W, C) with C in 1, 3, 4; "
                         f"got shape {images.shape}.")
    return images


def _check_norm(normalise: str, mean: Sequence[float] | None, std: Sequence[float] | None,
                channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the `(C, 1, 1)` shift and scale that map pixels in [0, 255] to the chosen range.

    Args:
        normalise: one of :data:`NORMALISATIONS`.
        mean: per-channel means in [0, 1] units (``"standard"`` only).
        std: per-channel standard deviations (``"standard"`` only).
        channels: number of image channels.
    """
    if normalise == "tanh":
        shift, scale = [127.5] * channels, [127.5] * channels
    elif normalise == "unit":
        shift, scale = [0.0] * channels, [255.0] * channels
    elif normalise == "standard":
        if mean is None or std is None:
            raise ValueError("normalise='standard' needs mean and std (per channel, in [0, 1] units).")
        mean_t = np.broadcast_to(np.asarray(mean, dtype=float), (channels,))
        std_t = np.broadcast_to(np.asarray(std, dtype=float), (channels,))
        if (std_t <= 0).any():
            raise ValueError(f"std must be positive, got {std}.")
        shift, scale = (255.0 * mean_t).tolist(), (255.0 * std_t).tolist()
    else:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}.")
    return (torch.tensor(shift, dtype=torch.float32).view(-1, 1, 1),
            torch.tensor(scale, dtype=torch.float32).view(-1, 1, 1))


def _check_size(size: int | None) -> None:
    """Reject a size that is not a positive int (``None`` keeps the native size).

    Args:
        size: output side in pixels.
    """
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise ValueError(f"size must be a positive int or None, got {size!r}.")


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Antialiased bilinear resize of `(N, C, H, W)` float ``x`` to `(N, C, size, size)`.

    Args:
        x: float images.
        size: output side; ``None`` or equal sizes return ``x`` unchanged.
    """
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ArrayDataset(Dataset):
    """Images and integer labels held in memory, served as `(C, size, size)` float32 tensors.

    ``dataset[i]`` returns ``(x, y)``: ``x`` scaled as ``normalise`` says (then passed through
    ``transform`` if given) and ``y`` a 0-dim ``int64`` tensor.

    Args:
        images: `(N, H, W)` or `(N, H, W, C)` uint8 array.
        labels: `(N,)` integer class indices.
        size: output side in pixels (``None``: keep the native size).
        normalise: ``"tanh"`` ([-1, 1], default), ``"unit"`` ([0, 1]) or ``"standard"``.
        mean: per-channel means in [0, 1] units, for ``"standard"``.
        std: per-channel standard deviations in [0, 1] units, for ``"standard"``.
        transform: optional callable applied to each `(C, size, size)` tensor (augmentation).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | Sequence[int], size: int | None = None,
                 normalise: str = "tanh", mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.images = _check_images(images)  # `(N, H, W, C)` uint8
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(self.images):
            raise ValueError(f"labels must be 1-D with one entry per image: "
                             f"{labels.shape} for {len(self.images)} images.")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"labels must be integer class indices, got {labels.dtype}; "
                            "map class names with e.g. frame['label_idx'].")
        _check_size(size)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}.")
        self.labels = labels.astype(np.int64)
        self.size = size
        self.shift, self.scale = _check_norm(normalise, mean, std, self.images.shape[-1])
        self.transform = transform

    def __len__(self) -> int:
        """Number of images."""
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x, y)``: `(C, size, size)` float32 image and 0-dim int64 label.

        Args:
            i: sample position.
        """
        x = torch.tensor(self.images[i]).permute(2, 0, 1).float()  # `(C, H, W)`
        x = _resize(x[None], self.size)[0]  # `(C, size, size)`
        x = (x - self.shift) / self.scale
        if self.transform is not None:
            x = self.transform(x)
        return x, torch.tensor(self.labels[i], dtype=torch.int64)


def to_tensor_images(images: np.ndarray, size: int | None = None, normalise: str = "tanh",
                     mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                     batch_size: int = 512) -> torch.Tensor:
    """Convert a whole uint8 array to one float32 `(N, C, size, size)` tensor.

    Args:
        images: `(N, H, W)` or `(N, H, W, C)` uint8 array.
        size: output side in pixels (``None``: keep the native size).
        normalise: ``"tanh"`` ([-1, 1], default), ``"unit"`` ([0, 1]) or ``"standard"``.
        mean: per-channel means in [0, 1] units, for ``"standard"``.
        std: per-channel standard deviations in [0, 1] units, for ``"standard"``.
        batch_size: images converted at a time (bounds the float32 copy of the input).
    """
    images = _check_images(images)
    _check_size(size)
    shift, scale = _check_norm(normalise, mean, std, images.shape[-1])
    chunks = []
    for start in range(0, len(images), batch_size):
        x = torch.tensor(images[start:start + batch_size]).permute(0, 3, 1, 2).float()  # `(B, C, H, W)`
        chunks.append((_resize(x, size) - shift) / scale)  # `(B, C, size, size)`
    if not chunks:
        h, w = images.shape[1:3] if size is None else (size, size)
        return torch.empty((0, images.shape[-1], h, w), dtype=torch.float32)
    return torch.cat(chunks)


def to_uint8_images(x: torch.Tensor, normalise: str = "tanh", mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, squeeze_gray: bool = True) -> np.ndarray:
    """Inverse of :func:`to_tensor_images`: float `(N, C, H, W)` back to uint8 channel-last.

    Values outside the range are clipped (generator outputs may overshoot).

    Args:
        x: `(N, C, H, W)` float tensor, scaled as ``normalise`` says.
        normalise: the scaling ``x`` is in (``"tanh"``, ``"unit"`` or ``"standard"``).
        mean: per-channel means in [0, 1] units, for ``"standard"``.
        std: per-channel standard deviations, for ``"standard"``.
        squeeze_gray: return `(N, H, W)` for one channel (else `(N, H, W, 1)`).

    Returns:
        `(N, H, W, C)` (or `(N, H, W)`) uint8 array.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}.")
    if not x.is_floating_point():
        raise TypeError(f"x must be a float tensor, got {x.dtype}.")
    shift, scale = _check_norm(normalise, mean, std, x.shape[1])
    pixels = (x.detach().float().cpu() * scale + shift).round().clamp(0, 255).to(torch.uint8)
    out = pixels.permute(0, 2, 3, 1).numpy()  # `(N, H, W, C)`
    return out[..., 0] if squeeze_gray and out.shape[-1] == 1 else out


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images at ``size`` x ``size`` (antialiased bilinear), returned as given if already that size.

    E.g. a 32-px generator's samples set beside 64-px real images, or scored by an encoder of another side.

    Args:
        images: uint8 `(N, H, W, C)` or grayscale `(N, H, W)`.
        size: the output side in pixels.

    Returns:
        uint8 `(N, size, size, C)` (`(N, size, size)` for grayscale input).
    """
    _check_images(np.asarray(images))
    if images.shape[1:3] == (size, size):
        return images
    return to_uint8_images(to_tensor_images(images, size), squeeze_gray=images.ndim == 3)
