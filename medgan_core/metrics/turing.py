"""Visual Turing tests of synthetic nodule sequences: automated (a classifier) and in a classroom.

**Classifier two-sample test** (:func:`classifier_two_sample_test`, Lopez-Paz & Oquab 2017): a
small CNN learns "real vs synthetic" on sequences of the training patients and is scored on
sequences of held-out patients. If synthetic and real images came from one distribution, it
could do no better than chance (accuracy 0.5). The score reported, as in the write-up's reader
study, is the **F1 of the "synthetic" answer** (precision and recall of calling an image
synthetic): near 0.5 with balanced classes means readers (or the classifier) cannot tell; 1
means every synthetic image is spotted.

**Classroom sheet** (:func:`write_turing_sheet`): an offline HTML page of shuffled real and
synthetic sequences (each case: its ``T`` slices side by side, numbered), a separate answer key
CSV (``case, truth, source_index``) and an empty answer file (``case, answer``) for a reader to
fill with ``real`` or ``synthetic``. :func:`score_answers` scores a filled-in answer file
against the key: F1 of "synthetic", accuracy, precision, recall (per reader when the file has a
``reader`` column, and their mean).

Images are `(N, T, S, S)` float arrays in [-1, 1] (``T`` = 3 slices become the classifier's 3
channels).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from medgan_core.metrics.stats import bootstrap_resample_ci, cluster_bootstrap_resample_ci
from medgan_core.metrics.realism import c2st_probabilities

LABELS = ("real", "synthetic")
_ALIASES = {"real": "real", "r": "real", "0": "real", "synthetic": "synthetic", "s": "synthetic",
            "fake": "synthetic", "1": "synthetic", "syn": "synthetic"}


def _check_sequences(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2] or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty (N, T, S, S) array of sequences; got {a.shape}.")
    if a.min() < -1.001 or a.max() > 1.001:
        raise ValueError(f"{name} must lie in [-1, 1]; got [{a.min():.3f}, {a.max():.3f}].")
    return a


def binary_scores(truth_synthetic: np.ndarray, said_synthetic: np.ndarray) -> dict[str, float]:
    """F1, precision and recall of the "synthetic" answer, and accuracy.

    Args:
        truth_synthetic: `(N,)` bool, True for synthetic images.
        said_synthetic: `(N,)` bool, True where the reader answered "synthetic".
    """
    t, p = np.asarray(truth_synthetic, bool), np.asarray(said_synthetic, bool)
    if t.shape != p.shape or t.ndim != 1 or len(t) == 0:
        raise ValueError(f"truth and answers must be equal-length 1D arrays; got {t.shape} and {p.shape}.")
    return {"f1": float(f1_score(t, p, zero_division=0)), "accuracy": float(accuracy_score(t, p)),
            "precision": float(precision_score(t, p, zero_division=0)),
            "recall": float(recall_score(t, p, zero_division=0)), "n": int(len(t))}


def bootstrap_f1_ci(truth_synthetic: np.ndarray, said_synthetic: np.ndarray, n_boot: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the F1 of "synthetic" (resampling cases).

    The resampling is :func:`medgan_core.metrics.stats.bootstrap_resample_ci`.

    Args:
        truth_synthetic: `(N,)` bool truth.
        said_synthetic: `(N,)` bool answers.
        n_boot: bootstrap resamples.
        seed: the seed of the resampling.
    """
    t, p = np.asarray(truth_synthetic, bool), np.asarray(said_synthetic, bool)
    if t.shape != p.shape or t.ndim != 1 or len(t) == 0:
        raise ValueError(f"truth and answers must be equal-length 1D arrays; got {t.shape} and {p.shape}.")

    def f1_of(idx: np.ndarray) -> np.ndarray:
        tb, pb = t[idx], p[idx]  # `(n_boot, N)`
        tp = (tb & pb).sum(axis=1)
        denom = tb.sum(axis=1) + pb.sum(axis=1)  # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (#true + #said)
        return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)

    _, low, high = bootstrap_resample_ci(len(t), f1_of, n_boot=n_boot, seed=seed, level=0.95)
    return low, high


