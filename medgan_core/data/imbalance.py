"""Class-imbalance tools: counts, ratios, controlled subsampling, stratified and grouped splits.

Every function takes ``labels`` as any 1-D sequence of class names or integers and returns
positions into it (sorted ``int64`` arrays), so the same indices select images, boxes or rows
of a frame. Everything random is driven by one ``seed`` through :func:`numpy.random.default_rng`
(or scikit-learn's ``random_state``): the same seed gives the same indices.

- :func:`class_counts`, :func:`imbalance_ratio`: describe a label vector;
- :func:`subsample_class`, :func:`cap_class_counts`: make a class rarer (to study imbalance)
  or cap very large classes (to fit a CPU budget; this flattens the imbalance);
- :func:`proportional_cap`, :func:`cap_ratio`: shrink a set to a total while keeping its class
  ratio (to fit a CPU budget *without* erasing the imbalance under study);
- :func:`stratified_split`: train / val / test with each class split in the same proportions;
- :func:`grouped_split`, :func:`grouped_kfold`: splits where no group (a patient) is in two
  parts, stratified as far as the groups allow; :func:`fold_with_most_levels` picks a held-out fold;
- :func:`split_count_table`: images per class and split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def _as_labels(labels: Sequence | np.ndarray | pd.Series) -> np.ndarray:
    """Return ``labels`` as a non-empty 1-D numpy array.

    Args:
        labels: class names or integers, one per sample.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class per sample), got shape {arr.shape}.")
    if len(arr) == 0:
        raise ValueError("labels is empty: there is nothing to count or split.")
    return arr


def class_counts(labels: Sequence | np.ndarray | pd.Series) -> pd.Series:
    """Number of samples per class, indexed by class (sorted), named ``count``.

    Args:
        labels: class names or integers, one per sample.
    """
    arr = _as_labels(labels)
    classes, counts = np.unique(arr, return_counts=True)
    return pd.Series(counts.astype(np.int64), index=pd.Index(classes, name="class"), name="count")


def imbalance_ratio(labels: Sequence | np.ndarray | pd.Series) -> float:
    """Size of the largest class divided by the size of the smallest (1.0 = balanced).

    Args:
        labels: class names or integers, one per sample.
    """
    counts = class_counts(labels)
    return float(counts.max() / counts.min())


def subsample_class(labels: Sequence | np.ndarray | pd.Series, cls, fraction: float, seed: int = 0) -> np.ndarray:
    """Keep a random ``fraction`` of class ``cls`` (at least one sample) and every other sample.

    Args:
        labels: class names or integers, one per sample.
        cls: the class to thin out.
        fraction: share of ``cls`` to keep, in (0, 1]; ``round(fraction * n)`` samples, at least 1.
        seed: random seed.

    Returns:
        Sorted positions of the samples kept.
    """
    arr = _as_labels(labels)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    members = np.flatnonzero(arr == cls)
    if len(members) == 0:
        raise ValueError(f"class {cls!r} is not in labels; classes present: {list(class_counts(arr).index)}.")
    n_keep = max(1, int(round(fraction * len(members))))
    kept = np.random.default_rng(seed).choice(members, size=n_keep, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(arr != cls), kept])).astype(np.int64)


def cap_class_counts(labels: Sequence | np.ndarray | pd.Series, max_per_class: int, seed: int = 0) -> np.ndarray:
    """Keep at most ``max_per_class`` random samples of each class.

    Args:
        labels: class names or integers, one per sample.
        max_per_class: the cap (>= 1); smaller classes are kept whole.
        seed: random seed.

    Returns:
        Sorted positions of the samples kept.
    """
    arr = _as_labels(labels)
    if int(max_per_class) != max_per_class or max_per_class < 1:
        raise ValueError(f"max_per_class must be a positive int, got {max_per_class}.")
    rng = np.random.default_rng(seed)
    kept = []
    for cls in class_counts(arr).index:
        members = np.flatnonzero(arr == cls)
        kept.append(members if len(members) <= max_per_class
                    else rng.choice(members, size=int(max_per_class), replace=False))
    return np.sort(np.concatenate(kept)).astype(np.int64)


