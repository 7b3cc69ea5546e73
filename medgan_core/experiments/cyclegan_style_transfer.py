"""Experiment 04 (CycleGAN style-transfer write-up): its settings, its observations, and the sentences of our verdicts.

Only what belongs to this one write-up lives here; the networks (``models/cyclegan.py``,
``models/pix2pix.py``), the patches (``data/patches.py``), the kernel styles (``data/ct_kernels.py``),
tiled inference (``models/tiling.py``), the metrics and the figures are shared.

Who produced what: the **student**, in their own runs on a private pair of image-style domains
(500 images per domain at 1024 x 1024); the write-up gives its settings and observations but no
metric values, and quotes no paper's numbers. The method is CycleGAN's paper (Zhu et al. 2017).
"""

from __future__ import annotations

import pandas as pd

WRITEUP_WHO = "the student's own runs (a private pair of style domains, 500 images each at 1024 x 1024)"
WRITEUP_SETTINGS = {
    "images": "500 per domain, 1024 x 1024, trained on patches because whole images did not fit in memory",
    "patches and batches": "64 x 64 patches with batch 16, and 128 x 128 patches with batch 2",
    "adversarial loss": "least squares (LSGAN)",
    "cycle loss": "L1, weight L1_lambda (value not given)",
    "identity loss": "L1, weight L1_gamma (value not given)",
    "discriminator loss": "averaged over both domains",
    "metrics reported": "none (samples only)",
}
CLAIMS = {
    "patch": "Larger patches mattered more than larger batches.",
    "data": "500 images per domain were too few.",
    "paired": "The data were in fact paired, which a paired method could exploit.",
}


def writeup_table() -> pd.DataFrame:
    """The write-up's settings, who produced them."""
    return pd.Series(WRITEUP_SETTINGS).rename_axis("the write-up's setting").to_frame(WRITEUP_WHO)


def claims_table(verdicts: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Each observation of the write-up beside our verdict and its evidence (``{claim: (verdict, evidence)}``)."""
    return pd.DataFrame([{"the write-up observed": CLAIMS[k], "our verdict": v, "evidence": e}
                         for k, (v, e) in verdicts.items()]).set_index("the write-up observed")


def _ci(est: float, low: float, high: float, unit: str = "") -> str:
    return f"{est:+.3g}{unit} (95% CI {low:+.3g} to {high:+.3g})"


def paired_evidence(diff: tuple[float, float, float], metric: str, n_seeds: int) -> tuple[str, str]:
    """``(verdict, evidence)`` on "a paired method could exploit the pairs": pix2pix minus CycleGAN on one metric.

    Args:
        diff: ``(estimate, low, high)`` of pix2pix minus CycleGAN (higher is better for the metric).
        metric: the metric's name with its unit and direction, e.g. ``"PSNR, dB; higher is better"``.
        n_seeds: training seeds of each method.
    """
    est, low, high = diff
    text = f"pix2pix minus CycleGAN, {metric}: {_ci(est, low, high)}, {n_seeds} seeds each"
    if not (low <= est <= high) or low != low:
        return "withheld (no interval)", text
    if low > 0:
        return "supported (the paired baseline beat CycleGAN)", text
    if high < 0:
        return "contradicted (CycleGAN beat the paired baseline)", text
    return "not shown (no measurable difference)", text


def patch_evidence(patch: tuple[float, float, float], batch: tuple[float, float, float], patches: tuple[int, int],
                   batches: tuple[int, int], metric: str) -> tuple[str, str]:
    """``(verdict, evidence)`` on "larger patches mattered more than larger batches", at equal compute.

    Args:
        patch: ``(estimate, low, high)`` of the metric's change from the smallest to the largest
            patch, averaged over batch sizes (higher is better).
        batch: the same for the smallest to the largest batch, averaged over patch sizes.
        patches: the smallest and largest patch sides.
        batches: the smallest and largest batch sizes.
        metric: the metric's name, unit and direction.
    """
    text = (f"{metric}: patch {patches[0]} -> {patches[1]} px {_ci(*patch)}; batch {batches[0]} -> {batches[1]} "
            f"{_ci(*batch)}")
    if any(v != v for v in (*patch, *batch)):
        return "withheld (no interval)", text
    p_sig, b_sig = patch[1] > 0 or patch[2] < 0, batch[1] > 0 or batch[2] < 0
    if not p_sig and not b_sig:
        return "not shown (neither made a measurable change)", text
    if p_sig != b_sig:
        which, est = ("patch", patch[0]) if p_sig else ("batch", batch[0])
        other = "batch" if p_sig else "patch"
        return (f"{'supported' if p_sig else 'contradicted'} ({which} size {'helped' if est > 0 else 'hurt'}; {other} size "
                "made no measurable change)"), text
    bigger = "patch" if abs(patch[0]) > abs(batch[0]) else "batch"
    return f"{'supported' if bigger == 'patch' else 'contradicted'} (both changed the metric; {bigger} size more)", text


def change_evidence(change: tuple[float, float, float], what: str, good: str, bad: str) -> tuple[str, str]:
    """``(verdict, evidence)`` from a change with its interval: ``good`` if above 0, ``bad`` if below, else no change.

    Args:
        change: ``(estimate, low, high)``, higher is better.
        what: the evidence text before the numbers (metric, direction, what minus what).
        good: the verdict when the interval lies above 0.
        bad: the verdict when it lies below 0.
    """
    est, low, high = change
    text = f"{what}: {_ci(est, low, high)}"
    if low != low or high != high:
        return "withheld (no interval)", text
    return (good if low > 0 else bad if high < 0 else "no measurable change"), text