def classifier_two_sample_test(real_train: np.ndarray, fake_train: np.ndarray, real_test: np.ndarray,
                               fake_test: np.ndarray, width: int = 16, num_epochs: int = 15,
                               batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                               n_boot: int = 1000, groups: np.ndarray | None = None) -> dict[str, object]:
    """Train "real vs synthetic" on one set of patients and score it on held-out patients.

    The training is the shared C2ST core, :func:`medgan_core.metrics.realism.c2st_probabilities`
    (each class balanced by random oversampling; no model selection on the test patients), with
    random 90-degree rotations as augmentation. The ``T`` slices are the classifier's channels
    (``T`` must be 1 or 3), so a slice-to-slice inconsistency is visible.

    Args:
        real_train: real sequences `(N, T, S, S)` of the training patients, in [-1, 1].
        fake_train: synthetic sequences made from the training patients.
        real_test: real sequences of the held-out patients.
        fake_test: synthetic sequences made from the held-out patients.
        width: the small CNN's first-block width.
        num_epochs: training epochs.
        batch_size: batch size.
        lr: Adam learning rate.
        seed: seeds the weights, shuffling and bootstrap.
        n_boot: bootstrap resamples of the test cases for the F1 and AUC intervals.
        groups: the independent unit of each test case, real cases first then synthetic ones
            (e.g. patient ids, `(len(real_test) + len(fake_test),)`): the AUC interval then
            resamples whole units (a cluster bootstrap; ``(nan, nan)`` with fewer than 3 units);
            ``None``: every test case is a unit.

    Returns:
        ``f1``, ``f1_ci``, ``accuracy``, ``precision``, ``recall``, ``auc`` (0.5: real and synthetic
        cannot be told apart; 1.0: always told apart), ``auc_ci``, ``n`` (test cases), ``n_train``
        and ``said_synthetic``/``truth`` arrays.
    """
    arrays = [_check_sequences(a, n) for a, n in ((real_train, "real_train"), (fake_train, "fake_train"),
                                                 (real_test, "real_test"), (fake_test, "fake_test"))]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"all four sets must share (T, S, S); got {sorted(shapes)}.")
    t = arrays[0].shape[1]
    if t not in (1, 3):
        raise ValueError(f"the classifier takes T = 1 or 3 slices as channels; got T = {t}.")
    rt, ft, re, fe = (torch.from_numpy(a) for a in arrays)
    truth = np.r_[np.zeros(len(re), bool), np.ones(len(fe), bool)]

    def flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        k = int(torch.randint(0, 4, (1,), generator=gen))
        return torch.rot90(x, k, dims=(-2, -1))

    prob = c2st_probabilities(rt, ft, torch.cat([re, fe]), width=width, num_epochs=num_epochs,
                              batch_size=batch_size, lr=lr, seed=seed, augment=flip)
    said = prob >= 0.5
    out: dict[str, object] = binary_scores(truth, said)
    out["f1_ci"] = bootstrap_f1_ci(truth, said, n_boot=n_boot, seed=seed)
    out["auc"] = float(roc_auc_score(truth, prob)) if 0 < truth.sum() < len(truth) else float("nan")
    units = np.arange(len(truth)) if groups is None else np.asarray(groups)
    if units.shape != truth.shape:
        raise ValueError(f"groups needs one unit per test case, real then synthetic ({len(truth)}), got {units.shape}.")

    def auc_of(idx: np.ndarray) -> float:
        t = truth[idx]
        return float(roc_auc_score(t, prob[idx])) if 0 < t.sum() < len(t) else float("nan")

    out["auc_ci"] = cluster_bootstrap_resample_ci(units, auc_of, n_boot=n_boot, seed=seed)[1:]
    out["n_units"] = int(len(np.unique(units)))
    out["n_train"] = int(len(rt) + len(ft))
    out["truth"], out["said_synthetic"] = truth, said
    return out


def constant_pixel_auc(real: np.ndarray, fake: np.ndarray, value: float) -> float:
    """How well one plain statistic tells real from synthetic: the count of pixels exactly equal to ``value``.

    A giveaway check of a sheet or a two-sample test: lung-segmented crops hold a constant outside
    the lungs that a generator never draws exactly, so, unless outputs are prepared like the real
    crops (:func:`medgan_core.data.nodule_sequences.keep_outside_lung`), this count alone marks
    the real cases.

    Args:
        real: real sequences `(N, T, S, S)`.
        fake: synthetic sequences `(M, T, S, S)`.
        value: the constant (e.g. the outside-the-lungs value in [-1, 1] units).

    Returns:
        The ROC AUC of "more such pixels = real" (0.5: the count cannot tell them apart; 1: it always can).
    """
    real, fake = _check_sequences(real, "real"), _check_sequences(fake, "fake")
    counts = [(a == np.float32(value)).reshape(len(a), -1).sum(axis=1) for a in (real, fake)]
    truth = np.r_[np.ones(len(real)), np.zeros(len(fake))]
    return float(roc_auc_score(truth, np.r_[counts[0], counts[1]]))