def proportional_cap(labels: Sequence | np.ndarray | pd.Series, max_total: int, seed: int = 0,
                     min_per_class: int = 10) -> np.ndarray:
    """Keep at most ``max_total`` random samples, every class shrunk by the same factor.

    Each class of ``n_c`` samples keeps ``n_c * s`` of them, rounded to whole samples by the
    largest-remainder rule, with ``s = max_total / N`` so the class ratio (largest / smallest)
    is kept within rounding; :func:`cap_ratio` reports it before and after. A class that would
    fall below ``min_per_class`` keeps ``min(n_c, min_per_class)`` instead, and the others share
    what is left in proportion (only then does the ratio shrink, and only for those classes).
    Nothing is dropped when ``N <= max_total``. Compare :func:`cap_class_counts`, which caps
    every class at one count and so erases the imbalance.

    Args:
        labels: class names or integers, one per sample.
        max_total: the most samples kept in all (>= 1).
        seed: random seed of which samples are kept.
        min_per_class: the fewest samples a class keeps (a smaller class is kept whole).

    Returns:
        Sorted positions of the samples kept.
    """
    arr = _as_labels(labels)
    if int(max_total) != max_total or max_total < 1:
        raise ValueError(f"max_total must be a positive int, got {max_total}.")
    if int(min_per_class) != min_per_class or min_per_class < 0:
        raise ValueError(f"min_per_class must be an int >= 0, got {min_per_class}.")
    counts = class_counts(arr)
    n = counts.to_numpy()
    if n.sum() <= max_total:
        return np.arange(len(arr), dtype=np.int64)
    floor = np.minimum(n, int(min_per_class))
    if floor.sum() > max_total:
        raise ValueError(f"max_total={max_total} cannot keep {int(min_per_class)} samples of each of the "
                         f"{len(n)} classes ({int(floor.sum())} needed); raise max_total or lower min_per_class.")
    floored = np.zeros(len(n), dtype=bool)
    while True:  # classes whose proportional share falls under their floor keep the floor
        budget = max_total - floor[floored].sum()
        scale = budget / n[~floored].sum()
        newly = ~floored & (n * scale < floor)
        if not newly.any():
            break
        floored |= newly
    keep_n = floor.copy()
    free = np.flatnonzero(~floored)
    keep_n[free] = _largest_remainder(int(budget), n[free] / n[free].sum())
    rng = np.random.default_rng(seed)
    kept = [rng.choice(np.flatnonzero(arr == cls), size=int(m), replace=False)
            for cls, m in zip(counts.index, keep_n)]
    return np.sort(np.concatenate(kept)).astype(np.int64)


def cap_ratio(labels: Sequence | np.ndarray | pd.Series, keep: np.ndarray) -> tuple[float, float]:
    """Class ratio (largest / smallest class) before and after keeping the positions ``keep``.

    Args:
        labels: class names or integers, one per sample (before the cap).
        keep: positions kept (from :func:`proportional_cap` or :func:`cap_class_counts`).

    Returns:
        ``(ratio before, ratio after)``, e.g. ``(11.4, 11.4)`` for a proportional cap.
    """
    arr = _as_labels(labels)
    return imbalance_ratio(arr), imbalance_ratio(arr[np.asarray(keep, dtype=np.int64)])


def _check_fractions(fractions: Sequence[float], names: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Validate split fractions and their names.

    Args:
        fractions: one share per part, each in (0, 1), summing to 1.
        names: one name per part (``None``: train/test or train/val/test).
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or len(fr) < 2:
        raise ValueError(f"fractions needs at least two parts, e.g. (0.7, 0.15, 0.15); got {fractions}.")
    if ((fr <= 0) | (fr >= 1)).any() or abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must each be in (0, 1) and sum to 1; got {tuple(fractions)} (sum {fr.sum():.4f}).")
    if names is None:
        if len(fr) not in DEFAULT_NAMES:
            raise ValueError(f"give names for {len(fr)} parts (defaults exist for 2 and 3 parts only).")
        names = DEFAULT_NAMES[len(fr)]
    if len(names) != len(fr) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(fr)} distinct strings, one per fraction; got {names}.")
    return fr, tuple(names)


def _largest_remainder(n: int, fractions: np.ndarray) -> np.ndarray:
    """Split the integer ``n`` into parts proportional to ``fractions`` (Hamilton's method).

    Args:
        n: total to share out.
        fractions: shares summing to 1.
    """
    exact = n * fractions
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")  # largest remainders first, ties to earlier parts
    counts[order[: n - counts.sum()]] += 1
    return counts


