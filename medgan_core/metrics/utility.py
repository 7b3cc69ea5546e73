"""Classifier utility of synthetic images: do GAN images help a classifier trained on real data?

The same small classifier is trained under several *arms* (training sets or recipes), each with
several seeds, selected on the real validation split (early stopping on balanced accuracy) and
scored once on the real test split:

| arm                     | training data and recipe                                        |
|-------------------------|-----------------------------------------------------------------|
| ``real``                | the real training split, plain cross-entropy                    |
| ``real+class_weights``  | cross-entropy weighted by ``w_c = N / (K n_c)``                 |
| ``real+oversample``     | each epoch a random oversample, every class topped up to ``n_max`` |
| ``real+classic_aug``    | flips, 90-degree rotations, small shifts, brightness/contrast jitter |
| ``real+gan``            | real + synthetic images from a generator (default: classes topped up to ``n_max``) |
| ``real+gan+classic_aug``| the same with classic augmentation                              |
| ``synthetic_only``      | synthetic images only ("train on synthetic, test on real")      |

With several generators (``sampler={"bagan": ..., "cwgan": ...}``) each gets its own GAN arms,
named ``real+gan[bagan]`` and so on. Synthetic images are drawn once per seed and generator and
reused by every arm. Arms with the same seed start from the same initial weights and see the
same shuffling generator, so seeds pair the arms.

**Learning-rate reduction.** ``run_utility_study(..., reduce_lr_patience=3)`` makes every run of
the study (the settings grid included) multiply its learning rate by ``reduce_lr_factor`` after
that many epochs without a rise of the validation balanced accuracy (Keras' ``ReduceLROnPlateau``,
see :func:`~medgan_core.models.classifier.fit_classifier`); ``None`` keeps it constant.

**Classifier settings** (width, learning rate, epochs, patience) are chosen once per task on the
validation split: :func:`select_classifier_settings` trains the ``real`` arm's recipe once per
point of a small grid (:data:`~medgan_core.models.classifier.DEFAULT_GRID`, 5 points) and keeps
the best validation balanced accuracy; every arm and seed then reuses those settings
(``run_utility_study(..., grid=DEFAULT_GRID)``; the choice is ``UtilityResult.settings`` and the
grid's scores ``UtilityResult.settings_table``).

Reported per arm and seed: balanced accuracy, macro one-vs-rest ROC AUC, the recall of the
smallest training class, per-class F1, accuracy and, for binary tasks, the sensitivity of the
positive class at 90% and at 80% specificity (``sens_at_spec90``, ``sens_at_spec80``). The
summary gives each arm's mean over seeds with a 95% interval that covers both
seed variation and test-set sampling: seeds and test images are resampled together
(``stats.seed_and_test_interval``, on the stored test probabilities; clipped to [0, 1], the
range of every metric here). :func:`summarise` on a bare table falls back to the t-interval
over seeds.

**Degenerate runs** are flagged in the per-run table (column ``degenerate``: the reason, empty
when the run is fine) and counted in the summary (``n_degenerate``): a run that predicts one
class for every test image, or whose best validation balanced accuracy is at chance,
``<= 1/K + chance_tol`` (:data:`CHANCE_TOL` = 0.02 by default: a classifier that beats chance
by less than two points of balanced accuracy has not learnt the task). They are left out of the
verdict (the arm choice and the paired test), and the verdict sentence says which and why; when
the ``real`` arm itself is degenerate in more than half of its seeds the baseline cannot see an
effect and the verdict is withheld (its numbers are still given).

The best arm that adds GAN images to real ones is compared with the best arm without GAN images
in a paired test over seeds (paired t-test and Wilcoxon signed-rank); "best" is chosen by mean
*validation* balanced accuracy, never by a test score (model selection uses the validation split
only), and the verdict sentence is generated from that comparison:

    d_s = m(gan arm, seed s) - m(best non-GAN arm, seed s),
    CI = mean(d) +- t_{0.975, S-1} sd(d) / sqrt(S);
    "helped" if the CI is above 0 (t-test p < 0.05), "hurt" if below 0, else "did not help".

Every interval and test comes from :mod:`medgan_core.metrics.stats` (``seed_and_test_interval``,
``t_interval``, ``paired_test``). :func:`induced_imbalance` is the BAGAN paper's protocol on top of the harness:
thin out one class, retrain the generators, rerun the arms. :func:`pool_folds` pools the studies of
patient-grouped cross-validation folds into one (every image tested once), and ``size=None`` runs
the harness on frozen feature maps instead of images (experiment 03).
"""

from __future__ import annotations

import inspect
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score, roc_auc_score, roc_curve
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from tqdm.auto import tqdm

from medgan_core.data.augment import ClassicAug
from medgan_core.data.imbalance import cap_ratio, imbalance_ratio, proportional_cap, subsample_class
from medgan_core.metrics.stats import format_ci, paired_test, t_interval

try:  # the joint seed + test-case bootstrap (STUDY.md section 5); older stats modules lack it
    from medgan_core.metrics.stats import seed_and_test_interval
except ImportError:  # pragma: no cover - then the summary falls back to the t-interval over seeds
    seed_and_test_interval = None
from medgan_core.models.classifier import (
    DEFAULT_GRID, ClassifierSettings, _check_reduce_lr, fit_classifier, images_to_tensor, predict_proba,
)
from medgan_core.train.seeding import seed_everything

__all__ = [
    "ALL_ARMS", "NON_GAN_ARMS", "GAN_ARMS", "FEATURE_ARMS", "pool_folds", "PairedTest", "UtilityResult",
    "run_utility_study", "classification_metrics", "summarise", "paired_comparison", "select_arms",
    "verdict_sentence", "induced_imbalance", "select_classifier_settings", "degenerate_reason",
    "ClassifierSettings", "DEFAULT_GRID", "CHANCE_TOL", "metric_functions", "SENS_AT_SPEC",
]

ALL_ARMS: tuple[str, ...] = (
    "real", "real+class_weights", "real+oversample", "real+classic_aug",
    "real+gan", "real+gan+classic_aug", "synthetic_only",
)
NON_GAN_ARMS: tuple[str, ...] = ALL_ARMS[:4]
GAN_ARMS: tuple[str, ...] = ALL_ARMS[4:]
ADD_GAN_ARMS: tuple[str, ...] = ("real+gan", "real+gan+classic_aug")  # real images plus GAN images
# The arms over feature maps (size=None): classic augmentation acts on pixels, so it has no arm there.
FEATURE_ARMS: tuple[str, ...] = tuple(a for a in ALL_ARMS if not a.endswith("classic_aug"))

Sampler = Callable[[int, int, int], np.ndarray]  # (class index, n, seed) -> uint8 `(n, H, W[, C])`
Split = tuple[np.ndarray, np.ndarray]  # uint8 images `(N, H, W[, C])`, int labels `(N,)`
CHANCE_TOL = 0.02  # a run whose validation balanced accuracy is <= 1/K + CHANCE_TOL is "at chance"
CEILING_TOL = 0.02  # a baseline whose mean test score is >= 1 - CEILING_TOL has no room left to be improved
WITHHELD = "No verdict about GAN images"  # how verdict_sentence opens when it withholds the verdict
ONE_CLASS = "one class predicted for every test image"
# Binary tasks: the sensitivity of the positive class at a fixed specificity, metric name -> specificity.
SENS_AT_SPEC: dict[str, float] = {"sens_at_spec90": 0.90, "sens_at_spec80": 0.80}


@dataclass
class PairedTest:
    """Paired comparison over seeds of a GAN arm against a non-GAN arm.

    Args:
        metric: the compared metric (``"balanced_accuracy"``).
        gan_arm: the best arm that adds GAN images to real ones.
        base_arm: the best arm without GAN images.
        n_seeds: number of seeds both arms share.
        mean_diff: mean of ``gan - base`` over seeds.
        ci_low: lower end of its 95% t-interval.
        ci_high: upper end.
        t_pvalue: paired t-test p-value (two-sided).
        wilcoxon_pvalue: Wilcoxon signed-rank p-value (two-sided; >= 0.25 with 3 seeds).
        diffs: per-seed differences.
        left_out: degenerate runs of the two arms left out of the test, ``"real seed 3 (reason)"``.
        wilcoxon_note: why the Wilcoxon p is not quoted (too few pairs to reach 0.05), or ``""``.
    """

    metric: str
    gan_arm: str
    base_arm: str
    n_seeds: int
    mean_diff: float
    ci_low: float
    ci_high: float
    t_pvalue: float
    wilcoxon_pvalue: float
    diffs: list[float] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    wilcoxon_note: str = ""

    @property
    def significant(self) -> bool:
        """Whether the 95% CI excludes 0 and the t-test p-value is below 0.05."""
        return bool(self.t_pvalue < 0.05 and (self.ci_low > 0 or self.ci_high < 0))

    @property
    def outcome(self) -> str:
        """``"helped"``, ``"hurt"`` or ``"did not help"``, from the CI and the p-value."""
        if self.significant:
            return "helped" if self.mean_diff > 0 else "hurt"
        return "did not help"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for ``metrics.json``."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"outcome": self.outcome}