def _png_uri(img: np.ndarray, scale: int) -> str:
    """A `(S, S)` image in [-1, 1] as an upscaled grayscale PNG data URI."""
    u8 = np.clip((img + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    pil = Image.fromarray(u8, mode="L").resize((u8.shape[1] * scale, u8.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _matched_pairs(groups: np.ndarray, n_real: int, n_fake: int, half: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``half`` real rows and as many synthetic rows, each pair from one group but never the same row."""
    groups = np.asarray(groups)
    if not len(groups) == n_real == n_fake:
        raise ValueError(f"groups needs one entry per row of real and fake, which must be paired (one length); got "
                         f"{len(groups)}, {n_real} and {n_fake}.")
    used, real, fake = np.zeros(len(groups), bool), [], []
    for r in rng.permutation(len(groups)):
        partners = np.flatnonzero((groups == groups[r]) & ~used)
        partners = partners[partners != r]
        if used[r] or not len(partners):
            continue
        s = int(rng.choice(partners))
        used[[r, s]] = True
        real.append(int(r)), fake.append(s)
        if len(real) == half:
            return np.array(real), np.array(fake)
    raise ValueError(f"only {len(real)} pairs of distinct rows of one nodule exist, fewer than the {half} real and "
                     f"{half} synthetic cases asked for; lower n_cases.")


def write_turing_sheet(real: np.ndarray, fake: np.ndarray, out_dir: str | os.PathLike, n_cases: int = 20,
                       seed: int = 0, title: str = "Real or synthetic? A visual Turing test of CT nodules",
                       scale: int = 4, prefix: str = "turing", groups: np.ndarray | None = None) -> dict[str, Path]:
    """Write the classroom sheet: an HTML page of shuffled cases, the answer key and an answer file.

    Half of the ``n_cases`` cases are drawn from ``real`` and half from ``fake`` (without
    replacement, seeded), then shuffled. The page embeds every image (no network needed) and
    holds no hint of the truth; the key is a separate CSV that the teacher keeps.

    Args:
        real: real sequences `(N, T, S, S)` in [-1, 1].
        fake: synthetic sequences, same ``(T, S, S)``.
        out_dir: folder to write ``{prefix}_sheet.html``, ``{prefix}_answer_key.csv`` and
            ``{prefix}_answers_blank.csv`` into (created if absent).
        n_cases: total cases (even, at most twice the smaller set).
        seed: the seed of the draw and the order.
        title: the page title.
        scale: each pixel is drawn as a ``scale`` x ``scale`` block.
        prefix: file name prefix.
        groups: `(N,)` with paired sets (row ``i`` of ``real`` and of ``fake`` made from one case, e.g.
            a crop and its reconstruction): the nodule of each row. Cases are then **matched by
            nodule**: each real case drawn has a synthetic partner made from another row (another
            crop) of the same nodule, so both halves hold the same nodules equally often (what a
            nodule looks like, or where it lies against the lung border, cannot tell the halves
            apart), and no crop is shown both as itself and as its synthetic copy.

    Returns:
        ``{"sheet", "key", "blank"}`` paths.
    """
    real, fake = _check_sequences(real, "real"), _check_sequences(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real {real.shape[1:]} and fake {fake.shape[1:]} must share (T, S, S).")
    half = n_cases // 2
    if n_cases < 2 or n_cases % 2 or half > min(len(real), len(fake)):
        raise ValueError(f"n_cases must be even, >= 2 and at most 2 x min(len(real), len(fake)) = "
                         f"{2 * min(len(real), len(fake))}; got {n_cases}.")
    rng = np.random.default_rng(seed)
    if groups is None:
        pools = rng.choice(len(real), half, replace=False), rng.choice(len(fake), half, replace=False)
    else:
        pools = _matched_pairs(groups, len(real), len(fake), half, rng)
    picks = [("real", int(i)) for i in pools[0]] + [("synthetic", int(i)) for i in pools[1]]
    order = rng.permutation(len(picks))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, cards = [], []
    t = real.shape[1]
    for case, k in enumerate(order, start=1):
        truth, idx = picks[k]
        seq = (real if truth == "real" else fake)[idx]
        imgs = "".join(f'<figure><img src="{_png_uri(seq[j], scale)}" alt="case {case} slice {j + 1}">'
                       f"<figcaption>slice {j + 1}</figcaption></figure>" for j in range(t))
        cards.append(f'<section class="case"><h2>Case {case}</h2><div class="slices">{imgs}</div>'
                     f"<p>Answer: real &#9744; &nbsp; synthetic &#9744;</p></section>")
        rows.append({"case": case, "truth": truth, "source_index": idx})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;}} .case{{display:inline-block;margin:0.6em;
padding:0.6em;border:1px solid #bbb;border-radius:6px;}} .slices{{display:flex;gap:4px;}} figure{{margin:0;}}
figcaption{{font-size:0.8em;text-align:center;color:#555;}} img{{image-rendering:pixelated;}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Each case shows {t} neighbouring CT slices (lung window) centred on a nodule position. About half of the
cases are real LIDC-IDRI nodules and half were drawn by SQ-AGGAN. For every case, write <code>real</code> or
<code>synthetic</code> into the answer file (<code>{prefix}_answers_blank.csv</code>, column <code>answer</code>;
add a <code>reader</code> column if several people answer). Your teacher scores it with
<code>medgan_core.metrics.turing.score_answers</code>.</p>
{''.join(cards)}
</body></html>
"""
    paths = {"sheet": out_dir / f"{prefix}_sheet.html", "key": out_dir / f"{prefix}_answer_key.csv",
             "blank": out_dir / f"{prefix}_answers_blank.csv"}
    paths["sheet"].write_text(page, encoding="utf-8")
    key = pd.DataFrame(rows)
    key.to_csv(paths["key"], index=False)
    key[["case"]].assign(answer="").to_csv(paths["blank"], index=False)
    return paths


def score_answers(answers: str | os.PathLike | pd.DataFrame,
                  key: str | os.PathLike | pd.DataFrame) -> dict[str, object]:
    """Score a filled-in answer file against the answer key.

    Args:
        answers: CSV path or frame with ``case, answer`` (``real``/``synthetic``; also
            ``r``/``s``, ``0``/``1``, ``fake``), optionally ``reader`` for several readers.
        key: CSV path or frame with ``case, truth`` (from :func:`write_turing_sheet`).

    Returns:
        ``{"f1", "accuracy", "precision", "recall", "n", "per_reader"}``: pooled scores over all
        answers, and one row of scores per reader (``per_reader``, a DataFrame; ``mean_f1`` =
        the mean of the readers' F1, as the write-up reports).
    """
    name_a = str(answers) if not isinstance(answers, pd.DataFrame) else "answers"
    name_k = str(key) if not isinstance(key, pd.DataFrame) else "key"
    ans = pd.read_csv(answers, dtype=str) if not isinstance(answers, pd.DataFrame) else answers.astype(str)
    k = pd.read_csv(key, dtype=str) if not isinstance(key, pd.DataFrame) else key.astype(str)
    for frame, cols, name in ((ans, ("case", "answer"), name_a), (k, ("case", "truth"), name_k)):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the columns {missing}; it has {list(frame.columns)}.")
    if "reader" not in ans.columns:
        ans = ans.assign(reader="reader_1")
    ans = ans.assign(answer=ans["answer"].str.strip().str.lower().map(_ALIASES), case=ans["case"].str.strip())
    bad = ans[ans["answer"].isna()]
    if len(bad):
        raise ValueError(f"{name_a}: cases {bad['case'].tolist()[:10]} have no valid answer; write 'real' or "
                         "'synthetic' for every case.")
    truth = k.assign(case=k["case"].str.strip()).set_index("case")["truth"].str.strip().str.lower()
    rows = []
    for reader, part in ans.groupby("reader", sort=True):
        unknown = sorted(set(part["case"]) - set(truth.index))
        missing = sorted(set(truth.index) - set(part["case"]), key=lambda c: int(c) if c.isdigit() else c)
        if unknown or missing or part["case"].duplicated().any():
            raise ValueError(f"{name_a}: reader {reader} must answer every case of the key exactly once; "
                             f"unknown cases {unknown[:10]}, missing {missing[:10]}, "
                             f"duplicated {part.loc[part['case'].duplicated(), 'case'].tolist()[:10]}.")
        t = truth.loc[part["case"]].to_numpy() == "synthetic"
        rows.append({"reader": reader, **binary_scores(t, part["answer"].to_numpy() == "synthetic")})
    per_reader = pd.DataFrame(rows).set_index("reader")
    pooled = binary_scores(truth.loc[ans["case"]].to_numpy() == "synthetic", ans["answer"].to_numpy() == "synthetic")
    return {**pooled, "mean_f1": float(per_reader["f1"].mean()), "per_reader": per_reader}
