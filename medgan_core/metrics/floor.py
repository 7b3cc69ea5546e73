"""The quality floor: a generator's utility verdict is only spoken when the generator has learnt.

A utility experiment asks "do synthetic images help the classifier?". If the generator drew
noise, or one blob per class, the answer says nothing about GANs, only about adding noise. So
before a verdict names a generator, its images must clear a floor in the encoder space of the
fidelity table (:func:`medgan_core.metrics.fidelity.fidelity_study`, k-NN manifold
precision and recall of Kynkaanniemi et al. 2019):

- **precision** >= ``precision_min``: the share of generated images inside the manifold of the
  real training images (are they realistic?);
- **recall** >= ``recall_min``: the share of real held-out images inside the manifold of the
  generated images (do they cover the real variety, or collapse onto a few modes?).

Defaults, from the real-vs-real reference rows (held-out real images scored like a generator):
in experiment 01's cpu report the pooled reference rows reach precision 0.99 and 0.68 and recall
0.98 and 0.97 on its two tasks. ``precision_min = 0.5`` asks that at least half the generated images look
real (about three quarters of the lowest reference precision); ``recall_min = 0.25`` asks that
they cover at least a quarter of the real images (a quarter of the reference recall), which a
generator stuck on a few modes (recall near 0) fails. The floors are fixed before a run and
never lowered to let a model pass.

The C2ST AUC of :func:`medgan_core.metrics.realism.c2st_study` is reported beside, not gating by
default (``c2st_auc_max = None``): at our sample sizes a small CNN tells nearly every GAN's
images apart (AUC near 1) while they may still help, so it is context, not a floor.

:func:`floor_table` gives one row per generator (pass/fail and the reason with numbers);
:func:`gate` and :func:`gate_verdicts` replace the verdict of a generator below the floor by a
withheld sentence; ``results.log_quality_floor`` and ``results.log_withheld`` publish both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from medgan_core.metrics.fidelity import REFERENCE

__all__ = ["QualityFloor", "FLOOR_COLUMNS", "floor_table", "gate", "gate_verdicts"]

FLOOR_COLUMNS = ["model", "class", "precision", "recall", "c2st_auc", "c2st_auc_ci_low", "c2st_auc_ci_high",
                 "ref_precision", "ref_recall", "passed", "reason"]


@dataclass(frozen=True)
class QualityFloor:
    """The minimum a generator must reach before its utility verdict is spoken.

    Args:
        precision_min: lowest encoder-space precision, in [0, 1] (default 0.5, see the module docstring).
        recall_min: lowest encoder-space recall, in [0, 1] (default 0.25).
        c2st_auc_max: highest C2ST AUC, in [0.5, 1], or ``None`` to report it without gating (default).
    """

    precision_min: float = 0.5
    recall_min: float = 0.25
    c2st_auc_max: float | None = None

    def __post_init__(self) -> None:
        for name in ("precision_min", "recall_min"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"QualityFloor: {name} must be a number in [0, 1], got {value!r}.")
        auc = self.c2st_auc_max
        if auc is not None and (not isinstance(auc, (int, float)) or not 0.5 <= auc <= 1.0):
            raise ValueError(f"QualityFloor: c2st_auc_max must be in [0.5, 1] (0.5 = indistinguishable) or None "
                             f"to report the AUC without gating, got {auc!r}.")


def _num(value: Any) -> float:
    """A float, NaN for missing values."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: float, bound: float) -> tuple[str, str]:
    """Both numbers with 2 decimals, or more when 2 would print a failing value equal to its bound."""
    d = 2
    while d < 6 and value != bound and f"{value:.{d}f}" == f"{bound:.{d}f}":
        d += 1
    return f"{value:.{d}f}", f"{bound:.{d}f}"


def _checks(precision: float, recall: float, auc: float, floor: QualityFloor) -> tuple[bool, str]:
    """``(passed, reason)``: every gating comparison with its numbers, failing ones first."""
    failed, met = [], []
    for name, value, bound in (("precision", precision, floor.precision_min), ("recall", recall, floor.recall_min)):
        if math.isnan(value):
            failed.append(f"{name} not measured")
        elif value >= bound:
            met.append(f"{name} {' >= '.join(_fmt(value, bound))}")
        else:
            failed.append(f"{name} {' < '.join(_fmt(value, bound))}")
    if floor.c2st_auc_max is not None:
        if math.isnan(auc):
            failed.append("C2ST AUC not measured")
        elif auc <= floor.c2st_auc_max:
            met.append(f"C2ST AUC {' <= '.join(_fmt(auc, floor.c2st_auc_max))}")
        else:
            failed.append(f"C2ST AUC {' > '.join(_fmt(auc, floor.c2st_auc_max))}")
    return not failed, "; ".join(failed + met)


