"""Augmentations: one home for every random image transform of the study.

- :class:`ClassicAug`: the utility study's "classic" augmentation of classifier batches (flips,
  90-degree rotations, shifts, brightness and contrast jitter), images `(n, C, H, W)` in [-1, 1].
- :func:`augment_batch`: one random dihedral transform (flip, 90-degree rotation) per batch item,
  applied alike to several aligned tensors (SQ-AGGAN's sequence, erased sequence and mask).

Every draw comes from a ``torch.Generator`` passed in, so a batch's augmentation can be
recomputed from its step after a resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ClassicAug", "augment_batch"]


@dataclass
class ClassicAug:
    """Classic augmentation with torch ops, applied per image in a batch.

    Each image is flipped left-right and up-down with probability 1/2, rotated by a random
    multiple of 90 degrees, shifted by up to ``shift`` of its side (border pixels repeated),
    and jittered in brightness (``x + U(-b, b) * 2``) and contrast (``(x - mean) * (1 + U(-c, c))``);
    values are clamped to [-1, 1].

    Args:
        flip: random horizontal and vertical flips.
        rot90: random rotations by 0, 90, 180 or 270 degrees (square images).
        shift: maximum shift as a fraction of the side (0 = none).
        brightness: maximum brightness change as a fraction of the intensity range.
        contrast: maximum relative contrast change.
    """

    flip: bool = True
    rot90: bool = True
    shift: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Augment a batch.

        Args:
            x: images `(n, C, H, W)` in [-1, 1].
            gen: the generator of the random draws.

        Returns:
            Augmented images `(n, C, H, W)` in [-1, 1].
        """
        n = x.shape[0]

        def coin() -> torch.Tensor:
            return (torch.rand(n, generator=gen) < 0.5)[:, None, None, None]

        if self.flip:
            x = torch.where(coin(), x.flip(3), x)
            x = torch.where(coin(), x.flip(2), x)
        if self.rot90 and x.shape[2] == x.shape[3]:
            k = torch.randint(4, (n,), generator=gen)
            out = x.clone()
            for r in (1, 2, 3):
                sel = k == r
                if sel.any():
                    out[sel] = torch.rot90(x[sel], r, dims=(2, 3))
            x = out
        if self.shift > 0:
            # `affine_grid` works in [-1, 1] coordinates: a translation t moves the image by t/2 of its side.
            t = (torch.rand(n, 2, generator=gen) * 2 - 1) * 2 * self.shift
            theta = torch.zeros(n, 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = 1.0
            theta[:, :, 2] = t
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.contrast > 0:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            scale = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * self.contrast
            x = (x - mean) * scale + mean
        if self.brightness > 0:
            x = x + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 2 * self.brightness
        return x.clamp(-1.0, 1.0)


def augment_batch(tensors: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Apply one random dihedral transform (flips, 90-degree rotations) per batch item to all tensors.

    Args:
        tensors: tensors `(B, ..., H, W)` with square ``H = W``, transformed alike item by item.
        generator: the torch generator of the draws.
    """
    b = tensors[0].shape[0]
    for t in tensors:
        if t.shape[0] != b or t.shape[-1] != t.shape[-2]:
            raise ValueError(f"every tensor must be (B={b}, ..., S, S); got {tuple(t.shape)}.")
    k = torch.randint(0, 4, (b,), generator=generator)
    flip = torch.randint(0, 2, (b,), generator=generator).bool()
    out = []
    for t in tensors:
        items = []
        for i in range(b):
            v = torch.rot90(t[i], int(k[i]), dims=(-2, -1))
            items.append(torch.flip(v, dims=(-1,)) if flip[i] else v)
        out.append(torch.stack(items))
    return out
