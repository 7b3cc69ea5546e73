"""Experiment 02 (ISIC skin-lesion write-up): its numbers, its claims, and the sentences of our verdicts.

Only what belongs to this one write-up lives here; the data (``data/isic.py``), generators (``models/``),
trainer (``train/``), metrics (``metrics/``) and figures (``plots.py``) are shared.

Who produced the numbers below: the **student team**, in their own runs on 23,345 ISIC images
(after removing images with stickers and duplicates); no paper is quoted for them. The write-up
gives settings and conclusions, no accuracy or FID of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from medgan_core.metrics.stats import format_ci

GENERATORS = ("simple_gan", "dcgan", "biggan")
CLASSES = ("melanoma", "nevus")  # the write-up's task and BigGAN's classes, in label order
WRITEUP_SIZES = {"simple_gan": 32, "dcgan": 64, "biggan": 128}  # the write-up's resolutions, px
LABELS = {"simple_gan": "simple conv. GAN (per class)", "dcgan": "DCGAN (per class)",
          "biggan": "BigGAN (class-conditional)"}
WRITEUP_WHO = "the student team's own runs on 23,345 ISIC images (settings only; the write-up reports no metric values)"
# The write-up's settings, exactly as it gave them.
WRITEUP_SETTINGS = {
    "images (after removing stickers and duplicates)": "23,345",
    "simple convolutional GAN": "32 x 32 px",
    "DCGAN": "64 x 64 px",
    "BigGAN": "128 x 128 px, class-conditional (melanoma, nevus), batch 16, one RTX 2080 Ti, 1,000,000 iterations, 12 days",
    "classifier": "CNN, melanoma vs nevus, 128 x 128 px, class weights 1:14",
    "classifier augmentation": "rotation 15 degrees, rescale, shear 0.1, zoom 0.2, horizontal flip, shifts 0.1",
    "classifier training": "early stopping and learning-rate reduction",
    "test set": "500 melanoma + 500 nevus images",
}
CLAIMS = {
    "no_help": "GAN images did not help the melanoma class (few real melanomas make poor melanoma fakes).",
    "look_alike": "Longer BigGAN training made look-alike images.",
    "batch": "Batch size limited BigGAN.",
    "dcgan_first": "For people with little compute, DCGAN is the better start.",
    "image_to_image": "Image-to-image GANs may serve better.",
}


def _trend_words(rho: float, p: float, up: str, down: str) -> str:
    """``up``/``down``/"no trend" from a Spearman correlation and its p-value."""
    return (up if rho > 0 else down) if p < 0.05 else "no trend"


def look_alike_evidence(trends: Mapping[str, Mapping[str, float]], steps: int, n_evals: int) -> tuple[str, str]:
    """``(verdict, evidence)`` on "longer training made look-alike images" from trends over BigGAN's training.

    Args:
        trends: ``{metric: {"rho", "p"}}`` Spearman correlations of ``ms_ssim``, ``recall``,
            ``coverage`` and ``nn_ratio`` with the step, over the validations of the second half of training.
        steps: the steps trained.
        n_evals: validations in that half.
    """
    if n_evals < 4 or any(v["rho"] != v["rho"] for v in trends.values()):
        return "withheld (fewer than 4 validations in the second half, or a constant metric)", f"{n_evals} validations"
    words = {"ms_ssim": _trend_words(trends["ms_ssim"]["rho"], trends["ms_ssim"]["p"], "more alike", "less alike"),
             "recall": _trend_words(trends["recall"]["rho"], trends["recall"]["p"], "rose", "fell"),
             "coverage": _trend_words(trends["coverage"]["rho"], trends["coverage"]["p"], "rose", "fell"),
             "nn_ratio": _trend_words(trends["nn_ratio"]["rho"], trends["nn_ratio"]["p"], "further from", "closer to")}
    look_alike = words["ms_ssim"] == "more alike" and "fell" in (words["recall"], words["coverage"])
    copying = words["nn_ratio"] == "closer to"
    def verb(word: str) -> str:
        return "showed no trend" if word == "no trend" else word

    alike = {"more alike": "grew more alike", "less alike": "grew less alike", "no trend": "showed no trend in likeness"}
    near = {"further from": "moved further from the training images", "closer to": "moved closer to the training images",
            "no trend": "showed no trend in their distance to the training images"}
    text = (f"over the last {n_evals} validations (to step {steps}): generated images {alike[words['ms_ssim']]} to "
            f"each other (MS-SSIM rho {trends['ms_ssim']['rho']:+.2f}, p {trends['ms_ssim']['p']:.2g}); recall "
            f"{verb(words['recall'])} (rho {trends['recall']['rho']:+.2f}, p {trends['recall']['p']:.2g}), coverage "
            f"{verb(words['coverage'])} (rho {trends['coverage']['rho']:+.2f}, p {trends['coverage']['p']:.2g}); and they "
            f"{near[words['nn_ratio']]} (nearest-training distance ratio rho {trends['nn_ratio']['rho']:+.2f}, "
            f"p {trends['nn_ratio']['p']:.2g})")
    if look_alike or copying:
        return "supported at our scale", text
    return "not seen at our scale", text


def batch_evidence(rows: Mapping[int, Mapping[str, float]], images_seen: int) -> tuple[str, str]:
    """``(verdict, evidence)`` on "batch size limited BigGAN" from FIDs with intervals at equal images seen.

    Args:
        rows: ``{batch size: {"fid", "fid_ci_low", "fid_ci_high", "steps"}}`` (encoder space, all classes).
        images_seen: real images every run saw.
    """
    small, large = min(rows), max(rows)
    a, b = rows[small], rows[large]
    text = (f"at {images_seen:,} images seen, batch {small} ({a['steps']} steps): FID "
            f"{format_ci(a['fid'], a['fid_ci_low'], a['fid_ci_high'], digits=1)}; batch {large} ({b['steps']} steps): "
            f"FID {format_ci(b['fid'], b['fid_ci_low'], b['fid_ci_high'], digits=1)} (lower is better)")
    if b["fid_ci_high"] < a["fid_ci_low"]:
        return "supported at our scale (the larger batch reached a lower FID)", text
    if a["fid_ci_high"] < b["fid_ci_low"]:
        return "contradicted at our scale (the smaller batch reached a lower FID)", text
    return "not shown at our scale (the intervals overlap)", text


def dcgan_first_evidence(floor_rows: Mapping[str, Mapping[str, Any]], fid_all: Mapping[str, Mapping[str, float]],
                         seconds: Mapping[str, float]) -> tuple[str, str]:
    """``(verdict, evidence)`` on "with little compute, DCGAN is the better start" (DCGAN vs BigGAN, same CPU).

    Args:
        floor_rows: ``{model: {"passed", ...}}`` quality-floor rows.
        fid_all: ``{model: {"fid", "fid_ci_low", "fid_ci_high"}}`` pooled over classes.
        seconds: training seconds per model.
    """
    d, g = fid_all["dcgan"], fid_all["biggan"]
    text = (f"DCGAN: FID {format_ci(d['fid'], d['fid_ci_low'], d['fid_ci_high'], digits=1)} after "
            f"{seconds['dcgan']:.0f} s, floor {'passed' if floor_rows['dcgan']['passed'] else 'failed'}; BigGAN: FID "
            f"{format_ci(g['fid'], g['fid_ci_low'], g['fid_ci_high'], digits=1)} after {seconds['biggan']:.0f} s, "
            f"floor {'passed' if floor_rows['biggan']['passed'] else 'failed'} (lower FID is better)")
    d_ok, g_ok = bool(floor_rows["dcgan"]["passed"]), bool(floor_rows["biggan"]["passed"])
    if d_ok and (not g_ok or d["fid_ci_high"] < g["fid_ci_low"]):
        return "supported at our scale", text
    if g_ok and (not d_ok or g["fid_ci_high"] < d["fid_ci_low"]):
        return "contradicted at our scale (BigGAN did better on the same CPU)", text
    return "not shown at our scale", text


def no_help_evidence(paired: Any, arms: list[str], melanoma: Mapping[str, str], withheld: bool = False) -> tuple[str, str]:
    """``(verdict, evidence)`` on "GAN images did not help the melanoma class".

    Args:
        paired: the utility study's :class:`~medgan_core.metrics.utility.PairedTest` (``None``: no GAN arm ran).
        arms: generators that passed the floor (the only ones with GAN arms).
        melanoma: ``{model: "FID / reference" text}`` for the melanoma class (how poor the melanoma fakes are).
        withheld: the utility study withheld its verdict (``UtilityResult.withheld``: a degenerate or
            saturated baseline); the claim is then withheld too, its numbers kept for the record.
    """
    fakes = "; ".join(f"{LABELS[m]} melanoma FID / real reference {r}" for m, r in melanoma.items())
    if not arms or paired is None or paired.n_seeds < 2:
        return "withheld (no generator above the quality floor, or no paired test)", fakes
    text = (f"{paired.gan_arm} minus {paired.base_arm}: balanced accuracy {paired.mean_diff:+.3f} (95% CI "
            f"{paired.ci_low:+.3f} to {paired.ci_high:+.3f}, {paired.n_seeds} seeds; higher is better); {fakes}")
    if withheld:
        return "withheld (as the utility verdict of section 7 is: its baseline was degenerate or at the ceiling)", text
    if paired.ci_low > 0:
        return "contradicted (GAN images helped)", text
    return ("supported (GAN images hurt)" if paired.ci_high < 0 else "supported (no measurable help)"), text


def claims_table(evidence: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """The write-up's claims with our computed verdict and evidence; a claim we did not test says so."""
    rows = [{"the write-up's claim (the student team)": text,
             "our verdict": evidence.get(key, ("not tested here", ""))[0],
             "our evidence": evidence.get(key, ("", "no image-to-image GAN is trained in this experiment "
                                                    "(experiment 04 trains CycleGAN and pix2pix)"))[1]}
            for key, text in CLAIMS.items()]
    return pd.DataFrame(rows)