def floor_table(fidelity_df: pd.DataFrame, floor: QualityFloor | None = None, c2st_df: pd.DataFrame | None = None,
                class_name: str = "all") -> pd.DataFrame:
    """One row per generator: its precision, recall and C2ST AUC, the reference's, and pass/fail.

    Args:
        fidelity_df: the fidelity table (``model, class, precision, recall, ...``) with the
            reference rows (``model`` = :data:`medgan_core.metrics.fidelity.REFERENCE`).
        floor: the floor; default ``QualityFloor()``.
        c2st_df: the C2ST table of :func:`medgan_core.metrics.realism.c2st_study`
            (``model, class, auc, auc_ci_low, auc_ci_high``), or ``None`` (NaN AUC columns).
        class_name: the class the floor is judged on (default the pooled ``"all"`` rows).

    Returns:
        Frame with :data:`FLOOR_COLUMNS`, generators in the fidelity table's order; ``reason``
        lists every gating comparison with its numbers, failing ones first (e.g.
        ``"recall 0.00 < 0.25; precision 0.52 >= 0.50"``). A NaN precision or recall fails.
    """
    floor = floor or QualityFloor()
    if not isinstance(floor, QualityFloor):
        raise ValueError(f"floor must be a QualityFloor, got {type(floor).__name__}.")
    missing = [c for c in ("model", "class", "precision", "recall") if c not in fidelity_df.columns]
    if missing:
        raise ValueError(f"fidelity_df lacks the columns {missing}; pass the frame returned by fidelity_study.")
    rows_cls = fidelity_df[fidelity_df["class"].astype(str) == str(class_name)]
    if rows_cls.empty:
        raise ValueError(f"fidelity_df has no rows of class {class_name!r}; its classes are "
                         f"{sorted(fidelity_df['class'].astype(str).unique())}.")
    ref = rows_cls[rows_cls["model"] == REFERENCE]
    ref_p, ref_r = (_num(ref["precision"].iloc[0]), _num(ref["recall"].iloc[0])) if len(ref) else (math.nan,) * 2
    aucs: dict[str, pd.Series] = {}
    if c2st_df is not None:
        missing = [c for c in ("model", "class", "auc", "auc_ci_low", "auc_ci_high") if c not in c2st_df.columns]
        if missing:
            raise ValueError(f"c2st_df lacks the columns {missing}; pass the frame returned by c2st_study.")
        part = c2st_df[c2st_df["class"].astype(str) == str(class_name)]
        aucs = {str(r["model"]): r for _, r in part.iterrows()}
    rows = []
    for _, r in rows_cls[rows_cls["model"] != REFERENCE].iterrows():
        model = str(r["model"])
        c = aucs.get(model)
        auc, low, high = (math.nan,) * 3 if c is None else (_num(c["auc"]), _num(c["auc_ci_low"]),
                                                            _num(c["auc_ci_high"]))
        passed, reason = _checks(_num(r["precision"]), _num(r["recall"]), auc, floor)
        rows.append({"model": model, "class": str(class_name), "precision": _num(r["precision"]),
                     "recall": _num(r["recall"]), "c2st_auc": auc, "c2st_auc_ci_low": low, "c2st_auc_ci_high": high,
                     "ref_precision": ref_p, "ref_recall": ref_r, "passed": passed, "reason": reason})
    return pd.DataFrame(rows, columns=FLOOR_COLUMNS)


def gate(verdict_text: str, model_label: str, floor_row: Mapping[str, Any] | pd.Series) -> str:
    """The verdict unchanged when the generator passed the floor, else the withheld sentence.

    Args:
        verdict_text: the utility verdict computed for this generator.
        model_label: the generator's name as the report writes it (e.g. ``"BAGAN-GP"``).
        floor_row: its row of :func:`floor_table` (``passed`` and ``reason``).

    Returns:
        ``verdict_text``, or ``"Withheld: <label> is below the quality floor (<reason>); its
        utility verdict would speak for a generator that has not learnt."``
    """
    for key in ("passed", "reason"):
        if key not in floor_row:
            raise ValueError(f"floor_row lacks {key!r}; pass a row of floor_table(...).")
    if bool(floor_row["passed"]):
        return verdict_text
    return (f"Withheld: {model_label} is below the quality floor ({floor_row['reason']}); "
            "its utility verdict would speak for a generator that has not learnt.")


def gate_verdicts(verdicts: Mapping[str, str], table: pd.DataFrame,
                  labels: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Gate the verdicts of several generators at once.

    Args:
        verdicts: ``{model: verdict sentence}``, ``model`` as in ``table["model"]``.
        table: the frame of :func:`floor_table`.
        labels: ``{model: label}`` for the sentences (default the model names).

    Returns:
        ``(gated, withheld)``: ``{model: verdict or withheld sentence}`` in the order of
        ``verdicts``, and the withheld sentences alone (for ``results.log_withheld``).
    """
    by_model = {str(r["model"]): r for _, r in table.iterrows()}
    unknown = [m for m in verdicts if str(m) not in by_model]
    if unknown:
        raise ValueError(f"no floor row for {unknown}; the floor table has {sorted(by_model)}. "
                         "Compute the fidelity table for every generator that gets a verdict.")
    labels = labels or {}
    gated = {m: gate(v, labels.get(m, str(m)), by_model[str(m)]) for m, v in verdicts.items()}
    withheld = [gated[m] for m in verdicts if not bool(by_model[str(m)]["passed"])]
    return gated, withheld
