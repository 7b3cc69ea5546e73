"""Inference of image-to-image networks: whole images in batches (:func:`translate`), tiled full-resolution
inference of a patch-trained network (:func:`tiled_translate`), and a seam metric.

A CycleGAN generator trained on ``P x P`` patches is fully convolutional, but a whole 512 x 512
slice may not fit in memory at once, and the network's output near a patch border (where its
zero or reflection padding sits) differs from its output inside. Translating a slice window by
window and pasting the windows side by side then leaves **seams** along the window borders.
MONAI's sliding-window inference (:class:`monai.inferers.SlidingWindowInferer`) runs the
windows with an ``overlap`` (a share of the window) and blends them: ``mode="gaussian"`` weights
each window's output by a Gaussian centred on it (``sigma_scale`` 0.125 of the window side), so
a pixel is taken mostly from the windows it lies deep inside; ``mode="constant"`` weights every
window equally (with ``overlap=0``: plain tiling).

**Seam ratio** (:func:`seam_ratio`): the mean squared difference between neighbouring pixels
across the interior window borders, divided by the same mean over every other neighbouring pair,
``(mean_{borders} d^2) / (mean_{elsewhere} d^2)`` with ``d`` the horizontal differences at
column borders and the vertical ones at row borders. About 1: the borders look like the rest of
the image; well above 1: visible seams.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from monai.inferers import SlidingWindowInferer
from torch import Tensor, nn


@torch.no_grad()
def translate(net: nn.Module, images: Tensor, batch_size: int = 16) -> Tensor:
    """``net(images)`` in eval mode and in batches, on ``net``'s device, returned on the CPU (the mode is restored).

    Eval mode turns pix2pix's dropout off (its paper keeps it on at test time, as its only noise),
    so one input always gives one output and every evaluation is reproducible without a seed.

    Args:
        net: an image-to-image network (CycleGAN's ``gan.net_G["G"]``: X -> Y or ``["F"]``: Y -> X; pix2pix's ``gan.net_G``).
        images: `(N, C, H, W)` in [-1, 1] (``H`` and ``W`` as the network needs, e.g. divisible by 4).
        batch_size: images per forward pass.
    """
    if batch_size < 1 or len(images) == 0:
        raise ValueError(f"translate needs batch_size >= 1 and at least one image; got batch_size {batch_size}, "
                         f"{len(images)} images.")
    was_training = net.training
    first = next(net.parameters(), None)
    device = first.device if first is not None else images.device  # a network without weights runs where the images are
    net.eval()
    try:
        return torch.cat([net(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)])
    finally:
        net.train(was_training)


def tiled_translate(net: Callable[[Tensor], Tensor], image: Tensor, roi: int, overlap: float = 0.25,
                    mode: str = "gaussian", sw_batch_size: int = 4) -> tuple[Tensor, list[tuple[slice, slice]]]:
    """Translate whole images window by window with MONAI's sliding-window inference.

    Args:
        net: the image-to-image network, `(B, C, roi, roi)` -> `(B, C, roi, roi)` (called without gradients).
        image: images `(N, C, H, W)`, ``H`` and ``W`` at least ``roi``.
        roi: the window side, px (the patch size the network was trained on).
        overlap: the share of a window shared with its neighbour, in [0, 1).
        mode: ``"gaussian"`` (blended) or ``"constant"`` (equal weights; with ``overlap=0`` plain tiling).
        sw_batch_size: windows per forward pass.

    Returns:
        ``(out, windows)``: the translated images `(N, C, H, W)` and the ``(rows, cols)`` slices of
        every window, in the order MONAI ran them.
    """
    if image.ndim != 4 or min(image.shape[-2:]) < roi:
        raise ValueError(f"tiled_translate needs images (N, C, H, W) with H and W >= roi = {roi}, got {tuple(image.shape)}.")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}.")
    if mode not in ("gaussian", "constant"):
        raise ValueError(f"mode must be 'gaussian' or 'constant', got {mode!r}.")
    windows: list[tuple[slice, slice]] = []

    def predictor(x: Tensor, coords: list) -> Tensor:
        windows.extend((c[-2], c[-1]) for c in coords)  # every window's (rows, cols)
        return net(x)

    inferer = SlidingWindowInferer(roi_size=(roi, roi), sw_batch_size=sw_batch_size, overlap=overlap, mode=mode,
                                   with_coord=True, progress=False)
    with torch.no_grad():
        out = inferer(image, predictor)
    unique = list(dict.fromkeys((w[0].start, w[0].stop, w[1].start, w[1].stop) for w in windows))
    return out, [(slice(a, b), slice(c, d)) for a, b, c, d in unique]


def window_borders(windows: list[tuple[slice, slice]], height: int, width: int) -> tuple[list[int], list[int]]:
    """Interior rows and columns where a window starts or ends: ``(rows, cols)``, each the index of the
    first pixel after the border (a border between pixels ``k - 1`` and ``k`` is ``k``), ``0 < k < side``."""
    rows = sorted({int(k) for r, _ in windows for k in (r.start, r.stop) if 0 < k < height})
    cols = sorted({int(k) for _, c in windows for k in (c.start, c.stop) if 0 < k < width})
    return rows, cols


def seam_ratio(image: Tensor | np.ndarray, rows: list[int], cols: list[int]) -> float:
    """Squared neighbour differences across the borders ``rows`` and ``cols`` over those elsewhere (1: no seams).

    Args:
        image: `(H, W)`, or `(N, C, H, W)` (every image and channel pooled).
        rows: border rows ``k`` (between pixel rows ``k - 1`` and ``k``), from :func:`window_borders`.
        cols: border columns, likewise.
    """
    x = torch.as_tensor(image).double()
    x = x.reshape(-1, *x.shape[-2:])  # `(M, H, W)`
    if not rows and not cols:
        raise ValueError("seam_ratio needs at least one interior border (rows or cols).")
    dy, dx = (x[:, 1:] - x[:, :-1]) ** 2, (x[:, :, 1:] - x[:, :, :-1]) ** 2  # `(M, H-1, W)`, `(M, H, W-1)`
    at_row = torch.zeros(dy.shape[1], dtype=torch.bool)
    at_row[[k - 1 for k in rows]] = True
    at_col = torch.zeros(dx.shape[2], dtype=torch.bool)
    at_col[[k - 1 for k in cols]] = True
    border = torch.cat([dy[:, at_row].flatten(), dx[:, :, at_col].flatten()])
    rest = torch.cat([dy[:, ~at_row].flatten(), dx[:, :, ~at_col].flatten()])
    return float(border.mean() / rest.mean().clamp_min(1e-12))
