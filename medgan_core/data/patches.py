"""Random patches of two image sets, drawn by step: what the translation GANs (CycleGAN, pix2pix) train on.

    data = PatchPairs(smooth, sharp, patch=64, batch_size=16, seed=0, paired=True)
    x, y = data.batch(step)  # two `(16, C, 64, 64)` tensors in [-1, 1]

The write-up trained on patches because whole 1024 px images did not fit in memory; a model of
translation layers (convolutions only) then applies to whole images (see
:mod:`medgan_core.models.tiling`). The batch of step ``s`` depends only on ``(seed, s)``: images
are drawn with replacement and each patch's corner uniformly, so a resumed run draws exactly the
batches an uninterrupted one would. ``paired=True`` (pix2pix, and the paired ground truth of a
simulation) takes the same image and the same corner from both sets; ``paired=False`` (CycleGAN)
draws them independently, so no pair is ever seen.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _as_images(images: np.ndarray | Tensor, name: str) -> Tensor:
    """``(N, H, W)`` or ``(N, C, H, W)`` float in [-1, 1] -> a float32 `(N, C, H, W)` tensor (checked)."""
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images).float()
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or len(t) == 0:
        raise ValueError(f"{name} must be a non-empty (N, H, W) or (N, C, H, W) array, got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all() or t.min() < -1.0 - 1e-4 or t.max() > 1.0 + 1e-4:
        raise ValueError(f"{name} must be finite and in [-1, 1] (got {float(t.min()):.3g} to {float(t.max()):.3g}); "
                         "scale the images first (e.g. ct_kernels.to_unit(x) * 2 - 1).")
    return t


class PatchPairs:
    """Patches of domain X and domain Y, drawn by step.

    Args:
        x: images of domain X, `(N, H, W)` or `(N, C, H, W)`, float in [-1, 1].
        y: images of domain Y, the same channels (and with ``paired=True`` the same shape, pair ``i``
            being ``x[i]`` and ``y[i]``).
        patch: the patch side, px (at most the smallest image side; the whole image when equal).
        batch_size: patches of each domain per step.
        seed: seed of the draws.
        paired: take the same image and corner from both sets.
        device: where the images are kept and the batches returned.
    """

    def __init__(self, x: np.ndarray | Tensor, y: np.ndarray | Tensor, patch: int, batch_size: int, seed: int = 0,
                 paired: bool = False, device: str | torch.device = "cpu") -> None:
        self.x, self.y = _as_images(x, "x").to(device), _as_images(y, "y").to(device)
        if self.x.shape[1] != self.y.shape[1]:
            raise ValueError(f"x has {self.x.shape[1]} channels and y {self.y.shape[1]}; translation needs the same.")
        if paired and self.x.shape != self.y.shape:
            raise ValueError(f"paired=True needs x and y of the same shape (pair i is x[i], y[i]); got "
                             f"{tuple(self.x.shape)} and {tuple(self.y.shape)}.")
        smallest = min(self.x.shape[-2:] + self.y.shape[-2:])
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0 (numpy's seed sequence), got {seed}.")
        if not 1 <= int(patch) <= smallest or int(batch_size) < 1:
            raise ValueError(f"need 1 <= patch <= {smallest} (the smallest image side) and batch_size >= 1; got "
                             f"patch {patch}, batch_size {batch_size}.")
        self.patch, self.batch_size, self.seed, self.paired = int(patch), int(batch_size), int(seed), bool(paired)

    def _crops(self, images: Tensor, idx: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> Tensor:
        p = self.patch
        return torch.stack([images[i, :, r:r + p, c:c + p] for i, r, c in zip(idx, rows, cols)])

    def _draw(self, rng: np.random.Generator, images: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, h, w = len(images), images.shape[-2], images.shape[-1]
        b = self.batch_size
        return (rng.integers(0, n, b), rng.integers(0, h - self.patch + 1, b), rng.integers(0, w - self.patch + 1, b))

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """``(x, y)``: the patches of step ``step``, each `(batch_size, C, patch, patch)`."""
        rng = np.random.default_rng([self.seed, int(step)])
        draw_x = self._draw(rng, self.x)
        draw_y = draw_x if self.paired else self._draw(rng, self.y)
        return self._crops(self.x, *draw_x), self._crops(self.y, *draw_y)

    @property
    def pixels_per_step(self) -> int:
        """Pixels of one domain's batch: ``batch_size * patch^2`` (the compute a step costs grows with it)."""
        return self.batch_size * self.patch ** 2