def stratified_split(labels: Sequence | np.ndarray | pd.Series, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                     seed: int = 0, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Split samples into parts, each class divided in the given proportions.

    Each class is shuffled and cut by the largest-remainder rule, so a class of ``n`` gets
    ``n * fraction`` samples per part rounded to whole samples (a class of 1 goes to the first
    part). This works for classes too small for scikit-learn's ``train_test_split``.

    Args:
        labels: class names or integers, one per sample.
        fractions: share of every class per part, each in (0, 1), summing to 1.
        seed: random seed.
        names: part names (``None``: ``train, val, test`` for 3 parts, ``train, test`` for 2).

    Returns:
        Part name -> sorted positions; the parts are disjoint and cover every sample.
    """
    arr = _as_labels(labels)
    fr, names = _check_fractions(fractions, names)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for cls in class_counts(arr).index:
        members = rng.permutation(np.flatnonzero(arr == cls))
        bounds = np.cumsum(_largest_remainder(len(members), fr))[:-1]
        for k, chunk in enumerate(np.split(members, bounds)):
            parts[k].append(chunk)
    out = {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in zip(names, parts)}
    empty = [name for name, idx in out.items() if len(idx) == 0]
    if empty:
        raise ValueError(f"parts {empty} came out empty: {len(arr)} samples are too few for fractions {tuple(fr)}.")
    return out


def grouped_split(labels: Sequence | np.ndarray | pd.Series, groups: Sequence | np.ndarray | pd.Series,
                  fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Split by group (e.g. patient): no group is in two parts; classes balanced where possible.

    Groups are shuffled with ``seed``, then taken largest first and each is put in the part
    where it most reduces the squared gap between the parts' class counts and their targets
    (``fraction * class total``), the same greedy idea as scikit-learn's
    ``StratifiedGroupKFold``, but for unequal fractions.

    Args:
        labels: class names or integers, one per sample.
        groups: group id per sample (same length as ``labels``).
        fractions: target share per part, each in (0, 1), summing to 1.
        seed: random seed.
        names: part names (``None``: ``train, val, test`` for 3 parts, ``train, test`` for 2).

    Returns:
        Part name -> sorted positions; every part holds at least one group.
    """
    arr, grp = _as_labels(labels), np.asarray(groups)
    if grp.shape != arr.shape:
        raise ValueError(f"groups must have one entry per label: {grp.shape} vs {arr.shape}.")
    fr, names = _check_fractions(fractions, names)
    group_ids, group_of = np.unique(grp, return_inverse=True)
    if len(group_ids) < len(fr):
        raise ValueError(f"only {len(group_ids)} groups for {len(fr)} parts: every part needs a whole group. "
                         "Use fewer parts, or grouped_kfold for cross-validation.")
    classes, class_of = np.unique(arr, return_inverse=True)
    per_group = np.zeros((len(group_ids), len(classes)))  # `(G, K)` class counts of each group
    np.add.at(per_group, (group_of, class_of), 1)
    target = fr[:, None] * per_group.sum(axis=0)[None, :]  # `(P, K)`
    scale = 1.0 / per_group.sum(axis=0)  # weigh classes equally, not by size
    order = np.random.default_rng(seed).permutation(len(group_ids))
    order = order[np.argsort(-per_group[order].sum(axis=1), kind="stable")]  # largest groups first
    alloc = np.zeros_like(target)
    part_of = np.empty(len(group_ids), dtype=np.int64)
    unused = list(range(len(fr)))  # parts still empty: fill them before all groups run out
    for rank, g in enumerate(order):
        if len(order) - rank <= len(unused):
            candidates = unused
        else:
            candidates = range(len(fr))
        costs = []
        for p in candidates:
            trial = alloc.copy()
            trial[p] += per_group[g]
            costs.append((((trial - target) * scale) ** 2).sum())
        best = list(candidates)[int(np.argmin(costs))]
        alloc[best] += per_group[g]
        part_of[g] = best
        if best in unused:
            unused.remove(best)
    sample_part = part_of[group_of]
    return {name: np.flatnonzero(sample_part == k).astype(np.int64) for k, name in enumerate(names)}


def hold_out_groups(rows: np.ndarray, groups: Sequence | np.ndarray | pd.Series, n_groups: int,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """Move every row of ``n_groups`` randomly chosen groups (e.g. patients) out of ``rows``.

    Used to carve a validation set of whole patients out of a training fold, so that early
    stopping never sees a training patient.

    Args:
        rows: positions (into ``groups``) of the rows to split, e.g. a fold's training slices.
        groups: the group of every row of the full table (indexed by ``rows``).
        n_groups: how many groups to hold out (0: none); fewer than the groups in ``rows``.
        seed: seed of the choice.

    Returns:
        ``(kept rows, held-out rows, held-out group ids)``.
    """
    rows = np.asarray(rows)
    of_rows = np.asarray(groups)[rows]
    present = sorted(set(of_rows.tolist()))
    if not 0 <= int(n_groups) < max(len(present), 1):
        raise ValueError(f"n_groups must be in 0..{len(present) - 1} (the rows hold {len(present)} groups), got {n_groups}.")
    held = list(np.random.default_rng(seed).choice(present, int(n_groups), replace=False)) if n_groups else []
    out = np.isin(of_rows, held)
    return rows[~out], rows[out], held


def grouped_kfold(labels: Sequence | np.ndarray | pd.Series, groups: Sequence | np.ndarray | pd.Series,
                  n_splits: int = 4, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Cross-validation folds by group (scikit-learn's shuffled ``StratifiedGroupKFold``).

    Meant for tiny grouped sets such as LIDC's 8 patients: each group is the test part of
    exactly one fold. scikit-learn warns when a class has fewer samples than ``n_splits``.

    Args:
        labels: class names or integers, one per sample.
        groups: group id per sample (same length as ``labels``).
        n_splits: number of folds, 2 <= n_splits <= number of groups.
        seed: random seed.

    Returns:
        One dict per fold with sorted positions under ``"train"`` and ``"test"``.
    """
    arr, grp = _as_labels(labels), np.asarray(groups)
    if grp.shape != arr.shape:
        raise ValueError(f"groups must have one entry per label: {grp.shape} vs {arr.shape}.")
    n_groups = len(np.unique(grp))
    if int(n_splits) != n_splits or not 2 <= n_splits <= n_groups:
        raise ValueError(f"n_splits must be an int from 2 to the number of groups ({n_groups}); got {n_splits}.")
    folds = StratifiedGroupKFold(n_splits=int(n_splits), shuffle=True, random_state=seed)
    out = [{"train": np.sort(tr).astype(np.int64), "test": np.sort(te).astype(np.int64)}
           for tr, te in folds.split(np.zeros(len(arr)), arr, grp)]
    if any(len(f["test"]) == 0 or len(f["train"]) == 0 for f in out):
        raise ValueError(f"a fold came out empty with n_splits={n_splits} and {n_groups} groups; use fewer folds.")
    return out


def split_count_table(splits: Mapping[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[str]) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with a total column.

    Args:
        splits: ``{split: (images, labels)}`` with int labels indexing ``classes``.
        classes: class names in label order.
    """
    table = pd.DataFrame({s: np.bincount(np.asarray(y, dtype=np.int64), minlength=len(classes))
                          for s, (_, y) in splits.items()}, index=pd.Index(list(classes), name="class"))
    table["total"] = table.sum(axis=1)
    return table


def fold_with_most_levels(folds: Sequence[Mapping[str, np.ndarray]], labels: Sequence | np.ndarray | pd.Series,
                          groups: Sequence | np.ndarray | pd.Series) -> int:
    """The fold whose held-out groups span the most label levels (ties: the larger training side).

    Decided from the labels alone, before any training (e.g. the LIDC fold whose held-out
    nodules cover the most malignancy ratings).

    Args:
        folds: from :func:`grouped_kfold` (``{"train", "test"}`` row indices).
        labels: one label per row (e.g. malignancy).
        groups: one unit per row whose label counts once (e.g. the nodule id).
    """
    if not folds:
        raise ValueError("no folds given: build them with grouped_kfold first.")
    frame = pd.DataFrame({"label": _as_labels(labels), "group": _as_labels(groups)})

    def score(k: int) -> tuple[int, int]:
        held = frame.iloc[folds[k]["test"]]
        return held.groupby("group")["label"].first().nunique(), len(folds[k]["train"])
    return max(range(len(folds)), key=score)
