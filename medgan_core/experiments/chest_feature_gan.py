"""Experiment 03 (CheXpert feature-GAN write-up): its numbers, its claims, and the sentences of our verdicts.

Only what belongs to this one write-up lives here; the data readers (``data/ieee8023.py``,
``data/kermany.py``, ``data/chexpert.py``), the extractor (``models/vgg_extractor.py``), the feature
GAN (``models/feature_gan.py``), the metrics and the figures are shared.

Who produced the numbers below: the **student**, in their own runs on CheXpert (six single-label
classes at 160 x 160 x 3); no paper is quoted for them. The write-up reports one metric,
classification **accuracy** (the share of images classified right; higher is better), and does not
say on which split it was measured (its validation set holds 400 images per class).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

WRITEUP_WHO = "the student's own runs on CheXpert (six single-label classes, 160 x 160 x 3)"
# The write-up's training images per class, exactly as given (plus 400 validation images per class).
WRITEUP_COUNTS = {"Atelectasis": 5400, "Cardiomegaly": 5400, "Consolidation": 2700, "Edema": 9500,
                  "Pleural Effusion": 13500, "No Finding": 3000}
WRITEUP_VAL_PER_CLASS = 400
# The write-up's accuracy before (step 1: the extractor-classifier alone) and after (step 2: trained on generated features).
WRITEUP_ACCURACY = {"step 1: extractor-classifier on the imbalanced images": 0.568,
                    "step 2: the same classifier trained further with generated features": 0.617}
WRITEUP_SETTINGS = {
    "images": "CheXpert, 160 x 160 x 3, six single-label classes (counts in the table above), 400 validation images per class",
    "step 1 extractor-classifier": ("two 3x3x64 conv, max-pool, two 3x3x128, max-pool, 3x3x128, 3x3x128, 3x3x256, max-pool, "
                                    "two 3x3x256, 3x3x512, max-pool -> 10x10x512 features; three 3x3x512 conv, max-pool, "
                                    "FC 4096, FC 512, FC 6; leaky ReLU and batch norm throughout"),
    "step 1 training": "learning rate 1e-4, batch 40, 50 epochs",
    "step 2 generator": "100-d noise -> deconvolutions -> 10x10x512, tanh",
    "step 2 discriminator": "over 10x10x512 features: three 5x5 conv, FC 1024, 64, 1, sigmoid",
    "step 2 classifier": "the extractor's layers 16 to 23, initialised from step 1",
    "step 2 schedule": "the classifier trains on generated features every 2 steps and on real ones every 5",
    "step 2 learning rates": "G 1e-3, D 1e-4, classifier 1e-7",
    "class labels of generated features": "not given (here: a class-conditional generator, see section 2)",
}
CLAIMS = {
    "gain": "Training the classifier on generated features raised its accuracy from 56.8% to 61.7%.",
    "overfit": "The deep 512-channel features overfit; a shallower extractor layer (or pruning) should do better.",
}
LABELS = {"feature_gan": "feature GAN (deep split)", "feature_gan_shallow": "feature GAN (shallow split)",
          "pixel_gan": "pixel BigGAN (class-conditional)"}


def writeup_table() -> pd.DataFrame:
    """The write-up's two accuracies, who produced them and how to read them."""
    return pd.DataFrame({"accuracy (share right; higher is better)": WRITEUP_ACCURACY,
                         "who": WRITEUP_WHO}).rename_axis("the write-up's classifier")


def gain_evidence(paired: Any, passed: list[str], withheld: bool, dataset: str) -> tuple[str, str]:
    """``(verdict, evidence)`` on "generated features raised the accuracy" from the utility study of one dataset.

    Args:
        paired: the study's :class:`~medgan_core.metrics.utility.PairedTest` of the best arm adding
            generated data against the best arm without (``None``: no GAN arm ran).
        passed: generators above the quality floor (the only ones whose arms may carry a verdict).
        withheld: ``UtilityResult.withheld`` (a degenerate or saturated baseline).
        dataset: the dataset's name, for the evidence text.
    """
    if not passed or paired is None or paired.n_seeds < 2:
        return f"withheld on {dataset} (no generator above the quality floor, or no paired test)", ""
    text = (f"{dataset}: {paired.gan_arm} minus {paired.base_arm}, balanced accuracy {paired.mean_diff:+.3f} (95% CI "
            f"{paired.ci_low:+.3f} to {paired.ci_high:+.3f}, p {paired.t_pvalue:.2g}, {paired.n_seeds} seeds; higher "
            "is better)")
    if withheld:
        return f"withheld on {dataset} (the baseline was degenerate or at the ceiling)", text
    if paired.ci_low > 0 and paired.t_pvalue < 0.05:
        return f"supported on {dataset} (generated data helped)", text
    if paired.ci_high < 0 and paired.t_pvalue < 0.05:
        return f"contradicted on {dataset} (generated data hurt)", text
    return f"not shown on {dataset} (no measurable change)", text


def depth_evidence(diff: dict[str, float], dataset: str) -> tuple[str, str]:
    """``(verdict, evidence)`` on "a shallower split does better" from a paired shallow-minus-deep difference.

    Args:
        diff: ``{"mean_diff", "ci_low", "ci_high", "t_pvalue", "n"}`` of shallow minus deep balanced
            accuracy of the ``real`` arm over seeds (:func:`medgan_core.metrics.stats.paired_test`).
        dataset: the dataset's name.
    """
    text = (f"{dataset}: head on shallow minus head on deep features, balanced accuracy {diff['mean_diff']:+.3f} "
            f"(95% CI {diff['ci_low']:+.3f} to {diff['ci_high']:+.3f}, p {diff['t_pvalue']:.2g}, {diff['n']} seeds; "
            "higher favours the shallow split)")
    if diff["n"] < 2 or diff["t_pvalue"] != diff["t_pvalue"]:
        return f"withheld on {dataset} (fewer than 2 paired seeds)", text
    if diff["ci_low"] > 0 and diff["t_pvalue"] < 0.05:
        return f"supported on {dataset} (the shallow split did better)", text
    if diff["ci_high"] < 0 and diff["t_pvalue"] < 0.05:
        return f"contradicted on {dataset} (the deep split did better)", text
    return f"not shown on {dataset} (no measurable difference)", text


def claims_table(evidence: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """The write-up's claims, one row per claim and dataset, with our computed verdict and evidence."""
    rows = [{"the write-up's claim (the student)": CLAIMS[key], "our verdict": verdict, "our evidence": text}
            for key in CLAIMS for verdict, text in evidence.get(key, [("not tested here", "")])]
    return pd.DataFrame(rows)
