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

Reported per arm and seed: balanced accuracy, macro one-vs-rest ROC AUC, the recall of the
smallest training class, per-class F1 and, for binary tasks, the sensitivity at 90% specificity.
The summary gives each arm's mean with a 95% t-interval over seeds (clipped to [0, 1], the range
of every metric here). The best arm that adds GAN images to real ones is compared with the best
arm without GAN images in a paired test over seeds; "best" is chosen by mean *validation*
balanced accuracy, never by a test score (model selection uses the validation split only) (paired t-test and Wilcoxon signed-rank), and the verdict
sentence is generated from that comparison:

    d_s = m(gan arm, seed s) - m(best non-GAN arm, seed s),
    CI = mean(d) +- t_{0.975, S-1} sd(d) / sqrt(S);
    "helped" if the CI is above 0 (t-test p < 0.05), "hurt" if below 0, else "did not help".

Both intervals and both tests come from :mod:`medgan_core.metrics.stats` (``t_interval``,
``paired_test``). :func:`induced_imbalance` is the BAGAN paper's protocol on top of the harness:
thin out one class, retrain the generators, rerun the arms.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score, roc_auc_score, roc_curve
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from tqdm.auto import tqdm

from medgan_core.data.augment import ClassicAug
from medgan_core.data.imbalance import subsample_class
from medgan_core.metrics.stats import format_ci, paired_test, t_interval
from medgan_core.models.classifier import fit_classifier, images_to_tensor, predict_proba
from medgan_core.train.seeding import seed_everything

__all__ = [
    "ALL_ARMS", "NON_GAN_ARMS", "GAN_ARMS", "PairedTest", "UtilityResult",
    "run_utility_study", "classification_metrics", "summarise", "paired_comparison", "select_arms",
    "verdict_sentence", "induced_imbalance",
]

ALL_ARMS: tuple[str, ...] = (
    "real", "real+class_weights", "real+oversample", "real+classic_aug",
    "real+gan", "real+gan+classic_aug", "synthetic_only",
)
NON_GAN_ARMS: tuple[str, ...] = ALL_ARMS[:4]
GAN_ARMS: tuple[str, ...] = ALL_ARMS[4:]
ADD_GAN_ARMS: tuple[str, ...] = ("real+gan", "real+gan+classic_aug")  # real images plus GAN images

