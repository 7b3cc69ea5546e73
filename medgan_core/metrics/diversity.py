"""Image diversity (mean pairwise MS-SSIM within a set) and paired similarity (SSIM, PSNR).

MS-SSIM (Wang et al. 2003) compares two images at several scales (each scale halves the size);
1 means identical. The *mean pairwise MS-SSIM within one set* of images measures how alike the
images are, so **lower MS-SSIM = more diverse**: a generator that collapses to a few images
scores close to 1. Compare a generated set with real images of the same class, whose value is
the natural level of sameness of that class (Odena et al. 2017 used it this way for AC-GAN).

Scales and image size: torchmetrics' default five scales need images of at least 176 px with
an 11-px window (its check is ``size // (scales - 1)**2 > 10``; the coarsest scale, size / 16,
must also hold the window). Smaller images get fewer scales, with the first ``scales`` default
weights (betas) renormalised to sum to 1, or can be upsampled first (``upsample_to``); the
returned dict says which was done, and a report must state it. Sides of 11-21 px allow 1 scale
(plain SSIM), 22-43 px 2 (PneumoniaMNIST's 28 px), 44-98 px 3 (64 px), 99-175 px 4 (128 and
160 px), 176 px and more all 5.

Images are accepted as ``uint8`` arrays `(N, H, W)` or `(N, H, W, C)` (as read from disk) or as
float tensors/arrays `(N, C, H, W)` in [-1, 1] (a generator's tanh output); both are mapped to
[0, 1] and compared with ``data_range = 1``.

Cost: torchmetrics filters with a full 11 x 11 window; on 2 CPU cores a 256-px RGB pair takes
0.1-0.15 s (a 28-px pair about 0.01 s), so 200-300 pairs are enough for a report at 256 px.

Paired comparisons (``paired_ssim``, ``paired_psnr``, ``paired_mae``, all three at once with
``paired_scores``) compare image ``a[i]`` with ``b[i]``, e.g. a translation with its ground truth;
intensities in [0, 1]: PSNR in dB (higher is better), SSIM (1 = identical), MAE (0 = identical).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from medgan_core.metrics.stats import t_interval

__all__ = ["DEFAULT_BETAS", "images_to_unit_tensor", "max_ms_ssim_scales", "ms_ssim_betas",
           "ms_ssim_diversity", "paired_ssim", "paired_psnr", "paired_mae", "paired_scores"]

DEFAULT_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, finest scale first


def images_to_unit_tensor(images: np.ndarray | torch.Tensor, name: str = "images") -> torch.Tensor:
    """Convert images to a float32 tensor `(N, C, H, W)` in [0, 1].

    Args:
        images: ``uint8`` `(N, H, W)` / `(N, H, W, C)` with C in {1, 3} (array or tensor), or
            float `(N, C, H, W)` in [-1, 1] (array or tensor).
        name: how the input is called in error messages.
    """
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    x = x.detach().cpu()
    if x.dtype == torch.uint8:
        if x.ndim == 3:
            x = x[..., None]  # `(N, H, W, 1)`
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"uint8 {name} must be `(N, H, W)` or `(N, H, W, C)` with C = 1 or 3, got "
                             f"shape {tuple(x.shape)}.")
        return x.permute(0, 3, 1, 2).float() / 255.0  # `(N, C, H, W)` in [0, 1]
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1], "
                         f"got dtype {x.dtype}.")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"float {name} must be `(N, C, H, W)` with C = 1 or 3 (channels first), got shape "
                         f"{tuple(x.shape)}; uint8 images may be channels-last.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values (did the generator diverge?).")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"float {name} must lie in [-1, 1] (tanh output), got values in [{lo:.3g}, {hi:.3g}]; "
                         "rescale (x * 2 - 1 for [0, 1] images) or pass uint8 images.")
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def max_ms_ssim_scales(size: int, kernel_size: int = 11) -> int:
    """The most MS-SSIM scales (at most 5) that an image of side ``size`` supports.

    A number of scales ``n`` is allowed when torchmetrics accepts it (``size >= 2**n`` and
    ``size // max(1, n - 1)**2 > kernel_size - 1``) and the coarsest scale, ``size // 2**(n - 1)``,
    is at least one window wide.

    Args:
        size: the shorter image side in pixels.
        kernel_size: the Gaussian window size (11 in torchmetrics).

    Returns:
        The number of scales, 1 to 5; 0 if the image is smaller than one window.
    """
    for n in range(len(DEFAULT_BETAS), 0, -1):
        torchmetrics_ok = size >= 2**n and size // max(1, n - 1) ** 2 > kernel_size - 1
        if torchmetrics_ok and size // 2 ** (n - 1) >= kernel_size:
            return n
    return 0


def ms_ssim_betas(scales: int) -> tuple[float, ...]:
    """The first ``scales`` default MS-SSIM weights, renormalised to sum to 1.

    Args:
        scales: number of scales, 1 to 5.
    """
    if not 1 <= scales <= len(DEFAULT_BETAS):
        raise ValueError(f"scales must be between 1 and {len(DEFAULT_BETAS)}, got {scales}.")
    betas = np.asarray(DEFAULT_BETAS[:scales])
    return tuple(float(b) for b in betas / betas.sum())


def _pairs(n: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``i < j`` if there are at most ``n_pairs``, else ``n_pairs`` random pairs ``i != j``."""
    if n * (n - 1) // 2 <= n_pairs:
        return np.triu_indices(n, k=1)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # never equal to i
    return i, j


def ms_ssim_diversity(images: np.ndarray | torch.Tensor, n_pairs: int = 500, seed: int = 0,
                      scales: int | None = None, upsample_to: int | None = None,
                      batch_size: int = 64) -> dict:
    """Mean pairwise MS-SSIM within one set of images (lower = more diverse).

    Args:
        images: the set, uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1], N >= 2.
        n_pairs: number of random pairs; all pairs are used when there are fewer.
        seed: seed of the pair draw.
        scales: number of MS-SSIM scales; ``None`` takes the most the (upsampled) size allows.
        upsample_to: if set, bilinearly resize so the shorter side has this many pixels first
            (176 allows all five scales).
        batch_size: pairs per torchmetrics call (memory).

    Returns:
        ``{"ms_ssim", "std", "ci", "n_pairs", "scales", "betas", "upsampled_to", "image_size"}``:
        the mean over pairs, its standard deviation, a 95% t-interval of the mean
        (:func:`medgan_core.metrics.stats.t_interval`; pairs share images, so it is somewhat too
        narrow; ``(nan, nan)`` with a single pair), the settings used and the compared size `(H, W)`.
    """
    x = images_to_unit_tensor(images)  # `(N, C, H, W)` in [0, 1]
    if len(x) < 2:
        raise ValueError(f"ms_ssim_diversity needs at least 2 images, got {len(x)}.")
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1, got {n_pairs}.")
    if upsample_to is not None:
        h, w = x.shape[-2:]
        factor = upsample_to / min(h, w)
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    side = min(x.shape[-2:])
    n_max = max_ms_ssim_scales(side)
    if n_max == 0:
        raise ValueError(f"Images of {side} px are smaller than the 11-px SSIM window; pass upsample_to=64 or more.")
    if scales is None:
        scales = n_max
    elif scales > n_max:
        need = next(s for s in range(side, 4096) if max_ms_ssim_scales(s) >= scales)
        raise ValueError(f"{scales} MS-SSIM scales need images of at least {need} px, these are {side} px; "
                         f"use scales <= {n_max} or upsample_to={need}.")
    betas = ms_ssim_betas(scales)

    i, j = _pairs(len(x), n_pairs, np.random.default_rng(seed))
    values = []
    with torch.no_grad():
        for start in range(0, len(i), batch_size):
            bi, bj = i[start:start + batch_size], j[start:start + batch_size]
            values.append(multiscale_structural_similarity_index_measure(
                x[bi], x[bj], data_range=1.0, betas=betas, reduction="none"))
    vals = torch.cat(values).double().numpy()  # `(n_pairs,)`
    mean, low, high = t_interval(vals, 0.95)
    std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return {"ms_ssim": mean, "std": std, "ci": (low, high), "n_pairs": int(len(vals)),
            "scales": int(scales), "betas": betas, "upsampled_to": upsample_to,
            "image_size": (int(x.shape[-2]), int(x.shape[-1]))}


def _paired(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets as `(N, C, H, W)` tensors in [0, 1], checked to have the same shape."""
    x_a, x_b = images_to_unit_tensor(a, "a"), images_to_unit_tensor(b, "b")
    if x_a.shape != x_b.shape:
        raise ValueError(f"Paired images must have the same shape, got a {tuple(x_a.shape)} and b {tuple(x_b.shape)} "
                         "(after conversion to `(N, C, H, W)`).")
    return x_a, x_b


def _per_pair(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, score) -> dict:
    """``score(x_a, x_b)`` `(N,)` of both sets in [0, 1] (see :func:`_paired`), as ``{"per_pair", "mean"}``."""
    x_a, x_b = _paired(a, b)
    with torch.no_grad():
        vals = score(x_a, x_b).double().numpy()
    return {"per_pair": vals, "mean": float(vals.mean())}


def paired_ssim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> dict:
    """SSIM between ``a[i]`` and ``b[i]`` for every i (1 = identical).

    Args:
        a: first images, uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1].
        b: second images, same shape and format as ``a``.

    Returns:
        ``{"per_pair": (N,) array, "mean": float}``.
    """
    return _per_pair(a, b, lambda x, y: structural_similarity_index_measure(x, y, data_range=1.0, reduction="none"))


def paired_psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> dict:
    """PSNR in dB between ``a[i]`` and ``b[i]`` for every i (images in [0, 1]; identical pairs give inf).

    Args:
        a: first images, uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1].
        b: second images, same shape and format as ``a``.

    Returns:
        ``{"per_pair": (N,) array, "mean": float}``.
    """
    return _per_pair(a, b, lambda x, y: peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3)))


def paired_mae(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> dict:
    """Mean absolute difference between ``a[i]`` and ``b[i]`` for every i, intensities in [0, 1] (0 = identical).

    Args:
        a: first images, uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1].
        b: second images, same shape and format as ``a``.

    Returns:
        ``{"per_pair": (N,) array, "mean": float}``.
    """
    return _per_pair(a, b, lambda x, y: (x.double() - y.double()).abs().mean(dim=(1, 2, 3)))


def paired_scores(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor) -> pd.DataFrame:
    """PSNR (dB, higher is better), SSIM (higher is better) and MAE (lower is better) of each ``pred[i]`` against ``truth[i]``.

    Args:
        pred: translated images, uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1].
        truth: their ground truth, same shape and format.

    Returns:
        One row per image, columns ``psnr``, ``ssim`` and ``mae``.
    """
    return pd.DataFrame({"psnr": paired_psnr(pred, truth)["per_pair"], "ssim": paired_ssim(pred, truth)["per_pair"],
                         "mae": paired_mae(pred, truth)["per_pair"]})
