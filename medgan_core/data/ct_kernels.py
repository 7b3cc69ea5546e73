"""Simulated CT reconstruction-kernel styles: a smooth and a sharp version of every slice, paired by construction.

A CT scanner's reconstruction kernel sets how sharp the image looks and how its noise is grained:
a smooth (soft-tissue) kernel blurs edges and leaves coarse, blotchy noise; a sharp (lung or bone)
kernel enhances edges and leaves fine-grained, stronger noise. Both are described by a modulation
transfer function (MTF) ``M(f)`` of the radial spatial frequency ``f`` (cycles per pixel, 0 to
about 0.7). A style here is

    x_style = clip(IFFT[M(f) FFT[x]] + sigma IFFT[M(f) FFT[n]] / rms(IFFT[M(f) FFT[n]]), 0, 1),   n ~ N(0, I)

so the signal and the noise pass through the same kernel (as they do in filtered back-projection)
and ``sigma`` is the standard deviation of the added noise. The two styles of this module:

| style  | MTF ``M(f)``                                        | ``sigma`` | looks like                 |
|--------|-----------------------------------------------------|-----------|----------------------------|
| smooth | ``exp(-(f / 0.18)^2)``                              | 0.010     | soft-tissue kernel (B30)   |
| sharp  | ``(1 + 1.5 (f / 0.25)^2) exp(-(f / 0.40)^2)``       | 0.030     | lung kernel (B70), edges enhanced |

``M(0) = 1`` for both: the mean intensity of a region is kept. The input is a slice scaled to
[0, 1] (:func:`to_unit`); the output is deterministic for a seed. This is a simulation with
documented filters, not a model of any scanner; it gives experiment 04 a paired ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KernelStyle:
    """One simulated reconstruction kernel: ``M(f) = (1 + boost (f / f_boost)^2) exp(-(f / f_cut)^2)`` and noise ``sigma``.

    Args:
        name: the style's name.
        f_cut: the Gaussian roll-off frequency, cycles per pixel (> 0).
        boost: the mid-frequency (edge) enhancement; 0: a plain low-pass.
        f_boost: the frequency at which the enhancement reaches ``1 + boost`` (> 0).
        sigma: the standard deviation of the added kernel-shaped noise, in [0, 1] intensity units (>= 0).
    """

    name: str
    f_cut: float
    boost: float = 0.0
    f_boost: float = 1.0
    sigma: float = 0.0

    def __post_init__(self) -> None:
        if not (self.f_cut > 0 and self.f_boost > 0 and self.boost >= 0 and self.sigma >= 0):
            raise ValueError(f"KernelStyle {self.name!r}: need f_cut > 0, f_boost > 0, boost >= 0 and sigma >= 0; got "
                             f"{self.f_cut}, {self.f_boost}, {self.boost}, {self.sigma}.")

    def mtf(self, f: np.ndarray) -> np.ndarray:
        """``M(f)`` at radial frequencies ``f`` (cycles per pixel)."""
        f = np.asarray(f, dtype=np.float64)
        return (1.0 + self.boost * (f / self.f_boost) ** 2) * np.exp(-((f / self.f_cut) ** 2))


STYLES: dict[str, KernelStyle] = {
    "smooth": KernelStyle("smooth", f_cut=0.18, sigma=0.010),
    "sharp": KernelStyle("sharp", f_cut=0.40, boost=1.5, f_boost=0.25, sigma=0.030),
}


def radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    """`(H, W)` radial frequency ``sqrt(fy^2 + fx^2)`` of each FFT bin, cycles per pixel."""
    fy, fx = np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1])
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def to_unit(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """A slice scaled linearly to [0, 1] (``low`` and ``high``: the values mapped to 0 and 1; default its min and max)."""
    image = np.asarray(image, dtype=np.float64)
    low = float(image.min()) if low is None else low
    high = float(image.max()) if high is None else high
    if not high > low:
        raise ValueError(f"to_unit needs high > low, got low {low} and high {high} (a constant slice?).")
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def apply_style(image: np.ndarray, style: KernelStyle | str, seed: int) -> np.ndarray:
    """The slice ``image`` `(H, W)` in [0, 1] as the kernel ``style`` would show it; float32, deterministic for ``seed``.

    Args:
        image: one slice, 2-D, finite, values in [0, 1] (see :func:`to_unit`).
        style: a :class:`KernelStyle` or the name of one of :data:`STYLES`.
        seed: seed of the noise.
    """
    if isinstance(style, str):
        if style not in STYLES:
            raise ValueError(f"unknown kernel style {style!r}; known: {sorted(STYLES)}.")
        style = STYLES[style]
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"apply_style needs one finite 2-D slice in [0, 1], got shape {x.shape}, range "
                         f"[{np.nanmin(x):.3g}, {np.nanmax(x):.3g}]; scale it with to_unit first.")
    m = style.mtf(radial_frequency(x.shape))  # `(H, W)`
    out = np.fft.ifft2(np.fft.fft2(x) * m).real
    if style.sigma > 0:
        noise = np.fft.ifft2(np.fft.fft2(np.random.default_rng(seed).standard_normal(x.shape)) * m).real
        out = out + style.sigma * noise / max(float(np.sqrt((noise ** 2).mean())), 1e-12)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def kernel_pair(image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(smooth, sharp)``: both styles of one slice in [0, 1], each with its own noise (seeds ``2 seed`` and ``2 seed + 1``)."""
    return apply_style(image, "smooth", 2 * seed), apply_style(image, "sharp", 2 * seed + 1)