@dataclass
class UtilityResult:
    """Outcome of :func:`run_utility_study`.

    Args:
        table: one row per arm x seed: ``arm, base_arm, gan, seed``, the metrics, and
            ``val_balanced_accuracy, best_epoch, epochs_run, n_train, seconds, degenerate`` (the
            reason a run is degenerate, ``""`` when it is not).
        summary: one row per arm x metric: ``arm, metric, mean, ci_low, ci_high, std, n_seeds,
            n_degenerate`` (means over every run, degenerate ones included).
        paired_test: best GAN arm vs best non-GAN arm (``None`` when either is missing).
        verdict: the generated verdict sentence.
        class_names: class names, in label order.
        minority_class: index of the smallest class in the training split.
        n_synthetic: synthetic images per class added in the ``real+gan`` arms, and used in ``synthetic_only``.
        metrics: names of the metric columns.
        train_counts: real training images per class actually used (after any cap).
        notes: plain-language notes for the report (classes capped, ...).
        settings: the classifier settings every arm and seed used (``width, lr, epochs, patience``)
            and ``"source"``: ``"grid"`` (chosen on validation), ``"given"`` or ``"defaults"``.
        settings_table: the grid's validation scores (one row per point, ``chosen`` marks the
            winner; from :func:`select_classifier_settings`), or ``None`` without a grid.
        test_proba: per arm, the test probabilities of every seed `(S, N_test, K)` (seeds in
            table order), for intervals that resample test cases.
        y_test: the test labels `(N_test,)`.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    paired_test: PairedTest | None
    verdict: str
    class_names: list[str]
    minority_class: int
    n_synthetic: dict[str, dict[str, int]]
    metrics: list[str]
    train_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    settings_table: pd.DataFrame | None = None
    test_proba: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    y_test: np.ndarray | None = field(default=None, repr=False)

    @property
    def withheld(self) -> bool:
        """Whether the verdict about GAN images was withheld (baseline degenerate or at the ceiling, or every run
        of the compared arms degenerate): then no claim about GAN images may rest on :attr:`paired_test`."""
        return self.verdict.startswith(WITHHELD)

    def arm_tests(self, base_arm: str | None = None, metric: str = "balanced_accuracy") -> pd.DataFrame:
        """Every arm with GAN images against one non-GAN arm, each in its own paired test over seeds.

        The verdict rests on :attr:`paired_test` alone (the best arms, chosen on validation); these
        tests show where each generator's arms stand. They are many tests: read their p-values as a
        description, not as further verdicts.

        Args:
            base_arm: the non-GAN arm (default: the one :attr:`paired_test` chose).
            metric: the metric column.

        Returns:
            One row per GAN arm (``real+gan[...]``, ``real+gan+classic_aug[...]``, ``synthetic_only[...]``):
            ``base_arm, n_seeds, mean_diff, ci_low, ci_high, t_pvalue, wilcoxon_pvalue, outcome``; empty
            without a base arm.
        """
        base = base_arm or (self.paired_test.base_arm if self.paired_test is not None else None)
        cols = ["base_arm", "n_seeds", "mean_diff", "ci_low", "ci_high", "t_pvalue", "wilcoxon_pvalue", "outcome"]
        if base is None:
            return pd.DataFrame(columns=cols).rename_axis("arm")
        arms = [a for a in dict.fromkeys(self.table.arm) if str(a).startswith(GAN_ARMS)]
        rows = {}
        for arm in arms:
            t = paired_comparison(self.table, arm, base, metric)
            rows[arm] = {"base_arm": base, "n_seeds": t.n_seeds, "mean_diff": t.mean_diff, "ci_low": t.ci_low,
                         "ci_high": t.ci_high, "t_pvalue": t.t_pvalue, "wilcoxon_pvalue": t.wilcoxon_pvalue,
                         "outcome": t.outcome}
        return pd.DataFrame.from_dict(rows, orient="index", columns=cols).rename_axis("arm")

    def summary_table(self, metrics: Sequence[str] | None = None, digits: int = 3) -> pd.DataFrame:
        """Wide table for a report: one row per arm, ``"mean (low to high)"`` per metric.

        A missing or zero-width interval reads ``"mean (n/a)"`` (:func:`~medgan_core.metrics.stats.format_ci`).
        When any run is degenerate a last column ``degenerate runs`` reads ``"2 of 5"`` per arm.

        Args:
            metrics: the metric columns to show (default all).
            digits: decimals.
        """
        metrics = list(metrics or self.metrics)
        s = self.summary[self.summary.metric.isin(metrics)]
        cell = s.apply(lambda r: format_ci(r["mean"], r.ci_low, r.ci_high, digits), axis=1)
        wide = s.assign(cell=cell).pivot(index="arm", columns="metric", values="cell")
        wide = wide.reindex(index=list(dict.fromkeys(self.summary.arm)), columns=metrics)
        if "n_degenerate" in self.summary and self.summary.n_degenerate.gt(0).any():
            first = self.summary.groupby("arm", sort=False).first()
            wide["degenerate runs"] = [f"{int(first.n_degenerate[a])} of {int(first.n_runs[a])}" for a in wide.index]
        return wide

    def as_dict(self) -> dict[str, Any]:
        """Nested plain dict (per-arm means and CIs, paired test, verdict) for ``metrics.json``."""
        arms = {
            arm: {r.metric: {"mean": r["mean"], "ci": [r.ci_low, r.ci_high]} for _, r in grp.iterrows()}
            for arm, grp in self.summary.groupby("arm", sort=False)
        }
        return {
            "arms": arms,
            "paired_test": self.paired_test.as_dict() if self.paired_test else None,
            "arm_tests": self.arm_tests().reset_index().to_dict("records"),
            "verdict": self.verdict,
            "withheld": self.withheld,
            "n_synthetic": self.n_synthetic,
            "train_counts": self.train_counts,
            "notes": self.notes,
            "n_seeds": int(self.table.seed.nunique()),
            "settings": self.settings,
            "settings_grid": None if self.settings_table is None else self.settings_table.to_dict("records"),
            "degenerate_runs": (self.table.loc[self.table.degenerate != "", ["arm", "seed", "degenerate"]]
                                .to_dict("records") if "degenerate" in self.table else []),
        }


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str], minority_class: int, positive_class: int = 1
) -> dict[str, float]:
    """Test metrics of one trained classifier.

    Args:
        y_true: true labels `(n,)` in ``0..K-1``.
        proba: predicted probabilities `(n, K)`.
        class_names: the K class names (for the ``f1[<name>]`` keys).
        minority_class: index of the smallest training class (its recall is ``minority_recall``).
        positive_class: for binary tasks, the class whose sensitivity is ``sens_at_spec90`` and
            ``sens_at_spec80`` (e.g. 0 when melanoma is class 0).

    Returns:
        ``balanced_accuracy``, ``macro_auc`` (NaN if a class is absent from ``y_true``),
        ``minority_recall``, ``sens_at_spec90`` and ``sens_at_spec80`` (binary only: the largest
        sensitivity of ``positive_class`` at a threshold whose specificity is at least 90% or
        80%; NaN when ``y_true`` lacks either class), ``f1[<name>]`` per class and
        ``accuracy`` (the share of test images right, as MedMNIST reports it).
    """
    k = len(class_names)
    if proba.shape != (len(y_true), k):
        raise ValueError(f"proba has shape {proba.shape}, expected ({len(y_true)}, {k}).")
    labels = list(range(k))
    y_pred = proba.argmax(1)
    out = {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))}
    try:
        if k == 2:
            out["macro_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
        else:
            out["macro_auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    except ValueError:  # a class absent from the test labels
        out["macro_auc"] = float("nan")
    out["minority_recall"] = float(recall_score(y_true, y_pred, labels=[minority_class], average=None, zero_division=0)[0])
    if k == 2:
        pos = y_true == positive_class
        # every threshold kept: sklearn's default drop_intermediate would drop ROC points on a straight segment
        fpr, tpr = (roc_curve(pos, proba[:, positive_class], drop_intermediate=False)[:2]
                    if pos.any() and not pos.all() else (None, None))
        for name, spec in SENS_AT_SPEC.items():
            out[name] = float("nan") if fpr is None else _max_tpr_at_spec(fpr, tpr, spec)
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out.update({f"f1[{name}]": float(v) for name, v in zip(class_names, f1)})
    out["accuracy"] = float(np.mean(y_pred == y_true))
    return out


def degenerate_reason(test_pred: np.ndarray, val_balanced_accuracy: float, num_classes: int,
                      chance_tol: float = CHANCE_TOL) -> str:
    """Why a trained classifier is degenerate, or ``""`` when it is not.

    Two signs, either is enough: it predicts one class for every test image (with more than one
    test image), or its best validation balanced accuracy is at chance, ``<= 1/K + chance_tol``.

    Args:
        test_pred: predicted test classes `(n,)`.
        val_balanced_accuracy: the run's best validation balanced accuracy (NaN: not checked).
        num_classes: K.
        chance_tol: how far above chance ``1/K`` still counts as chance (default :data:`CHANCE_TOL`).

    Returns:
        The reasons joined by ``"; "`` (e.g. ``"one class predicted for every test image"``), or ``""``.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
    if not chance_tol >= 0:
        raise ValueError(f"chance_tol must be >= 0, got {chance_tol}.")
    test_pred = np.asarray(test_pred).reshape(-1)
    reasons = []
    if len(test_pred) > 1 and len(np.unique(test_pred)) == 1:
        reasons.append(ONE_CLASS)
    chance = 1.0 / num_classes
    if np.isfinite(val_balanced_accuracy) and val_balanced_accuracy <= chance + chance_tol + 1e-12:
        reasons.append(f"validation balanced accuracy {val_balanced_accuracy:.3f} at chance "
                       f"(<= 1/{num_classes} + {chance_tol:g})")
    return "; ".join(reasons)


