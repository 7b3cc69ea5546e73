"""Experiment 01 (blood-cell BAGAN write-up): its numbers, its labels and the verdict sentences.

Only what belongs to this one write-up lives here; the data (``data/bccd.py``), generators (``models/``), trainer
(``train/``), fidelity table, quality floor, utility harness (``metrics/``) and figures (``plots.py``) are shared.

Who produced the numbers below: the **student**, in their own runs on a course-exam red-blood-cell set
(cell types 0 to 3, not BCCD, our data), in their own unknown feature space; no paper is quoted for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from medgan_core.metrics.fidelity import REFERENCE, fid_ratios
from medgan_core.metrics.floor import gate
from medgan_core.metrics.stats import format_ci

GENERATORS = ("dcgan", "cwgan_gp", "bagan", "bagan_gp")
LABELS = {"dcgan": "DCGAN (per class)", "cwgan_gp": "cond. WGAN-GP", "bagan": "BAGAN", "bagan_gp": "BAGAN-GP",
          "bagan_autoencoder": "BAGAN autoencoder (shared by BAGAN, BAGAN-GP)", REFERENCE: REFERENCE}
WRITEUP_SOURCE = "the student's own runs on a course-exam red-blood-cell set (types 0-3, not BCCD)"
WRITEUP_DATA = ("The write-up trained on a red-blood-cell image set from a course exam with cell types 0 to 3, not on "
                "BCCD (our RBC, WBC and Platelets), so its types cannot be matched to our classes.")
WRITEUP_LAYOUT_WHO = ("produced by the student's own runs on a course-exam red-blood-cell set (types 0-3), in an "
                      "unknown feature space; lower is better")
FID_DIRECTION = "FID, lower is better (0 = same feature statistics)"
# The write-up's FIDs as {(its row, its column): value}, exactly as it printed them (see WRITEUP_LAYOUT_WHO).
WRITEUP_COLUMNS = {REFERENCE: "real train-vs-val", "dcgan": "DCGAN",
                   "wgan_gp_unconditional": "WGAN-GP (unconditional; write-up only)", "bagan": "BAGAN",
                   "generated": "generated (write-up's per-type table)"}
WRITEUP_FID = {("all", REFERENCE): 0.004, ("all", "dcgan"): 0.835, ("all", "wgan_gp_unconditional"): 0.039,
               ("all", "bagan"): 0.038, ("type 1", "generated"): 0.448, ("type 2", "generated"): 3.191,
               ("type 3", "generated"): 1.358, ("type 1", REFERENCE): 0.022, ("type 2", REFERENCE): 0.098,
               ("type 3", REFERENCE): 0.013}
# Where each write-up column sits in our table: after this model of ours (its own column, never under another label).
WRITEUP_BESIDE = {REFERENCE: REFERENCE, "dcgan": "dcgan", "wgan_gp_unconditional": "cwgan_gp", "bagan": "bagan"}


def writeup_layout_table() -> pd.DataFrame:
    """The write-up's FID table in its own layout (rows: all types, type 1-3), "–" where it gave none."""
    rows = ["all", "type 1", "type 2", "type 3"]
    data = {label: [str(WRITEUP_FID.get((r, key), "–")) for r in rows] for key, label in WRITEUP_COLUMNS.items()}
    table = pd.DataFrame(data, index=pd.Index(["all types", *rows[1:]], name="write-up (its types 0-3)"))
    table.columns.name, table.attrs["caption"] = FID_DIRECTION, WRITEUP_LAYOUT_WHO
    return table


