"""Augmentations: one home for every random image transform of the study.

- :class:`ClassicAug`: the utility study's "classic" augmentation of classifier batches (flips,
  90-degree rotations, shifts, brightness and contrast jitter), images `(n, C, H, W)` in [-1, 1].
- :class:`AffineAug`: Keras' ``ImageDataGenerator`` recipe of the ISIC write-up (rotation, zoom,
  shear, shifts, horizontal flip) as one random affine warp per image, with the same call as
  :class:`ClassicAug`; :func:`affine_warp` applies given per-image parameters.
- :class:`DiffAugment`: differentiable augmentation of every image a GAN's discriminator sees,
  real and generated (Zhao et al. 2020): colour, translation, cutout.
- :func:`augment_batch`: one random dihedral transform (flip, 90-degree rotation) per batch item,
  applied alike to several aligned tensors (SQ-AGGAN's sequence, erased sequence and mask).

Every draw comes from a ``torch.Generator`` passed in, so a batch's augmentation can be
recomputed from its step after a resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import math

import torch
import torch.nn.functional as F

__all__ = ["ClassicAug", "AffineAug", "affine_warp", "DiffAugment", "DIFFAUG_OPS", "augment_batch"]


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


def affine_warp(x: torch.Tensor, angle: torch.Tensor, zoom_row: torch.Tensor, zoom_col: torch.Tensor,
                shear: torch.Tensor, shift_row: torch.Tensor, shift_col: torch.Tensor) -> torch.Tensor:
    """Warp each image by its own affine map, as Keras' ``apply_affine_transform`` does.

    In pixel coordinates ``(row, col)`` centred on the image, the output pixel ``p`` is read from
    the input at ``R(angle) (Sh(shear) Z p + t)``, Keras' ``rotation @ shift @ shear @ zoom``, with

        R = [[cos a, -sin a], [sin a, cos a]],  Sh = [[1, -sin s], [0, cos s]],
        Z = diag(zoom_row, zoom_col),  t = (shift_row * H, shift_col * W).

    So a zoom below 1 magnifies (a smaller region fills the image), a positive angle turns the
    image clockwise as displayed (row 0 at the top; 90 degrees is ``torch.rot90(x, -1, (2, 3))``),
    and a positive shift moves the content up or left. The map is applied with
    ``affine_grid``/``grid_sample``: bilinear interpolation (Keras' order 1) and
    ``padding_mode="border"`` (Keras' default ``fill_mode="nearest"``: the edge pixels repeated).

    Args:
        x: images `(n, C, H, W)`.
        angle: `(n,)` rotation angles in degrees.
        zoom_row: `(n,)` zoom factors along the rows (height); 1 = none.
        zoom_col: `(n,)` zoom factors along the columns (width).
        shear: `(n,)` shear angles in radians.
        shift_row: `(n,)` shifts as fractions of the height.
        shift_col: `(n,)` shifts as fractions of the width.

    Returns:
        The warped images `(n, C, H, W)`, same dtype and device.
    """
    if x.ndim != 4:
        raise ValueError(f"affine_warp takes images (n, C, H, W), got {tuple(x.shape)}.")
    n, _, h, w = x.shape
    params = [torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in
              (angle, zoom_row, zoom_col, shear, shift_row, shift_col)]
    if any(len(v) != n for v in params):
        raise ValueError(f"affine_warp needs one parameter per image ({n}), got lengths {[len(v) for v in params]}.")
    a, zr, zc, sh, tr, tc = params
    a = torch.deg2rad(a)
    zeros, ones = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    rot = torch.stack([torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2)  # `(n, 2, 2)`
    shr = torch.stack([torch.stack([ones, -sh.sin()], -1), torch.stack([zeros, sh.cos()], -1)], -2)
    zoom = torch.diag_embed(torch.stack([zr, zc], -1))
    mat_rc = rot @ shr @ zoom  # `(n, 2, 2)` on (row, col) pixel coordinates
    t_rc = rot @ torch.stack([tr * h, tc * w], -1)[..., None]  # `(n, 2, 1)`
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # (row, col) <-> (x, y)
    to_unit = torch.diag(torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64))  # pixels -> affine_grid's [-1, 1]
    mat = to_unit @ swap @ mat_rc @ swap @ torch.linalg.inv(to_unit)
    theta = torch.cat([mat, to_unit @ swap @ t_rc], -1).to(device=x.device, dtype=x.dtype)  # `(n, 2, 3)`
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class AffineAug:
    """The ISIC write-up's Keras ``ImageDataGenerator`` augmentation as a torch transform.

    ``ImageDataGenerator(rotation_range=15, zoom_range=0.2, shear_range=0.1, width_shift_range=0.1,
    height_shift_range=0.1, horizontal_flip=True)``: per image, one affine map drawn from ``gen``
    (:func:`affine_warp`) and then a left-right flip with probability 1/2:

    - rotation: an angle ``U(-rotation, rotation)`` degrees;
    - zoom: ``U(1 - zoom, 1 + zoom)``, drawn separately for the height and the width, as Keras does;
    - shear: an angle ``U(-shear, shear)`` in **radians** (0.1 rad = 5.7 degrees), as Keras read
      ``shear_range`` until keras-preprocessing 1.0.6 (2018); later versions read it in degrees,
      where 0.1 would be almost nothing;
    - shifts: ``U(-shift, shift)`` of the side, vertically and horizontally;
    - flip: ``x.flip(3)`` with probability 1/2 (after the warp, exactly, as Keras flips after it).

    Bilinear interpolation, edge pixels repeated outside the image (Keras' ``fill_mode="nearest"``);
    values are clamped to [-1, 1] (interpolation cannot leave the input's range anyway). All six
    draws per image are taken every call, whatever the ranges, so a batch's augmentation depends
    only on the generator's state.

    Args:
        rotation: largest rotation in degrees, in [0, 180].
        zoom: largest relative zoom, in [0, 1).
        shear: largest shear angle in radians, in [0, pi/2).
        shift: largest shift as a fraction of the side, in [0, 1).
        flip: random left-right flips.
    """

    rotation: float = 15.0
    zoom: float = 0.2
    shear: float = 0.1
    shift: float = 0.1
    flip: bool = True

    def __post_init__(self) -> None:
        checks = [("rotation", self.rotation, 0.0 <= self.rotation <= 180.0, "[0, 180] degrees"),
                  ("zoom", self.zoom, 0.0 <= self.zoom < 1.0, "[0, 1), e.g. 0.2 for factors 0.8 to 1.2"),
                  ("shear", self.shear, 0.0 <= self.shear < math.pi / 2, "[0, pi/2) radians"),
                  ("shift", self.shift, 0.0 <= self.shift < 1.0, "[0, 1) of the side")]
        for name, value, ok, where in checks:
            if not ok:
                raise ValueError(f"AffineAug: {name} must lie in {where}, got {value}.")

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Augment a batch.

        Args:
            x: images `(n, C, H, W)` in [-1, 1].
            gen: the (CPU) generator of the random draws.

        Returns:
            Augmented images `(n, C, H, W)` in [-1, 1].
        """
        if x.ndim != 4:
            raise ValueError(f"AffineAug takes images (n, C, H, W) in [-1, 1], got {tuple(x.shape)}.")
        n = x.shape[0]
        u = torch.rand(n, 7, generator=gen, dtype=torch.float64) * 2 - 1  # `(n, 7)` in [-1, 1)
        x = affine_warp(x, angle=u[:, 0] * self.rotation, zoom_row=1 + u[:, 1] * self.zoom,
                        zoom_col=1 + u[:, 2] * self.zoom, shear=u[:, 3] * self.shear, shift_row=u[:, 4] * self.shift,
                        shift_col=u[:, 5] * self.shift)
        if self.flip:
            x = torch.where((u[:, 6] < 0)[:, None, None, None].to(x.device), x.flip(3), x)
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


DIFFAUG_OPS = ("color", "translation", "cutout")


@dataclass
class DiffAugment:
    """Differentiable augmentation of every image D sees, real and generated (Zhao et al. 2020, "DiffAugment").

    The paper's three operations, each drawn per image from the generator passed in, with their
    paper strengths scaled by ``strength`` (0: the identity):

    - ``color``: brightness ``x + (u - 0.5)``, saturation ``(x - mean_c) * 2u + mean_c`` (mean over
      channels), contrast ``(x - mean) * (u + 0.5) + mean`` (mean over the image), ``u ~ U(0, 1)``,
      each change multiplied by ``strength`` (skipped on one-channel images, as in the paper);
    - ``translation``: an integer shift of up to ``translation * S`` pixels in each direction,
      zero padding (the paper's ratio 1/8);
    - ``cutout``: a square of side ``cutout * S`` at a random place set to 0 (the paper's 1/2).

    Gradients flow through every operation to the images (and so to the generator). The ops are
    written out here rather than taken from ``kornia.augmentation``: kornia's colour jitter and
    random affine use other parameter ranges and interpolate sub-pixel shifts, so they would not be
    the paper's operations.

    Args:
        ops: which operations, in order (any of :data:`DIFFAUG_OPS`).
        translation: largest shift as a fraction of the side.
        cutout: side of the cut-out square as a fraction of the side.
        strength: scales every operation (0: identity, 1: the paper's).
    """

    ops: tuple[str, ...] = DIFFAUG_OPS
    translation: float = 0.125
    cutout: float = 0.5
    strength: float = 1.0

    def __post_init__(self) -> None:
        unknown = [op for op in self.ops if op not in DIFFAUG_OPS]
        if unknown:
            raise ValueError(f"unknown DiffAugment ops {unknown}; valid: {list(DIFFAUG_OPS)}.")
        if not (0 <= self.translation <= 0.5 and 0 <= self.cutout <= 1 and 0 <= self.strength <= 1):
            raise ValueError(f"need 0 <= translation <= 0.5, 0 <= cutout <= 1, 0 <= strength <= 1; got "
                             f"{self.translation}, {self.cutout}, {self.strength}.")

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch.

        Args:
            x: images `(B, C, H, W)` in [-1, 1] (float, possibly requiring grad).
            gen: CPU generator of the draws (``None``: the global RNG).

        Returns:
            `(B, C, H, W)`, the same dtype and device.
        """
        if x.ndim != 4:
            raise ValueError(f"DiffAugment takes images (B, C, H, W), got {tuple(x.shape)}.")
        if self.strength == 0:
            return x
        for op in self.ops:
            x = getattr(self, f"_{op}")(x, gen)
        return x

    def _uniform(self, x: torch.Tensor, gen: torch.Generator | None, *shape: int) -> torch.Tensor:
        return torch.rand((x.shape[0], *shape), generator=gen).to(device=x.device, dtype=x.dtype)

    def _color(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        s = self.strength
        x = x + s * (self._uniform(x, gen, 1, 1, 1) - 0.5)  # brightness
        if x.shape[1] > 1:  # saturation needs colour channels
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (1 + s * (2 * self._uniform(x, gen, 1, 1, 1) - 1)) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (1 + s * (self._uniform(x, gen, 1, 1, 1) - 0.5)) + mean  # contrast

    def _translation(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        b, _, h, w = x.shape
        sh, sw = int(h * self.translation * self.strength + 0.5), int(w * self.translation * self.strength + 0.5)
        if sh == 0 and sw == 0:
            return x
        dy = torch.randint(-sh, sh + 1, (b,), generator=gen)
        dx = torch.randint(-sw, sw + 1, (b,), generator=gen)
        padded = F.pad(x, (sw, sw, sh, sh))  # zeros around
        rows = (torch.arange(h)[None, :] + sh - dy[:, None]).to(x.device)  # `(B, H)` source rows
        cols = (torch.arange(w)[None, :] + sw - dx[:, None]).to(x.device)  # `(B, W)` source columns
        idx_b = torch.arange(b, device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    def _cutout(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        b, _, h, w = x.shape
        ch, cw = int(h * self.cutout * self.strength + 0.5), int(w * self.cutout * self.strength + 0.5)
        if ch == 0 or cw == 0:
            return x
        top = torch.randint(0, h - ch + 1, (b,), generator=gen)[:, None, None]
        left = torch.randint(0, w - cw + 1, (b,), generator=gen)[:, None, None]
        yy, xx = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
        keep = ~((yy >= top) & (yy < top + ch) & (xx >= left) & (xx < left + cw))  # `(B, H, W)`
        return x * keep[:, None].to(device=x.device, dtype=x.dtype)