def _auc(pos: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean ``pos`` (average ranks for ties); NaN without both sides."""
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _max_tpr_at_spec(fpr: np.ndarray, tpr: np.ndarray, specificity: float) -> float:
    """The largest true-positive rate of the ROC points with false-positive rate <= ``1 - specificity``.

    Args:
        fpr: false-positive rates of the thresholds, `(T,)`, starting at 0.
        tpr: true-positive rates, `(T,)`.
        specificity: the least specificity allowed, in (0, 1) (0.9 for ``sens_at_spec90``).
    """
    return float(tpr[fpr <= 1.0 - specificity + 1e-12].max())


def _sens_at_spec(pos: np.ndarray, score: np.ndarray, specificity: float) -> float:
    """Largest sensitivity at a threshold with specificity >= ``specificity`` (as ``roc_curve`` gives it).

    Args:
        pos: `(n,)` bool, the positive cases.
        score: `(n,)` the positive class's score (higher: more likely positive).
        specificity: the least specificity allowed, in (0, 1).

    Returns:
        The sensitivity, NaN without both positive and negative cases.
    """
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    s, p = score[order], pos[order]
    last = np.r_[s[1:] != s[:-1], True]  # last position of each run of tied scores: one threshold each
    tpr = np.r_[0.0, np.cumsum(p)[last] / n_pos]
    fpr = np.r_[0.0, np.cumsum(~p)[last] / n_neg]
    return _max_tpr_at_spec(fpr, tpr, specificity)


def metric_functions(class_names: Sequence[str], minority_class: int,
                     positive_class: int = 1) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The metrics of :func:`classification_metrics` as fast numpy functions ``f(y_true, proba) -> float``.

    They give the same numbers as :func:`classification_metrics` on a full test split, and are
    what the seed + test-case bootstrap recomputes on every resample; a metric that needs a class
    the resample lacks (its recall, an AUC) is NaN there instead of 0 (NaN resamples are dropped).

    Args:
        class_names: the K class names.
        minority_class: index of the smallest training class.
        positive_class: for binary tasks, the class of ``sens_at_spec90`` and ``sens_at_spec80``.
    """
    k = len(class_names)

    def confusion(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
        return np.bincount(y * k + proba.argmax(1), minlength=k * k).reshape(k, k)  # rows: true class

    def balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
        c = confusion(y, proba)
        present = c.sum(1) > 0
        return float(np.mean(np.diag(c)[present] / c.sum(1)[present]))

    def minority_recall(y: np.ndarray, proba: np.ndarray) -> float:
        c = confusion(y, proba)
        n = c[minority_class].sum()
        return float(c[minority_class, minority_class] / n) if n else float("nan")

    def macro_auc(y: np.ndarray, proba: np.ndarray) -> float:
        if k == 2:
            return _auc(y == 1, proba[:, 1])
        return float(np.mean([_auc(y == c, proba[:, c]) for c in range(k)]))  # NaN if a class is absent

    def f1_of(c: int) -> Callable[[np.ndarray, np.ndarray], float]:
        def f1(y: np.ndarray, proba: np.ndarray) -> float:
            m = confusion(y, proba)
            den = m[c].sum() + m[:, c].sum()  # 2 tp + fn + fp
            return float(2 * m[c, c] / den) if den else 0.0
        return f1

    def sens_at(spec: float) -> Callable[[np.ndarray, np.ndarray], float]:
        def sens(y: np.ndarray, proba: np.ndarray) -> float:
            return _sens_at_spec(y == positive_class, proba[:, positive_class], spec)
        return sens

    fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "balanced_accuracy": balanced_accuracy, "macro_auc": macro_auc, "minority_recall": minority_recall}
    if k == 2:
        fns.update({name: sens_at(spec) for name, spec in SENS_AT_SPEC.items()})
    fns.update({f"f1[{name}]": f1_of(c) for c, name in enumerate(class_names)})
    fns["accuracy"] = lambda y, proba: float(np.mean(proba.argmax(1) == y))
    return fns


def _arm_interval(values: np.ndarray, proba: np.ndarray | None = None, y_test: np.ndarray | None = None,
                  fn: Callable[[np.ndarray, np.ndarray], float] | None = None, n_boot: int = 1000,
                  seed: int = 0, groups: np.ndarray | None = None) -> tuple[float, float, float]:
    """Mean and 95% interval of one arm's metric: THE ONE CALL SITE of the summary's interval.

    With the arm's test probabilities `(S, N, K)`, the test labels and the metric's function:
    :func:`medgan_core.metrics.stats.seed_and_test_interval` (seeds and test cases, or whole
    ``groups`` of test cases such as smears, resampled together, STUDY.md section 5). Without
    them (or with an older stats module): the t-interval over seeds of ``values``.
    """
    if proba is not None and y_test is not None and fn is not None and seed_and_test_interval is not None:
        mean, low, high = seed_and_test_interval(proba, y_test, fn, groups=groups, n_boot=n_boot, seed=seed)
        return mean, (max(low, 0.0) if np.isfinite(low) else low), (min(high, 1.0) if np.isfinite(high) else high)
    return t_interval(values, clip=(0.0, 1.0))  # every metric here lives in [0, 1]


def summarise(table: pd.DataFrame, metrics: Sequence[str], test_proba: Mapping[str, np.ndarray] | None = None,
              y_test: np.ndarray | None = None,
              metric_fns: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
              n_boot: int = 1000, seed: int = 0, test_groups: np.ndarray | None = None) -> pd.DataFrame:
    """Per arm and metric: mean and 95% interval, and how many runs were degenerate.

    The interval covers seeds and test-set sampling (``seed_and_test_interval``) when the test
    probabilities, the test labels and the metric functions are given (as
    :func:`run_utility_study` does); otherwise it is the t-interval over seeds.

    Args:
        table: the per-run table (columns ``arm``, ``seed``, the metrics and optionally
            ``degenerate``: a non-empty string marks a degenerate run).
        metrics: the metric columns.
        test_proba: per arm, test probabilities `(S, N, K)` in the table's seed order.
        y_test: test labels `(N,)`.
        metric_fns: ``{metric: f(y_true, proba)}`` (:func:`metric_functions`).
        n_boot: bootstrap resamples per arm and metric.
        seed: seed of the bootstrap.
        test_groups: `(N,)` the unit of each test case (smear, patient): whole units are resampled.

    Returns:
        Long frame ``arm, metric, mean, ci_low, ci_high, std, n_seeds, n_runs, n_degenerate``
        (arms in table order; ``n_seeds`` counts the runs with a finite value of the metric;
        ``std`` is over seeds).
    """
    rows = []
    for arm, grp in table.groupby("arm", sort=False):
        n_deg = int(grp["degenerate"].astype(bool).sum()) if "degenerate" in grp else 0
        proba = None if test_proba is None else test_proba.get(arm)
        for metric in metrics:
            values = grp[metric].dropna().to_numpy(dtype=float)
            fn = None if metric_fns is None else metric_fns.get(metric)
            mean, low, high = _arm_interval(values, proba, y_test, fn, n_boot, seed, test_groups)
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
            rows.append({"arm": arm, "metric": metric, "mean": mean, "ci_low": low, "ci_high": high,
                         "std": sd, "n_seeds": len(values), "n_runs": len(grp), "n_degenerate": n_deg})
    return pd.DataFrame(rows)


def _is_degenerate(table: pd.DataFrame) -> pd.Series:
    """Boolean per row: a non-empty ``degenerate`` reason (all False without the column)."""
    if "degenerate" not in table:
        return pd.Series(False, index=table.index)
    return table["degenerate"].fillna("").astype(str).ne("")


def paired_comparison(table: pd.DataFrame, gan_arm: str, base_arm: str, metric: str = "balanced_accuracy") -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test of ``gan_arm - base_arm`` over shared seeds.

    The numbers come from :func:`medgan_core.metrics.stats.paired_test` (seeds where either arm's
    metric is NaN are left out, and so are seeds where either arm's run is degenerate: they are
    listed in :attr:`PairedTest.left_out`).

    Args:
        table: the per-run table.
        gan_arm: the arm with GAN images.
        base_arm: the arm it is compared with.
        metric: the metric column.
    """
    bad = _is_degenerate(table)
    left_out = [f"{r.arm} seed {r.seed} ({r.degenerate})" for r in table[bad & table.arm.isin([base_arm, gan_arm])]
                .sort_values(["seed"], kind="stable").itertuples()]
    ok = table[~bad]
    a = ok[ok.arm == gan_arm].set_index("seed")[metric]
    b = ok[ok.arm == base_arm].set_index("seed")[metric]
    seeds = a.index.intersection(b.index)
    t = paired_test(a.loc[seeds].to_numpy(dtype=float), b.loc[seeds].to_numpy(dtype=float), bounds=(-1.0, 1.0))
    return PairedTest(metric, gan_arm, base_arm, t["n"], t["mean_diff"], t["ci_low"], t["ci_high"], t["t_pvalue"],
                      t["wilcoxon_pvalue"], t["diffs"], left_out, t.get("wilcoxon_note", ""))


def select_arms(table: pd.DataFrame, gan_arms: Sequence[str], base_arms: Sequence[str],
                by: str = "val_balanced_accuracy") -> tuple[str, str]:
    """The best GAN arm and the best non-GAN arm, chosen on the validation split.

    Args:
        table: the per-run table (one row per arm and seed).
        gan_arms: arms that add GAN images to real ones.
        base_arms: arms without GAN images.
        by: the column to rank arms by (its mean over seeds); a validation score.

    Degenerate runs (column ``degenerate``) are left out of the means; an arm whose every run is
    degenerate cannot be chosen (a ``ValueError`` when no arm of one side is left).
    """
    means = table[~_is_degenerate(table)].groupby("arm")[by].mean()
    gan_ok, base_ok = [a for a in gan_arms if a in means.index], [a for a in base_arms if a in means.index]
    if not gan_ok or not base_ok:
        raise ValueError(f"Every run of the {'GAN' if not gan_ok else 'non-GAN'} arms is degenerate "
                         "(or missing): no arm of that side can be chosen.")
    return max(gan_ok, key=lambda a: means[a]), max(base_ok, key=lambda a: means[a])


def _verdict_test(table: pd.DataFrame, metric: str) -> PairedTest | None:
    """The verdict's paired test: the best arm adding GAN images against the best arm without, both chosen
    on validation among arms with a non-degenerate run (``None`` when either side has none)."""
    ok_arms = set(table.arm[~_is_degenerate(table)])  # arms with at least one non-degenerate run
    arms = table.drop_duplicates("arm")
    gan_arms = [a for a, b in zip(arms.arm, arms.base_arm) if b in ADD_GAN_ARMS and a in ok_arms]
    base_arms = [a for a, b in zip(arms.arm, arms.base_arm) if b in NON_GAN_ARMS and a in ok_arms]
    if not gan_arms or not base_arms:
        return None
    return paired_comparison(table, *select_arms(table, gan_arms, base_arms), metric)


def _signed(x: float) -> str:
    """``+0.031`` / ``-0.004``, and ``+0.000`` rather than ``-0.000`` for tiny negatives."""
    text = f"{x:+.3f}"
    return "+0.000" if text == "-0.000" else text


def _fmt_p(p: float) -> str:
    """``p = 0.09`` / ``p < 0.001``."""
    if not np.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _degenerate_counts(summary: pd.DataFrame | None) -> dict[str, tuple[int, int]]:
    """``{arm: (degenerate runs, runs)}`` from a summary with ``n_degenerate`` (arms with none left out)."""
    if summary is None or "n_degenerate" not in summary or summary.empty:
        return {}
    first = summary.groupby("arm", sort=False).first()
    runs = first["n_runs"] if "n_runs" in first else first["n_seeds"]
    return {a: (int(first.n_degenerate[a]), int(runs[a])) for a in first.index if first.n_degenerate[a] > 0}


def _arm_mean(summary: pd.DataFrame | None, arm: str, metric: str) -> float:
    """An arm's mean of a metric in the summary (NaN when absent)."""
    if summary is None or summary.empty or "metric" not in summary:
        return float("nan")
    row = summary[(summary.arm == arm) & (summary.metric == metric)]
    return float(row["mean"].iloc[0]) if len(row) else float("nan")


def verdict_sentence(test: PairedTest | None, summary: pd.DataFrame | None = None, baseline: str = "real") -> str:
    """The verdict, generated from a paired test (and the summary, for degenerate runs and the synthetic-only arm).

    Args:
        test: the paired comparison, or ``None`` when no GAN arm or no non-GAN arm was run (or
            every run of one side was degenerate).
        summary: the per-arm summary. With ``n_degenerate`` (from :func:`summarise`): when the
            ``baseline`` arm is degenerate in more than half of its runs the verdict is withheld
            (the baseline cannot see an effect), and arms degenerate in every run are named.
            With the compared non-GAN arm's mean: when it is at the ceiling (>= 1 - :data:`CEILING_TOL`)
            and the GAN arm did not significantly change it, "did not help" is withheld too: there
            was no room to help (a significant change is still reported).
            When it holds a ``synthetic_only`` arm a last sentence compares it with ``real``.
        baseline: the arm whose degeneracy withholds the verdict.

    Returns:
        One to three sentences; the outcome word ("helped", "did not help", "hurt") comes from
        :attr:`PairedTest.outcome`; runs left out as degenerate are named with their reason.
    """
    deg = _degenerate_counts(summary)
    whole = [a for a, (d, n) in deg.items() if d == n]
    why = "one class predicted for every test image, or validation balanced accuracy at chance"
    name = (test.metric if test is not None else "balanced_accuracy").replace("_", " ")
    gan_run = summary is not None and "arm" in summary and summary.arm.astype(str).str.startswith("real+gan").any()
    if baseline in deg and 2 * deg[baseline][0] > deg[baseline][1] and (test is not None or gan_run):
        d, n = deg[baseline]
        text = (f"{WITHHELD}: the baseline cannot see an effect, because the {baseline} arm was "
                f"degenerate in {d} of {n} seeds ({why}; see the degenerate column of the run table), "
                f"so a GAN arm has no working classifier to be compared with; fix the classifier settings "
                f"(choose them on validation, grid=...) before reading the arms.")
        if test is not None and test.n_seeds >= 1:
            text += (f" For the record: {test.gan_arm} minus {test.base_arm} in {name} was {_signed(test.mean_diff)} "
                     f"(95% CI {_signed(test.ci_low)} to {_signed(test.ci_high)}) over the {test.n_seeds} seed(s) "
                     "where neither run was degenerate.")
    elif test is None:
        dead = [a for a in whole if a.startswith(("real+gan", *NON_GAN_ARMS))]
        if dead and gan_run:
            text = (f"{WITHHELD}: every run of {', '.join(dead)} was degenerate ({why}), so no arm "
                    "adding GAN images could be compared with a non-GAN arm.")
        else:
            text = ("No arm adding GAN images to real ones was compared with a non-GAN arm, "
                    "so this study says nothing about GAN images.")
            if baseline in deg:
                text += f" The {baseline} arm was degenerate in {deg[baseline][0]} of {deg[baseline][1]} seeds ({why})."
    elif test.n_seeds == 0:
        text = (f"No seed has a non-degenerate run of both {test.gan_arm} and {test.base_arm}, "
                "so no paired test is possible.")
    elif test.n_seeds < 2:
        text = (f"With {test.n_seeds} seed no paired test is possible: {test.gan_arm} changed {name} by "
                f"{_signed(test.mean_diff)} versus the best non-GAN arm ({test.base_arm}).")
    elif not test.significant and _arm_mean(summary, test.base_arm, test.metric) >= 1 - CEILING_TOL:
        text = (f"{WITHHELD}: the best non-GAN arm ({test.base_arm}) is at the ceiling ({name} "
                f"{_arm_mean(summary, test.base_arm, test.metric):.3f} >= {1 - CEILING_TOL:.2f}), so a GAN arm had no room "
                f"to show that it helps. For the record: {test.gan_arm} changed {name} by {_signed(test.mean_diff)} "
                f"(95% CI {_signed(test.ci_low)} to {_signed(test.ci_high)}, paired t-test {_fmt_p(test.t_pvalue)}, "
                f"{test.n_seeds} seeds).")
    else:
        text = (
            f"Adding GAN images {test.outcome}: {test.gan_arm} changed {name} by {_signed(test.mean_diff)} "
            f"(95% CI {_signed(test.ci_low)} to {_signed(test.ci_high)}) versus the best non-GAN arm ({test.base_arm}, "
            f"arms chosen on validation); "
            f"the difference is {'significant' if test.significant else 'not significant'} "
            f"(paired t-test {_fmt_p(test.t_pvalue)}, Wilcoxon {_fmt_p(test.wilcoxon_pvalue)}, {test.n_seeds} seeds)."
        )
    if test is not None and test.left_out and not text.startswith(WITHHELD):
        text += f" Left out of the paired test as degenerate: {'; '.join(test.left_out)}."
    unchosen = [a for a in whole if test is None or a not in (test.gan_arm, test.base_arm)]
    if unchosen and test is not None and not text.startswith(WITHHELD):
        text += f" Degenerate in every seed, so never chosen: {', '.join(unchosen)}."
    if summary is not None and not summary.empty:
        s = summary[summary.metric == (test.metric if test is not None else "balanced_accuracy")].set_index("arm")["mean"]
        for arm in [a for a in s.index if a.startswith("synthetic_only")]:
            if "real" in s.index:
                text += (f" Training on synthetic images only ({arm}) reached {name} {s[arm]:.3f}, "
                         f"against {s['real']:.3f} with the real images (real).")
    return text


def _check_split(split: tuple[Any, np.ndarray], name: str, features: bool = False) -> tuple[Any, np.ndarray]:
    """Check a ``(inputs, labels)`` split: uint8 images `(N, H, W[, C])` (or, with ``features``, a float
    feature-map tensor `(N, C, H, W)`) and integer labels `(N,)`."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"{name} must be a tuple (images, labels), got {type(split).__name__}.")
    labels = np.asarray(split[1]).reshape(-1)
    if features:
        images = split[0]
        if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4:
            raise ValueError(f"{name}: with size=None the inputs must be float feature maps, a torch tensor "
                             f"(N, C, H, W); got {type(images).__name__} {tuple(getattr(images, 'shape', ()))}.")
    else:
        images = np.asarray(split[0])
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise ValueError(f"{name}: images must be uint8 (N, H, W) or (N, H, W, C) with C = 1 or 3, "
                             f"got {images.dtype} {images.shape} (feature maps: pass size=None).")
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{name}: {len(images)} images and {len(labels)} labels; need the same, non-zero count.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"{name}: labels must be integer class indices 0..K-1 (map class names first), got {labels.dtype}.")
    return images, labels.astype(np.int64)


def _as_inputs(x: Any, size: int | None, in_channels: int | None) -> torch.Tensor:
    """Classifier inputs: images resized to ``size`` (:func:`images_to_tensor`), or feature maps as given (``size=None``)."""
    if size is None:
        return torch.as_tensor(x).detach().float().cpu().contiguous()
    return images_to_tensor(x, size, in_channels)


def _expand_arms(arms: Sequence[str], gan_names: list[str] | None) -> list[tuple[str, str, str]]:
    """``(name, base_arm, gan)`` per arm; GAN arms get one entry per generator (``real+gan[bagan]``)."""
    unknown = [a for a in arms if a not in ALL_ARMS]
    if unknown:
        raise ValueError(f"Unknown utility arm(s) {unknown}; valid arms: {list(ALL_ARMS)}.")
    out = []
    for arm in dict.fromkeys(arms):
        if arm in GAN_ARMS:
            if gan_names is None:
                raise ValueError(f"Arm {arm!r} needs a sampler of synthetic images; pass sampler=... or "
                                 f"arms={list(NON_GAN_ARMS)}.")
            out += [(arm if name == "" else f"{arm}[{name}]", arm, name) for name in gan_names]
        else:
            out.append((arm, arm, ""))
    return out


def _synthetic_counts(policy: int | Mapping[int, int] | str, counts: np.ndarray) -> np.ndarray:
    """Synthetic images per class added to real ones, from the policy."""
    k = len(counts)
    if isinstance(policy, str):
        if policy != "balance":
            raise ValueError(f"n_synthetic_per_class must be an int, a dict {{class: n}} or 'balance', got {policy!r}.")
        return counts.max() - counts
    if isinstance(policy, Mapping):
        bad = [c for c in policy if not 0 <= int(c) < k]
        if bad:
            raise ValueError(f"n_synthetic_per_class has classes {bad} outside 0..{k - 1}.")
        return np.array([int(policy.get(c, 0)) for c in range(k)])
    if int(policy) < 0:
        raise ValueError(f"n_synthetic_per_class must be >= 0, got {policy}.")
    return np.full(k, int(policy))


def _takes_width(build: Callable[..., nn.Module]) -> bool:
    """Whether ``build`` accepts a ``width=`` keyword (or ``**kwargs``)."""
    try:
        params = inspect.signature(build).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: just try it
        return True
    return any(p.name == "width" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _build(build: Callable[..., nn.Module], settings: ClassifierSettings) -> nn.Module:
    """A fresh classifier of the settings' width (``build()`` when the width is ``None``)."""
    return build() if settings.width is None else build(width=int(settings.width))


def _check_builder(build: Callable[..., nn.Module], settings: Sequence[ClassifierSettings]) -> None:
    """Raise early when a grid sets widths the builder cannot take."""
    if any(st.width is not None for st in settings) and not _takes_width(build):
        raise ValueError("The classifier settings set a width, so build_classifier must accept width=..., e.g. "
                         "lambda width=16: build_classifier('small_cnn', 3, K, width=width, image_size=32); "
                         "or use settings with width=None.")


def _fit_grid(build: Callable[..., nn.Module], t_tr: torch.Tensor, l_tr: torch.Tensor, t_va: torch.Tensor,
              l_va: torch.Tensor, grid: Sequence[ClassifierSettings], seed: int, batch_size: int,
              device: str | torch.device, num_classes: int, chance_tol: float,
              progress: bool, reduce_lr_patience: int | None = None,
              reduce_lr_factor: float = 0.5) -> tuple[ClassifierSettings, pd.DataFrame]:
    """:func:`select_classifier_settings` on prepared tensors (every point with the same learning-rate reduction)."""
    rows = []
    for st in tqdm(grid, desc="settings grid", disable=not progress):
        t0 = time.perf_counter()
        seed_everything(seed)
        net = _build(build, st)
        fit = fit_classifier(net, t_tr, l_tr, t_va, l_va, num_epochs=int(st.epochs), batch_size=batch_size, lr=st.lr,
                             patience=st.patience, reduce_lr_patience=reduce_lr_patience,
                             reduce_lr_factor=reduce_lr_factor, seed=seed, device=device)
        val_pred = predict_proba(net, t_va, device=device).argmax(1)
        rows.append({**st.as_dict(), "val_balanced_accuracy": fit.best_val_balanced_accuracy,
                     "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run,
                     "degenerate": degenerate_reason(val_pred, fit.best_val_balanced_accuracy, num_classes,
                                                     chance_tol).replace("test image", "validation image"),
                     "seconds": time.perf_counter() - t0})
    table = pd.DataFrame(rows)
    best = int(np.nanargmax(table.val_balanced_accuracy.to_numpy(dtype=float))) if table.val_balanced_accuracy.notna().any() else 0
    table["chosen"] = np.arange(len(table)) == best  # ties: the earlier grid point
    return grid[best], table


def select_classifier_settings(
    build_classifier: Callable[..., nn.Module],
    train: Split,
    val: Split,
    grid: Sequence[ClassifierSettings | Mapping[str, Any]] = DEFAULT_GRID,
    seed: int = 0,
    *,
    batch_size: int = 64,
    size: int = 32,
    chance_tol: float = CHANCE_TOL,
    reduce_lr_patience: int | None = None,
    reduce_lr_factor: float = 0.5,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[ClassifierSettings, pd.DataFrame]:
    """Choose the classifier settings on the validation split: one ``real``-arm run per grid point.

    Each point trains the ``real`` arm's recipe (plain cross-entropy on the real training split,
    early stopping on validation balanced accuracy) with one seed; the point with the best
    validation balanced accuracy wins (ties: the earlier point, so list cheaper points first).
    The test split is never touched.

    Args:
        build_classifier: ``(width=...) -> nn.Module`` a fresh classifier of that width (e.g.
            ``lambda width=16: build_classifier("small_cnn", 1, K, width=width, image_size=32)``);
            a ``() -> nn.Module`` builder works when every point has ``width=None``.
        train: real training split ``(images, labels)``: uint8 `(N, H, W[, C])`, labels in ``0..K-1``.
        val: real validation split.
        grid: the points to try (:class:`ClassifierSettings` or dicts), e.g. :data:`DEFAULT_GRID`.
        seed: the seed of every point's initial weights and shuffling.
        batch_size: images per step.
        size: images are resized to ``size x size``.
        chance_tol: a point whose validation balanced accuracy is <= ``1/K + chance_tol`` is marked degenerate.
        reduce_lr_patience: learning-rate reduction of every point's run
            (:func:`~medgan_core.models.classifier.fit_classifier`); ``None``: a constant learning rate.
        reduce_lr_factor: the factor of each reduction, in (0, 1).
        device: where to train.
        progress: show a tqdm bar over the grid.

    Returns:
        ``(best settings, table)``: one row per point with ``width, lr, epochs, patience,
        val_balanced_accuracy, best_epoch, epochs_run, degenerate, seconds, chosen``.
    """
    x_tr, y_tr = _check_split(train, "train")
    x_va, y_va = _check_split(val, "val")
    _check_reduce_lr(reduce_lr_patience, reduce_lr_factor)
    points = [ClassifierSettings.coerce(dict(g) if isinstance(g, Mapping) else g) for g in grid]
    if not points:
        raise ValueError("grid is empty: give at least one ClassifierSettings (e.g. DEFAULT_GRID).")
    _check_builder(build_classifier, points)
    k = int(max(y_tr.max(), y_va.max())) + 1
    in_channels = 1 if x_tr.ndim == 3 else x_tr.shape[-1]
    t_tr, t_va = images_to_tensor(x_tr, size, in_channels), images_to_tensor(x_va, size, in_channels)
    return _fit_grid(build_classifier, t_tr, torch.as_tensor(y_tr), t_va, torch.as_tensor(y_va), points, seed,
                     batch_size, device, k, chance_tol, progress, reduce_lr_patience, reduce_lr_factor)


def run_utility_study(
    build_classifier: Callable[..., nn.Module],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    sampler: Sampler | Mapping[str, Sampler] | None = None,
    *,
    arms: Sequence[str] = ALL_ARMS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_synthetic_per_class: int | Mapping[int, int] | str = "balance",
    n_synthetic_only_per_class: int | None = None,
    class_names: Sequence[str] | None = None,
    max_train_per_class: int | None = None,
    max_train_total: int | None = None,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int | None = 5,
    reduce_lr_patience: int | None = None,
    reduce_lr_factor: float = 0.5,
    grid: Sequence[ClassifierSettings | Mapping[str, Any]] | None = None,
    settings: ClassifierSettings | Mapping[str, Any] | None = None,
    selection_seed: int | None = None,
    chance_tol: float = CHANCE_TOL,
    interval_boot: int = 1000,
    test_groups: Any = None,
    classic_aug: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    size: int | None = 32,
    positive_class: int = 1,
    metric: str = "balanced_accuracy",
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> UtilityResult:
    """Train the same classifier under every arm and seed; summarise, test and write the verdict.

    Args:
        build_classifier: returns a fresh classifier with the right input channels and ``K``
            outputs. With a ``grid`` (or ``settings``) that sets widths it must accept ``width=``:
            ``lambda width=16: build_classifier("small_cnn", 1, K, width=width, image_size=32)``;
            a plain ``() -> nn.Module`` works otherwise.
        train: real training split ``(images, labels)``: uint8 `(N, H, W[, C])`, labels in ``0..K-1``.
        val: real validation split (model selection only).
        test: real test split (scored once per run, with the best-validation weights).
        sampler: ``sampler(cls, n, seed) -> uint8 (n, H, W[, C])`` images of class ``cls``, or a
            dict ``{gan name: sampler}`` for several generators; ``None`` only without GAN arms.
        arms: the arms to run (names from :data:`ALL_ARMS`).
        seeds: one run per arm and seed (use >= 5 in the cpu profile).
        n_synthetic_per_class: synthetic images added per class in ``real+gan`` arms: ``"balance"``
            (top every class up to the largest class's count), an int for every class, or ``{cls: n}``.
        n_synthetic_only_per_class: images per class in ``synthetic_only`` (default: the real
            training set's size divided by K, a balanced set as large as the real one).
        class_names: the K class names (default ``"0"``, ``"1"``, ...), used in column labels.
        max_train_per_class: cap on the real training images of any class (a fixed random subset,
            the same for every arm and seed; reported in ``notes``), or ``None`` for no cap. This
            flattens the class ratio (a warning when it shrinks by more than half); prefer
            ``max_train_total``.
        max_train_total: cap on all real training images, every class shrunk in proportion
            (:func:`~medgan_core.data.imbalance.proportional_cap`, at least 10 per class; the class
            ratio before and after is in ``notes``), or ``None``.
        epochs: maximum epochs per run (without ``grid`` or ``settings``).
        batch_size: images per step.
        lr: Adam learning rate (without ``grid`` or ``settings``).
        patience: epochs without validation improvement before stopping (``None``: no early stop;
            without ``grid`` or ``settings``).
        reduce_lr_patience: every run of the study, the settings grid's included, multiplies its
            learning rate by ``reduce_lr_factor`` after this many epochs without a rise of the
            validation balanced accuracy (Keras' ``ReduceLROnPlateau``; a note says so); ``None``:
            a constant learning rate.
        reduce_lr_factor: the factor of each reduction, in (0, 1).
        grid: classifier settings to choose from on validation, once for the whole study, with
            :func:`select_classifier_settings` (e.g. :data:`DEFAULT_GRID`); the winner is used by
            every arm and seed. ``None``: no selection.
        settings: fixed classifier settings (e.g. chosen earlier for this task); not with ``grid``.
            Without both, ``epochs``, ``lr`` and ``patience`` are used with the builder's own width.
        selection_seed: the seed of the grid runs (default ``max(seeds) + 1``, a seed no arm uses,
            so the winning grid run is not itself one of the compared runs).
        chance_tol: a run whose validation balanced accuracy is ``<= 1/K + chance_tol`` is
            degenerate (default :data:`CHANCE_TOL` = 0.02); so is one that predicts one class
            for every test image.
        interval_boot: resamples of the summary's seed + test-case bootstrap.
        test_groups: `(len(test),)` the independent unit of each test image (the smear or patient it
            comes from); the intervals then resample whole units instead of images (``None``: images).
        classic_aug: augmentation ``(x, generator) -> x`` for the ``classic_aug`` arms (default :class:`ClassicAug`).
        size: images are resized to ``size x size``; ``None``: the splits hold *feature maps*, float
            tensors `(N, C, H, W)` used as given (a frozen extractor's, experiment 03), the samplers
            return such tensors, and the ``classic_aug`` arms are refused (they augment pixels).
        positive_class: binary tasks only: the class of ``sens_at_spec90`` and ``sens_at_spec80``.
        metric: the metric that ranks arms and is tested (default balanced accuracy).
        device: where to train.
        progress: show a tqdm bar over runs.

    Returns:
        A :class:`UtilityResult`.
    """
    feats = size is None  # feature maps instead of images (e.g. a frozen extractor's, experiment 03)
    x_tr, y_tr = _check_split(train, "train", feats)
    x_va, y_va = _check_split(val, "val", feats)
    x_te, y_te = _check_split(test, "test", feats)
    if test_groups is not None:
        test_groups = np.asarray(test_groups).reshape(-1)
        if len(test_groups) != len(y_te):
            raise ValueError(f"test_groups has {len(test_groups)} labels but the test split has {len(y_te)} images; "
                             "pass one group (smear, patient) per test image.")
    k = int(max(y_tr.max(), y_va.max(), y_te.max())) + 1 if class_names is None else len(class_names)
    class_names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if max(y_tr.max(), y_va.max(), y_te.max()) >= k:
        raise ValueError(f"Labels go up to {max(y_tr.max(), y_va.max(), y_te.max())} but {k} class names were given.")
    notes = [] if test_groups is None else [
        f"intervals resample seeds and whole groups of test images ({len(np.unique(test_groups))} groups), not single images"]
    if grid is not None and settings is not None:
        raise ValueError("Pass grid= (choose the settings on validation) or settings= (fixed), not both.")
    _check_reduce_lr(reduce_lr_patience, reduce_lr_factor)
    if reduce_lr_patience is not None:
        notes.append(f"every run multiplied its learning rate by {reduce_lr_factor:g} after {reduce_lr_patience} "
                     "epoch(s) without a rise of the validation balanced accuracy (ReduceLROnPlateau)")
    if max_train_total is not None:
        if max_train_per_class is not None:
            raise ValueError("Pass max_train_total= (proportional) or max_train_per_class=, not both.")
        keep = proportional_cap(y_tr, int(max_train_total), seed=0)
        if len(keep) < len(y_tr):
            before, after = cap_ratio(y_tr, keep)
            notes.append(f"training set capped in proportion from {len(y_tr)} to {len(keep)} images "
                         f"(class ratio largest/smallest {before:.1f} before, {after:.1f} after)")
            x_tr, y_tr = x_tr[keep], y_tr[keep]
    if max_train_per_class is not None:
        if max_train_per_class < 1:
            raise ValueError(f"max_train_per_class must be >= 1, got {max_train_per_class}.")
        ratio_before = imbalance_ratio(y_tr)
        keep, rng = [], np.random.default_rng(0)
        for c in range(k):
            idx = np.flatnonzero(y_tr == c)
            if len(idx) > max_train_per_class:
                notes.append(f"class {class_names[c]} capped from {len(idx)} to {max_train_per_class} training images")
                idx = np.sort(rng.choice(idx, max_train_per_class, replace=False))
            keep.append(idx)
        keep = np.sort(np.concatenate(keep))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
        ratio_after = imbalance_ratio(y_tr)
        if ratio_after < 0.5 * ratio_before:
            warnings.warn(f"max_train_per_class={max_train_per_class} shrinks the class ratio from {ratio_before:.1f} "
                          f"to {ratio_after:.1f}, erasing the imbalance under study; use max_train_total= "
                          "(a proportional cap) instead.", stacklevel=2)
    counts = np.bincount(y_tr, minlength=k)
    if (counts == 0).any():
        raise ValueError(f"Classes {[class_names[c] for c in np.flatnonzero(counts == 0)]} have no training image.")
    if len(seeds) == 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}.")
    if isinstance(sampler, Mapping):
        if not sampler or any(not str(n) or "[" in str(n) for n in sampler):
            raise ValueError("sampler dict needs non-empty GAN names without brackets, e.g. {'bagan': fn}.")
        samplers = {str(n): fn for n, fn in sampler.items()}
    else:
        samplers = {"": sampler} if sampler is not None else {}
    runs = _expand_arms(arms, list(samplers) if samplers else None)
    metric_names = ["balanced_accuracy", "macro_auc", "minority_recall"] + (list(SENS_AT_SPEC) if k == 2 else [])
    metric_names += [f"f1[{c}]" for c in class_names] + ["accuracy"]
    if metric not in metric_names:
        raise ValueError(f"metric must be one of {metric_names}, got {metric!r}.")

    # Tensors prepared once: `(N, C, size, size)` in [-1, 1].
    in_channels = None if feats else 1 if x_tr.ndim == 3 else x_tr.shape[-1]
    t_tr, t_va, t_te = (_as_inputs(x, size, in_channels) for x in (x_tr, x_va, x_te))
    l_tr, l_va = torch.as_tensor(y_tr), torch.as_tensor(y_va)
    minority = int(np.argmin(counts))
    n_add = _synthetic_counts(n_synthetic_per_class, counts)
    if any(b in ADD_GAN_ARMS for _, b, _ in runs) and n_add.sum() == 0:
        warnings.warn("The real+gan arms add no synthetic image (the classes are already balanced); "
                      "pass n_synthetic_per_class=<int> to add some.", stacklevel=2)
    n_only = np.full(k, int(n_synthetic_only_per_class) if n_synthetic_only_per_class is not None
                     else int(round(len(y_tr) / k)))
    weights = torch.as_tensor(compute_class_weight("balanced", classes=np.arange(k), y=y_tr), dtype=torch.float32)
    augment = classic_aug if classic_aug is not None else ClassicAug()
    if feats and any(b.endswith("classic_aug") for _, b, _ in runs):
        raise ValueError("The classic_aug arms augment pixels; with feature-map inputs (size=None) leave them out of "
                         "arms= (e.g. arms=FEATURE_ARMS).")

    # Classifier settings: chosen on validation once (grid), given, or the plain arguments.
    settings_table = None
    if grid is not None:
        points = [ClassifierSettings.coerce(dict(g) if isinstance(g, Mapping) else g) for g in grid]
        if not points:
            raise ValueError("grid is empty: give at least one ClassifierSettings (e.g. DEFAULT_GRID) or grid=None.")
        _check_builder(build_classifier, points)
        sel_seed = int(max(seeds)) + 1 if selection_seed is None else int(selection_seed)
        chosen, settings_table = _fit_grid(build_classifier, t_tr, l_tr, t_va, l_va, points, sel_seed, batch_size,
                                           device, k, chance_tol, progress, reduce_lr_patience, reduce_lr_factor)
        source = "grid"
    elif settings is not None:
        chosen = ClassifierSettings.coerce(dict(settings) if isinstance(settings, Mapping) else settings)
        source = "given"
    else:
        chosen, source = ClassifierSettings(width=None, lr=lr, epochs=epochs, patience=patience), "defaults"
    _check_builder(build_classifier, [chosen])

    pools: dict[tuple[str, int], list[torch.Tensor]] = {}

    def draw(gan: str, seed: int) -> list[torch.Tensor]:
        """Synthetic images per class for one generator and seed, drawn once and cached."""
        if (gan, seed) not in pools:
            need = np.maximum(n_add if any(b in ADD_GAN_ARMS for _, b, g in runs if g == gan) else 0,
                              n_only if any(b == "synthetic_only" for _, b, g in runs if g == gan) else 0)
            per_class = []
            for c in range(k):
                n = int(need[c])
                imgs = samplers[gan](c, n, seed) if n > 0 else t_tr[:0]
                imgs = imgs if feats or isinstance(imgs, torch.Tensor) else np.asarray(imgs)
                if len(imgs) != n:
                    raise ValueError(f"sampler {gan or ''!r} returned {len(imgs)} images for class {c}, {n} were asked.")
                per_class.append(_as_inputs(imgs, size, in_channels) if n else t_tr[:0])
            pools[(gan, seed)] = per_class
        return pools[(gan, seed)]

    rows, probas = [], {}
    bar = tqdm(total=len(runs) * len(seeds), desc="utility runs", disable=not progress)
    for seed in seeds:
        for name, base, gan in runs:
            t0 = time.perf_counter()
            x, y = t_tr, l_tr
            if base in ADD_GAN_ARMS or base == "synthetic_only":
                pool = draw(gan, seed)
                take = n_add if base in ADD_GAN_ARMS else n_only
                x_syn = torch.cat([pool[c][: take[c]] for c in range(k)])
                y_syn = torch.cat([torch.full((int(take[c]),), c, dtype=torch.long) for c in range(k)])
                x, y = (torch.cat([t_tr, x_syn]), torch.cat([l_tr, y_syn])) if base in ADD_GAN_ARMS else (x_syn, y_syn)
            seed_everything(seed)
            net = _build(build_classifier, chosen)
            fit = fit_classifier(
                net, x, y, t_va, l_va, num_epochs=int(chosen.epochs), batch_size=batch_size, lr=chosen.lr,
                patience=chosen.patience, reduce_lr_patience=reduce_lr_patience, reduce_lr_factor=reduce_lr_factor,
                class_weights=weights if base == "real+class_weights" else None,
                oversample=base == "real+oversample",
                augment=augment if base.endswith("classic_aug") else None,
                seed=seed, device=device,
            )
            proba = predict_proba(net, t_te, device=device)  # the test split, touched once
            scores = classification_metrics(y_te, proba, class_names, minority, positive_class)
            probas.setdefault(name, []).append(proba.astype(np.float32))
            rows.append({"arm": name, "base_arm": base, "gan": gan, "seed": seed, **scores,
                         "val_balanced_accuracy": fit.best_val_balanced_accuracy, "best_epoch": fit.best_epoch,
                         "epochs_run": fit.epochs_run, "n_train": len(x), "seconds": time.perf_counter() - t0,
                         "degenerate": degenerate_reason(proba.argmax(1), fit.best_val_balanced_accuracy, k, chance_tol)})
            bar.update(1)
            bar.set_postfix(arm=name, seed=seed, bacc=f"{scores['balanced_accuracy']:.3f}")
    bar.close()

    table = pd.DataFrame(rows)
    test_proba = {a: np.stack(p) for a, p in probas.items()}
    summary = summarise(table, metric_names, test_proba, y_te, metric_functions(class_names, minority, positive_class),
                        n_boot=interval_boot, seed=min(seeds), test_groups=test_groups)
    paired = _verdict_test(table, metric)
    n_synthetic = {
        "real+gan": {class_names[c]: int(n_add[c]) for c in range(k)},
        "synthetic_only": {class_names[c]: int(n_only[c]) for c in range(k)},
    }
    train_counts = {class_names[c]: int(counts[c]) for c in range(k)}
    return UtilityResult(table, summary, paired, verdict_sentence(paired, summary), class_names, minority,
                         n_synthetic, metric_names, train_counts, notes, {**chosen.as_dict(), "source": source},
                         settings_table, test_proba, y_te)


def induced_imbalance(train: Split, val: Split, test: Split, minority: int, fractions: Sequence[float],
                      make_sampler: Callable[[np.ndarray, np.ndarray, float], Mapping[str, Sampler]],
                      build_classifier: Callable[[], nn.Module], arms: Sequence[str], seeds: Sequence[int],
                      seed: int = 0, full: UtilityResult | None = None, **utility_kw: Any) -> pd.DataFrame:
    """The BAGAN paper's protocol: keep a fraction of the minority class, measure its recall per method.

    For each kept fraction the minority class of ``train`` is thinned (seeded, the other classes
    untouched), the generators are retrained on what is left, and :func:`run_utility_study`
    runs every arm.

    Args:
        train: the real training split ``(images, labels)``.
        val: the validation split (model selection).
        test: the test split.
        minority: the class to thin out.
        fractions: kept shares of the minority class, e.g. ``(1.0, 0.25, 0.1, 0.05)``.
        make_sampler: ``(images, labels, fraction) -> {gan name: sampler}`` trains the generator(s)
            on the reduced training set (called only when ``arms`` holds a GAN arm).
        build_classifier: ``() -> classifier`` as in :func:`run_utility_study`.
        arms: utility arms (methods), one curve each.
        seeds: classifier seeds per point.
        seed: seed of the minority subsampling.
        full: the study already run on the whole ``train`` with these ``seeds`` (e.g. the task's
            :func:`run_utility_study`): its rows of ``arms`` stand for fraction 1.0 instead of a
            second identical run, and its classifier settings are used at every fraction (its
            ``seeds`` must match and it must hold every arm, else ``ValueError``).
        **utility_kw: passed on to :func:`run_utility_study`. A ``grid=`` is used once, on the
            full training split (:func:`select_classifier_settings`), and the chosen settings are
            reused at every fraction (one choice per task); with ``full`` its settings are reused.

    Returns:
        Long frame ``fraction, n_minority, arm, metric, mean, ci_low, ci_high, n_seeds`` for
        ``minority_recall`` and ``balanced_accuracy``.
    """
    x, y = train
    if len(fractions) == 0 or any(not 0.0 < float(f) <= 1.0 for f in fractions):
        raise ValueError(f"fractions must be a non-empty list of kept shares in (0, 1], e.g. [1.0, 0.25, 0.1]; "
                         f"got {list(fractions)} (imbalance_fractions in the notebooks).")
    if full is not None:
        missing = [a for a in arms if a not in set(full.table.base_arm)]
        if missing or sorted(set(full.table.seed)) != sorted(int(s) for s in seeds):
            raise ValueError(f"full= must be the study of these arms and seeds: it lacks arms {missing} or has seeds "
                             f"{sorted(set(full.table.seed))} instead of {sorted(seeds)}; rerun it or drop full=.")
        utility_kw.pop("grid", None)
        utility_kw["settings"] = {k: v for k, v in full.settings.items() if k != "source"}
    elif utility_kw.get("grid") is not None:
        sel_kw = {key: utility_kw[key] for key in ("batch_size", "size", "chance_tol", "reduce_lr_patience",
                                                   "reduce_lr_factor", "device") if key in utility_kw}
        sel_seed = utility_kw.pop("selection_seed", None)
        chosen, _ = select_classifier_settings(build_classifier, train, val, utility_kw.pop("grid"),
                                               int(max(seeds)) + 1 if sel_seed is None else int(sel_seed), **sel_kw)
        utility_kw["settings"] = chosen
    needs_gan = any("gan" in a or a == "synthetic_only" for a in arms)
    parts = []
    for frac in fractions:
        keep = subsample_class(y, minority, float(frac), seed=seed)
        x_f, y_f = x[keep], y[keep]
        if full is not None and float(frac) == 1.0:
            res = full  # the same split, arms, seeds and settings: the run is not repeated
        else:
            sampler = make_sampler(x_f, y_f, float(frac)) if needs_gan else None
            res = run_utility_study(build_classifier, (x_f, y_f), val, test, sampler, arms=arms, seeds=seeds,
                                    **utility_kw)
        base = dict(zip(res.table.arm, res.table.base_arm))
        s = res.summary[res.summary.metric.isin(["minority_recall", "balanced_accuracy"])
                        & res.summary.arm.map(base).isin(arms)]
        parts.append(s.assign(fraction=float(frac), n_minority=int((y_f == minority).sum())))
    cols = ["fraction", "n_minority", "arm", "metric", "mean", "ci_low", "ci_high", "n_seeds"]
    return pd.concat(parts, ignore_index=True)[cols]


def pool_folds(folds: Sequence[UtilityResult], test_groups: Sequence[Any] | None = None, *,
               gans: Sequence[str] | None = None, interval_boot: int = 1000, positive_class: int = 1,
               metric: str = "balanced_accuracy") -> UtilityResult:
    """Pool the out-of-fold test predictions of a cross-validation into one study.

    With classes this small (tens of images from a handful of patients) one test split holds too
    few minority images to score; with grouped folds every image is tested exactly once. Per arm
    and seed, the test probabilities of the folds are concatenated and every metric is computed
    once on the pooled predictions (so per-class support is the whole dataset's). A pooled run is
    degenerate when any of its fold runs is (the reasons are joined with the fold), or when it
    predicts one class for every image. Intervals then resample seeds and whole units (patients)
    over the pooled set, the arms are chosen on the mean validation balanced accuracy over folds,
    and the paired test and verdict are computed as in :func:`run_utility_study`.

    Args:
        folds: one :class:`UtilityResult` per fold, each from :func:`run_utility_study` with the same
            arms, seeds and class names.
        test_groups: per fold, the unit of each test image `(N_f,)` (patient ids); ``None``: images.
        gans: keep the GAN arms of these generators only (those above the quality floor in every
            fold); ``None``: every arm. A single fold pools to itself, so this also filters one study.
        interval_boot: bootstrap resamples of the pooled intervals.
        positive_class: binary tasks: the class of ``sens_at_spec90`` / ``sens_at_spec80``.
        metric: the metric that ranks arms and is tested.

    Returns:
        A :class:`UtilityResult` over the pooled predictions; ``table.fold_val_balanced_accuracy``
        keeps the per-fold validation scores, ``notes`` says how it was pooled, and ``train_counts``,
        ``n_synthetic`` and ``n_train`` are summed over the folds (the minority class is the smallest
        of those sums).
    """
    folds = list(folds)
    if not folds:
        raise ValueError("folds is empty: pass one UtilityResult per fold.")
    names, arms = folds[0].class_names, list(dict.fromkeys(folds[0].table.arm))
    seeds = list(dict.fromkeys(folds[0].table.seed))
    keep = {a for a, g in zip(folds[0].table.arm, folds[0].table.gan) if not g or gans is None or g in set(gans)}
    for i, f in enumerate(folds):
        if f.class_names != names or list(dict.fromkeys(f.table.arm)) != arms or list(dict.fromkeys(f.table.seed)) != seeds:
            raise ValueError(f"fold {i} differs from fold 0 in its classes, arms or seeds; run every fold with the "
                             "same arms=, seeds= and class_names=.")
        if f.y_test is None or set(f.test_proba) != set(arms):
            raise ValueError(f"fold {i} has no stored test probabilities; use results of run_utility_study.")
    if test_groups is not None:
        test_groups = list(test_groups)
        if len(test_groups) != len(folds) or any(len(g) != len(f.y_test) for g, f in zip(test_groups, folds)):
            raise ValueError("test_groups needs one array per fold with one unit per test image of that fold.")
        groups = np.concatenate([np.asarray(g).astype(str) for g in test_groups])
    else:
        groups = None
    y = np.concatenate([f.y_test for f in folds])
    k = len(names)
    counts = np.sum([[f.train_counts.get(c, 0) for c in names] for f in folds], axis=0)
    minority = int(np.argmin(counts))
    arms = [a for a in arms if a in keep]
    proba = {a: np.concatenate([f.test_proba[a] for f in folds], axis=1) for a in arms}  # `(S, N, K)`
    rows = []
    for a in arms:
        for j, s in enumerate(seeds):
            per_fold = [f.table[(f.table.arm == a) & (f.table.seed == s)].iloc[0] for f in folds]
            reasons = [f"fold {i}: {r.degenerate}" for i, r in enumerate(per_fold) if str(r.get("degenerate", ""))]
            pred = proba[a][j].argmax(1)
            if len(np.unique(pred)) == 1:
                reasons.append(ONE_CLASS)
            val = [float(r.val_balanced_accuracy) for r in per_fold]
            rows.append({"arm": a, "base_arm": per_fold[0].base_arm, "gan": per_fold[0].gan, "seed": s,
                         **classification_metrics(y, proba[a][j], names, minority, positive_class),
                         "val_balanced_accuracy": float(np.mean(val)), "fold_val_balanced_accuracy": val,
                         "n_train": int(sum(r.n_train for r in per_fold)),
                         "seconds": float(sum(r.seconds for r in per_fold)), "degenerate": "; ".join(reasons)})
    table = pd.DataFrame(rows)
    metric_names = list(folds[0].metrics)
    summary = summarise(table, metric_names, proba, y, metric_functions(names, minority, positive_class),
                        n_boot=interval_boot, seed=int(min(seeds)), test_groups=groups)
    paired = _verdict_test(table, metric)
    notes = [f"out-of-fold predictions of {len(folds)} folds pooled: every one of the {len(y)} images is tested once "
             f"per seed ({', '.join(f'{c} {n}' for c, n in zip(names, np.bincount(y, minlength=k)))})"]
    if groups is not None:
        notes.append(f"intervals resample seeds and whole groups of test images ({len(np.unique(groups))} groups)")
    settings = [f.settings for f in folds]
    pooled_settings = dict(settings[0]) if all(s == settings[0] for s in settings) else {"per_fold": settings}
    n_syn = {arm: {c: int(sum(f.n_synthetic.get(arm, {}).get(c, 0) for f in folds)) for c in names}
             for arm in folds[0].n_synthetic}  # summed over folds, as train_counts are
    return UtilityResult(table, summary, paired, verdict_sentence(paired, summary), list(names), minority, n_syn,
                         metric_names, {c: int(n) for c, n in zip(names, counts)}, notes, pooled_settings, None, proba, y)