def writeup_table(fid: pd.DataFrame, models: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """Our FIDs per class (with CIs) beside the write-up's, which sit on the "all types" row only (other cells).

    Args:
        fid: the frame of :func:`medgan_core.metrics.fidelity.fidelity_study`.
        models: the generators to show, in order.
        digits: decimals.
    """
    classes, shown = list(dict.fromkeys(fid["class"])), [REFERENCE, *models]
    out: dict[str, list[str]] = {}  # a write-up column: its "all types" FID, "–" on our per-class rows
    col = lambda k: (f"{WRITEUP_COLUMNS[k]}: write-up (exam RBC set)",  # noqa: E731
                     [str(WRITEUP_FID[("all", k)]) if c == "all" else "–" for c in classes])
    for model in shown:
        sub = fid[fid.model == model].set_index("class").reindex(classes)
        out[f"{LABELS.get(model, model)}: ours (BCCD)"] = [
            format_ci(r.fid, r.get("fid_ci_low", float("nan")), r.get("fid_ci_high", float("nan")), digits)
            for _, r in sub.iterrows()]
        out.update(col(k) for k, beside in WRITEUP_BESIDE.items() if beside == model)
    out.update(col(k) for k, beside in WRITEUP_BESIDE.items() if beside not in shown)
    table = pd.DataFrame(out, index=pd.Index(["all types" if c == "all" else c for c in classes], name="class"))
    table.columns.name, table.attrs["caption"] = FID_DIRECTION, f"{WRITEUP_DATA} Write-up: {WRITEUP_LAYOUT_WHO}."
    return table


def _floor_phrase(row: Mapping[str, Any] | None, label: str, auc_meaning: str = "") -> str:
    """How ``label`` fared against the quality floor, with its numbers ("not evaluated" where missing)."""
    num = lambda k: "not evaluated" if row.get(k) is None or pd.isna(row.get(k)) else f"{float(row[k]):.2f}"  # noqa
    passed = None if row is None else row.get("passed")
    if passed is None or pd.isna(passed):
        return f"{label} was not evaluated against the quality floor"
    nums = row.get("reason", "") if not bool(passed) else f"precision {num('precision')}, recall {num('recall')}"
    how = "passed the quality floor" if bool(passed) else "fell below the quality floor"
    return f"{label} {how} ({nums}; C2ST AUC {num('c2st_auc')}{auc_meaning})"


def bagan_finding_sentence(floor_rows: Mapping[str, Mapping], labels: Mapping[str, str] = LABELS,
                           image_size: int | None = None) -> str:
    """The write-up's BAGAN finding set against our quality-floor rows of BAGAN and BAGAN-GP.

    Args:
        floor_rows: ``{model: row of :func:`medgan_core.metrics.floor.floor_table`}`` (``passed, reason,
            precision, recall, c2st_auc``); a missing row, key or NaN reads "not evaluated".
        labels: ``{model: label}`` for the sentences.
        image_size: our image side in px, named in the sentence when given.
    """
    where = f"on BCCD cells at {image_size} px" if image_size else "on BCCD cells"
    meaning = ", where 0.5 means a classifier cannot tell generated from real cells and 1.0 means it always can"
    return (f"The write-up found that BAGAN learnt Fashion-MNIST but not its cells (a course-exam red-blood-cell set, "
            f"types 0-3). Here, {where}, {_floor_phrase(floor_rows.get('bagan'), labels['bagan'], meaning)}. "
            f"{_floor_phrase(floor_rows.get('bagan_gp'), labels['bagan_gp'])}. The cells, image size and feature space "
            f"differ, so this neither confirms nor refutes the write-up's finding.")


def ranking_sentence(ranking: Sequence[str], n_task_b: int) -> str:
    """The generators above the floor, best first on the validation split: all get task-A utility arms.

    Args:
        ranking: generators, best first (:func:`medgan_core.metrics.fidelity.rank_generators`).
        n_task_b: how many of the first are retrained on task B.
    """
    return (f"Above the floor, ranked by mean per-class FID gap to the reference on the validation split: "
            f"**{', '.join(LABELS[m] for m in ranking)}**. Each gets task-A utility arms and an induced-imbalance "
            f"curve; the first {min(n_task_b, len(ranking))} also task B.")


def imbalance_sentence(curves: pd.DataFrame, minority_name: str) -> str:
    """The smallest kept fraction: each GAN arm's minority recall against the best non-GAN arm's.

    Args:
        curves: the frame of :func:`medgan_core.metrics.utility.induced_imbalance`.
        minority_name: the thinned class's name.
    """
    rec = curves[curves.metric == "minority_recall"]
    last = rec[rec.fraction == rec.fraction.min()].set_index("arm")
    gan = [a for a in last.index if a.startswith("real+gan")]
    base = [a for a in last.index if "gan" not in a and not a.startswith("synthetic")]
    if not gan or not base:
        return ""
    b = max(base, key=lambda a: last.loc[a, "mean"])
    cell = lambda a: format_ci(*last.loc[a, ["mean", "ci_low", "ci_high"]], digits=2)  # noqa: E731
    apart = lambda a: last.loc[a, "ci_low"] > last.loc[b, "ci_high"] or last.loc[b, "ci_low"] > last.loc[a, "ci_high"]  # noqa
    each = "; ".join(f"{cell(g)} with {g} (intervals {'do not overlap' if apart(g) else 'overlap'})" for g in gan)
    return (f"With {rec.fraction.min():.0%} of the {minority_name} kept ({int(last.loc[gan[0], 'n_minority'])} "
            f"images), {minority_name} recall (higher is better, mean and 95% CI) was {each}; against {cell(b)} with "
            f"the best non-GAN method ({b}).")


def study_verdict(fid: pd.DataFrame, best: str, utility: Mapping[str, Any], curves: pd.DataFrame | None,
                  minority_name: str, floor: Mapping[str, Mapping] | None = None) -> str:
    """The report's verdict, generated from this run's numbers.

    Args:
        fid: the cell-type task's fidelity frame.
        best: the generator ranked first on the validation split.
        utility: ``{task label: UtilityResult}``.
        curves: the induced-imbalance frame, or ``None``.
        minority_name: the thinned class of the cell-type task.
        floor: ``{model: quality-floor row}``; when given, the best generator's FID sentence is withheld if it failed.
    """
    if floor is not None and best not in floor:
        raise ValueError(f"floor has no row for {best!r} (it has {sorted(floor)}); pass a row for every generator.")
    ratios = fid_ratios(fid, best)
    per_class = ", ".join(f"{c} {r:.1f}x" for c, r in ratios.items() if c != "all")
    parts = [f"The best generator on the validation split was {LABELS[best]}, whose FID was {per_class} the "
             f"real-vs-real reference (1x = as close to the training cells as held-out real cells)."]
    parts[0] = parts[0] if floor is None else gate(parts[0], LABELS[best], floor[best])
    parts += [f"{task}: {res.verdict}" for task, res in utility.items()]
    if curves is not None and len(curves):
        parts.append(imbalance_sentence(curves, minority_name))
    return " ".join(p for p in parts if p)