Sampler = Callable[[int, int, int], np.ndarray]  # (class index, n, seed) -> uint8 `(n, H, W[, C])`
Split = tuple[np.ndarray, np.ndarray]  # uint8 images `(N, H, W[, C])`, int labels `(N,)`


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
            ``val_balanced_accuracy, best_epoch, epochs_run, n_train, seconds``.
        summary: one row per arm x metric: ``arm, metric, mean, ci_low, ci_high, std, n_seeds``.
        paired_test: best GAN arm vs best non-GAN arm (``None`` when either is missing).
        verdict: the generated verdict sentence.
        class_names: class names, in label order.
        minority_class: index of the smallest class in the training split.
        n_synthetic: synthetic images per class added in the ``real+gan`` arms, and used in ``synthetic_only``.
        metrics: names of the metric columns.
        train_counts: real training images per class actually used (after any cap).
        notes: plain-language notes for the report (classes capped, ...).
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

    def summary_table(self, metrics: Sequence[str] | None = None, digits: int = 3) -> pd.DataFrame:
        """Wide table for a report: one row per arm, ``"mean (low to high)"`` per metric.

        A missing or zero-width interval reads ``"mean (n/a)"`` (:func:`~medgan_core.metrics.stats.format_ci`).

        Args:
            metrics: the metric columns to show (default all).
            digits: decimals.
        """
        metrics = list(metrics or self.metrics)
        s = self.summary[self.summary.metric.isin(metrics)]
        cell = s.apply(lambda r: format_ci(r["mean"], r.ci_low, r.ci_high, digits), axis=1)
        wide = s.assign(cell=cell).pivot(index="arm", columns="metric", values="cell")
        return wide.reindex(index=list(dict.fromkeys(self.summary.arm)), columns=metrics)

    def as_dict(self) -> dict[str, Any]:
        """Nested plain dict (per-arm means and CIs, paired test, verdict) for ``metrics.json``."""
        arms = {
            arm: {r.metric: {"mean": r["mean"], "ci": [r.ci_low, r.ci_high]} for _, r in grp.iterrows()}
            for arm, grp in self.summary.groupby("arm", sort=False)
        }
        return {
            "arms": arms,
            "paired_test": self.paired_test.as_dict() if self.paired_test else None,
            "verdict": self.verdict,
            "n_synthetic": self.n_synthetic,
            "train_counts": self.train_counts,
            "notes": self.notes,
            "n_seeds": int(self.table.seed.nunique()),
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
        positive_class: for binary tasks, the class whose sensitivity is ``sens_at_spec90``.

    Returns:
        ``balanced_accuracy``, ``macro_auc`` (NaN if a class is absent from ``y_true``),
        ``minority_recall``, ``sens_at_spec90`` (binary only) and ``f1[<name>]`` per class.
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
        if pos.all() or not pos.any():
            out["sens_at_spec90"] = float("nan")
        else:
            fpr, tpr, _ = roc_curve(pos, proba[:, positive_class])
            out["sens_at_spec90"] = float(tpr[fpr <= 0.10 + 1e-12].max())
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out.update({f"f1[{name}]": float(v) for name, v in zip(class_names, f1)})
    return out


def summarise(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per arm and metric: mean and 95% t-interval over seeds.

    Args:
        table: the per-run table (columns ``arm``, ``seed`` and the metrics).
        metrics: the metric columns.

    Returns:
        Long frame ``arm, metric, mean, ci_low, ci_high, std, n_seeds`` (arms in table order).
    """
    rows = []
    for arm, grp in table.groupby("arm", sort=False):
        for metric in metrics:
            values = grp[metric].dropna().to_numpy(dtype=float)
            mean, low, high = t_interval(values, clip=(0.0, 1.0))  # every metric here lives in [0, 1]
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
            rows.append({"arm": arm, "metric": metric, "mean": mean, "ci_low": low, "ci_high": high,
                         "std": sd, "n_seeds": len(values)})
    return pd.DataFrame(rows)


def paired_comparison(table: pd.DataFrame, gan_arm: str, base_arm: str, metric: str = "balanced_accuracy") -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test of ``gan_arm - base_arm`` over shared seeds.

    The numbers come from :func:`medgan_core.metrics.stats.paired_test` (seeds where either arm's
    metric is NaN are left out).

    Args:
        table: the per-run table.
        gan_arm: the arm with GAN images.
        base_arm: the arm it is compared with.
        metric: the metric column.
    """
    a = table[table.arm == gan_arm].set_index("seed")[metric]
    b = table[table.arm == base_arm].set_index("seed")[metric]
    seeds = a.index.intersection(b.index)
    t = paired_test(a.loc[seeds].to_numpy(dtype=float), b.loc[seeds].to_numpy(dtype=float))
    return PairedTest(metric, gan_arm, base_arm, t["n"], t["mean_diff"], t["ci_low"], t["ci_high"], t["t_pvalue"],
                      t["wilcoxon_pvalue"], t["diffs"])


def select_arms(table: pd.DataFrame, gan_arms: Sequence[str], base_arms: Sequence[str],
                by: str = "val_balanced_accuracy") -> tuple[str, str]:
    """The best GAN arm and the best non-GAN arm, chosen on the validation split.

    Args:
        table: the per-run table (one row per arm and seed).
        gan_arms: arms that add GAN images to real ones.
        base_arms: arms without GAN images.
        by: the column to rank arms by (its mean over seeds); a validation score.
    """
    means = table.groupby("arm")[by].mean()
    return max(gan_arms, key=lambda a: means[a]), max(base_arms, key=lambda a: means[a])


def _signed(x: float) -> str:
    """``+0.031`` / ``-0.004``, and ``+0.000`` rather than ``-0.000`` for tiny negatives."""
    text = f"{x:+.3f}"
    return "+0.000" if text == "-0.000" else text


def _fmt_p(p: float) -> str:
    """``p = 0.09`` / ``p < 0.001``."""
    if not np.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def verdict_sentence(test: PairedTest | None, summary: pd.DataFrame | None = None) -> str:
    """The verdict, generated from a paired test (and the summary, for the synthetic-only arm).

    Args:
        test: the paired comparison, or ``None`` when no GAN arm or no non-GAN arm was run.
        summary: the per-arm summary; when it holds a ``synthetic_only`` arm a second sentence
            compares it with ``real``.

    Returns:
        One or two sentences; the outcome word ("helped", "did not help", "hurt") comes from
        :attr:`PairedTest.outcome`.
    """
    if test is None:
        return ("No arm adding GAN images to real ones was compared with a non-GAN arm, "
                "so this study says nothing about GAN images.")
    name = test.metric.replace("_", " ")
    if test.n_seeds < 2:
        text = (f"With {test.n_seeds} seed no paired test is possible: {test.gan_arm} changed {name} by "
                f"{_signed(test.mean_diff)} versus the best non-GAN arm ({test.base_arm}).")
    else:
        text = (
            f"Adding GAN images {test.outcome}: {test.gan_arm} changed {name} by {_signed(test.mean_diff)} "
            f"(95% CI {_signed(test.ci_low)} to {_signed(test.ci_high)}) versus the best non-GAN arm ({test.base_arm}, "
            f"arms chosen on validation); "
            f"the difference is {'significant' if test.significant else 'not significant'} "
            f"(paired t-test {_fmt_p(test.t_pvalue)}, Wilcoxon {_fmt_p(test.wilcoxon_pvalue)}, {test.n_seeds} seeds)."
        )
    if summary is not None:
        s = summary[summary.metric == test.metric].set_index("arm")["mean"]
        for arm in [a for a in s.index if a.startswith("synthetic_only")]:
            if "real" in s.index:
                text += (f" Training on synthetic images only ({arm}) reached {name} {s[arm]:.3f}, "
                         f"against {s['real']:.3f} with the real images (real).")
    return text


def _check_split(split: tuple[np.ndarray, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check a ``(images, labels)`` split: uint8 `(N, H, W[, C])` and integer labels `(N,)`."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ValueError(f"{name} must be a tuple (images, labels), got {type(split).__name__}.")
    images, labels = np.asarray(split[0]), np.asarray(split[1]).reshape(-1)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(f"{name}: images must be uint8 (N, H, W) or (N, H, W, C) with C = 1 or 3, "
                         f"got {images.dtype} {images.shape}.")
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{name}: {len(images)} images and {len(labels)} labels; need the same, non-zero count.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"{name}: labels must be integer class indices 0..K-1 (map class names first), got {labels.dtype}.")
    return images, labels.astype(np.int64)


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


def run_utility_study(
    build_classifier: Callable[[], nn.Module],
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
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int | None = 5,
    classic_aug: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    size: int = 32,
    positive_class: int = 1,
    metric: str = "balanced_accuracy",
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> UtilityResult:
    """Train the same classifier under every arm and seed; summarise, test and write the verdict.

    Args:
        build_classifier: ``() -> nn.Module`` returning a fresh classifier with the right input
            channels and ``K`` outputs (e.g. ``lambda: build_classifier("small_cnn", 1, K, width=16)``).
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
            the same for every arm and seed; reported in ``notes``), or ``None`` for no cap.
        epochs: maximum epochs per run.
        batch_size: images per step.
        lr: Adam learning rate.
        patience: epochs without validation improvement before stopping (``None``: no early stop).
        classic_aug: augmentation ``(x, generator) -> x`` for the ``classic_aug`` arms (default :class:`ClassicAug`).
        size: images are resized to ``size x size``.
        positive_class: binary tasks only: the class of ``sens_at_spec90``.
        metric: the metric that ranks arms and is tested (default balanced accuracy).
        device: where to train.
        progress: show a tqdm bar over runs.

    Returns:
        A :class:`UtilityResult`.
    """
    x_tr, y_tr = _check_split(train, "train")
    x_va, y_va = _check_split(val, "val")
    x_te, y_te = _check_split(test, "test")
    k = int(max(y_tr.max(), y_va.max(), y_te.max())) + 1 if class_names is None else len(class_names)
    class_names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if max(y_tr.max(), y_va.max(), y_te.max()) >= k:
        raise ValueError(f"Labels go up to {max(y_tr.max(), y_va.max(), y_te.max())} but {k} class names were given.")
    notes = []
    if max_train_per_class is not None:
        if max_train_per_class < 1:
            raise ValueError(f"max_train_per_class must be >= 1, got {max_train_per_class}.")
        keep, rng = [], np.random.default_rng(0)
        for c in range(k):
            idx = np.flatnonzero(y_tr == c)
            if len(idx) > max_train_per_class:
                notes.append(f"class {class_names[c]} capped from {len(idx)} to {max_train_per_class} training images")
                idx = np.sort(rng.choice(idx, max_train_per_class, replace=False))
            keep.append(idx)
        keep = np.sort(np.concatenate(keep))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
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
    metric_names = ["balanced_accuracy", "macro_auc", "minority_recall"] + (["sens_at_spec90"] if k == 2 else [])
    metric_names += [f"f1[{c}]" for c in class_names]
    if metric not in metric_names:
        raise ValueError(f"metric must be one of {metric_names}, got {metric!r}.")

    # Tensors prepared once: `(N, C, size, size)` in [-1, 1].
    in_channels = 1 if x_tr.ndim == 3 else x_tr.shape[-1]
    t_tr, t_va, t_te = (images_to_tensor(x, size, in_channels) for x in (x_tr, x_va, x_te))
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

    pools: dict[tuple[str, int], list[torch.Tensor]] = {}

    def draw(gan: str, seed: int) -> list[torch.Tensor]:
        """Synthetic images per class for one generator and seed, drawn once and cached."""
        if (gan, seed) not in pools:
            need = np.maximum(n_add if any(b in ADD_GAN_ARMS for _, b, g in runs if g == gan) else 0,
                              n_only if any(b == "synthetic_only" for _, b, g in runs if g == gan) else 0)
            per_class = []
            for c in range(k):
                n = int(need[c])
                imgs = np.asarray(samplers[gan](c, n, seed)) if n > 0 else x_tr[:0]
                if len(imgs) != n:
                    raise ValueError(f"sampler {gan or ''!r} returned {len(imgs)} images for class {c}, {n} were asked.")
                per_class.append(images_to_tensor(imgs, size, in_channels) if n else t_tr[:0])
            pools[(gan, seed)] = per_class
        return pools[(gan, seed)]

    rows = []
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
            net = build_classifier()
            fit = fit_classifier(
                net, x, y, t_va, l_va, num_epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                class_weights=weights if base == "real+class_weights" else None,
                oversample=base == "real+oversample",
                augment=augment if base.endswith("classic_aug") else None,
                seed=seed, device=device,
            )
            proba = predict_proba(net, t_te, device=device)  # the test split, touched once
            scores = classification_metrics(y_te, proba, class_names, minority, positive_class)
            rows.append({"arm": name, "base_arm": base, "gan": gan, "seed": seed, **scores,
                         "val_balanced_accuracy": fit.best_val_balanced_accuracy, "best_epoch": fit.best_epoch,
                         "epochs_run": fit.epochs_run, "n_train": len(x), "seconds": time.perf_counter() - t0})
            bar.update(1)
            bar.set_postfix(arm=name, seed=seed, bacc=f"{scores['balanced_accuracy']:.3f}")
    bar.close()

    table = pd.DataFrame(rows)
    summary = summarise(table, metric_names)
    gan_arms = [n for n, b, _ in runs if b in ADD_GAN_ARMS]
    base_arms = [n for n, b, _ in runs if b in NON_GAN_ARMS]
    paired = None
    if gan_arms and base_arms:
        best_gan, best_base = select_arms(table, gan_arms, base_arms)
        paired = paired_comparison(table, best_gan, best_base, metric)
    n_synthetic = {
        "real+gan": {class_names[c]: int(n_add[c]) for c in range(k)},
        "synthetic_only": {class_names[c]: int(n_only[c]) for c in range(k)},
    }
    train_counts = {class_names[c]: int(counts[c]) for c in range(k)}
    return UtilityResult(table, summary, paired, verdict_sentence(paired, summary), class_names, minority,
                         n_synthetic, metric_names, train_counts, notes)


def induced_imbalance(train: Split, val: Split, test: Split, minority: int, fractions: Sequence[float],
                      make_sampler: Callable[[np.ndarray, np.ndarray, float], Mapping[str, Sampler]],
                      build_classifier: Callable[[], nn.Module], arms: Sequence[str], seeds: Sequence[int],
                      seed: int = 0, **utility_kw: Any) -> pd.DataFrame:
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
        **utility_kw: passed on to :func:`run_utility_study`.

    Returns:
        Long frame ``fraction, n_minority, arm, metric, mean, ci_low, ci_high, n_seeds`` for
        ``minority_recall`` and ``balanced_accuracy``.
    """
    x, y = train
    needs_gan = any("gan" in a or a == "synthetic_only" for a in arms)
    parts = []
    for frac in fractions:
        keep = subsample_class(y, minority, float(frac), seed=seed)
        x_f, y_f = x[keep], y[keep]
        sampler = make_sampler(x_f, y_f, float(frac)) if needs_gan else None
        res = run_utility_study(build_classifier, (x_f, y_f), val, test, sampler, arms=arms, seeds=seeds, **utility_kw)
        s = res.summary[res.summary.metric.isin(["minority_recall", "balanced_accuracy"])]
        parts.append(s.assign(fraction=float(frac), n_minority=int((y_f == minority).sum())))
    cols = ["fraction", "n_minority", "arm", "metric", "mean", "ci_low", "ci_high", "n_seeds"]
    return pd.concat(parts, ignore_index=True)[cols]
