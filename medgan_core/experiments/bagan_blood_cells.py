"""Experiment 01 (blood-cell BAGAN write-up): its numbers, its labels and the verdict sentences.

Only what belongs to this one write-up lives here; the data (``data/bccd.py``), the four
generators (``models/``), the trainer (``train/``), the fidelity table and the utility harness
(``metrics/``) and every figure (``plots.py``) are shared with the other experiments.

Who produced the numbers below: the **student** (their own runs on their own data, in their
own feature space); no paper is quoted for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from medgan_core.metrics.fidelity import REFERENCE, fid_ratios

GENERATORS = ("dcgan", "cwgan_gp", "bagan", "bagan_gp")
LABELS = {"dcgan": "DCGAN (per class)", "cwgan_gp": "cond. WGAN-GP", "bagan": "BAGAN", "bagan_gp": "BAGAN-GP",
          "bagan_autoencoder": "BAGAN autoencoder (shared by BAGAN, BAGAN-GP)", REFERENCE: REFERENCE}
# The write-up's FIDs ("all types" only), produced by the student; lower is better.
WRITEUP_FID = {("all", REFERENCE): 0.004, ("all", "dcgan"): 0.835, ("all", "cwgan_gp"): 0.039,
               ("all", "bagan"): 0.038}
WRITEUP_SOURCE = "the student's own runs (their feature space and sample size)"


def writeup_table(fid: pd.DataFrame, models: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """The write-up's FID table (all types, then each type): ours with CIs beside the student's numbers.

    Args:
        fid: the frame of :func:`medgan_core.metrics.fidelity.fidelity_study`.
        models: the generators to show, in order.
        digits: decimals.
    """
    out, index = {}, []
    for model in [REFERENCE, *models]:
        label = LABELS.get(model, model)
        sub = fid[fid.model == model].set_index("class")
        out[f"{label}: ours"] = [f"{r.fid:.{digits}f} [{r.fid_ci_low:.{digits}f}, {r.fid_ci_high:.{digits}f}]"
                                 if pd.notna(r.get("fid")) else "n/a" for _, r in sub.iterrows()]
        out[f"{label}: write-up"] = [str(WRITEUP_FID.get((c, model), "–")) for c in sub.index]
        index = list(sub.index)
    return pd.DataFrame(out, index=pd.Index(["all types" if c == "all" else c for c in index], name="FID"))


def ranking_sentence(ranking: Sequence[str], n_arms: int) -> str:
    """Which generators were ranked first on the validation split and get utility arms.

    Args:
        ranking: generators, best first (:func:`medgan_core.metrics.fidelity.rank_generators`).
        n_arms: how many of them the utility study uses.
    """
    return (f"Ranked by mean per-class FID gap to the reference on the validation split: "
            f"**{', '.join(LABELS[m] for m in ranking)}**. The utility study uses the first {n_arms}.")


def imbalance_sentence(curves: pd.DataFrame, minority_name: str) -> str:
    """One sentence on the smallest kept fraction: the GAN arm's minority recall against the best non-GAN arm.

    Args:
        curves: the frame of :func:`medgan_core.metrics.utility.induced_imbalance`.
        minority_name: the thinned class's name.
    """
    rec = curves[curves.metric == "minority_recall"]
    frac = rec.fraction.min()
    last = rec[rec.fraction == frac].set_index("arm")
    gan = [a for a in last.index if a.startswith("real+gan")]
    base = [a for a in last.index if "gan" not in a and not a.startswith("synthetic")]
    if not gan or not base:
        return ""
    g, b = max(gan, key=lambda a: last.loc[a, "mean"]), max(base, key=lambda a: last.loc[a, "mean"])
    overlap = not (last.loc[g, "ci_low"] > last.loc[b, "ci_high"] or last.loc[b, "ci_low"] > last.loc[g, "ci_high"])
    return (f"With {frac:.0%} of the {minority_name} kept ({int(last.loc[g, 'n_minority'])} images), {minority_name} "
            f"recall was {last.loc[g, 'mean']:.2f} (95% CI {last.loc[g, 'ci_low']:.2f} to {last.loc[g, 'ci_high']:.2f}) "
            f"with {g} against {last.loc[b, 'mean']:.2f} ({last.loc[b, 'ci_low']:.2f} to {last.loc[b, 'ci_high']:.2f}) "
            f"with the best non-GAN method ({b}); the intervals {'overlap' if overlap else 'do not overlap'}.")


def study_verdict(fid: pd.DataFrame, best: str, utility: Mapping[str, Any], curves: pd.DataFrame | None,
                  minority_name: str) -> str:
    """The report's verdict, generated from this run's numbers.

    Args:
        fid: the cell-type task's fidelity frame.
        best: the generator ranked first on the validation split.
        utility: ``{task label: UtilityResult}``.
        curves: the induced-imbalance frame, or ``None``.
        minority_name: the thinned class of the cell-type task.
    """
    ratios = fid_ratios(fid, best)
    per_class = ", ".join(f"{c} {r:.1f}x" for c, r in ratios.items() if c != "all")
    parts = [f"The best generator on the validation split was {LABELS[best]}, whose FID was {per_class} the "
             f"real-vs-real reference (1x = as close to the training cells as held-out real cells)."]
    parts += [f"{task}: {res.verdict}" for task, res in utility.items()]
    if curves is not None and len(curves):
        parts.append(imbalance_sentence(curves, minority_name))
    return " ".join(p for p in parts if p)
