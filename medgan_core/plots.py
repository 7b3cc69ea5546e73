"""Every figure of the study: image grids, samples over training, loss curves, fidelity and utility plots, boxes and masks.

Every function builds and returns a matplotlib ``Figure`` (the notebook displays it; nothing
here calls ``plt.show()``), labels its axes with units where there are units, and accepts the
arrays the rest of the core produces:

- images as numpy uint8 `(N, H, W)` / `(N, H, W, C)` (0..255), or float in [-1, 1] in the same
  layouts or channel-first `(N, C, H, W)` (a generator's output; torch tensors are converted);
- training histories and metric frames as tidy pandas frames (one row per step);
- the utility harness's ``summary`` (``arm, metric, mean, ci_low, ci_high``).
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "to_display", "image_grid", "class_grid", "snapshot_grid", "loss_curves", "fidelity_bars", "arm_bars",
    "imbalance_curves", "five_panel", "sequence_grid", "control_curves", "bar_counts", "overlay_masks", "draw_boxes",
    "imbalance_ratio_bars", "class_count_panels", "intensity_histograms", "box_sides", "nodule_panels",
    "convergence_curves", "metrics_over_training", "feature_projection", "mtf_curves", "interval_lines",
    "seam_panels", "interval_bars", "seed_spread",
]

GAN_COLOUR = "tab:orange"
BASE_COLOUR = "tab:blue"


def to_display(images: np.ndarray) -> np.ndarray:
    """Images as float `(N, H, W)` or `(N, H, W, 3)` in [0, 1] for ``imshow``.

    Args:
        images: uint8 (0..255) or float in [-1, 1]; `(N, H, W)`, `(N, H, W, C)` or `(N, C, H, W)`
            with C = 1 or 3; a torch tensor is converted.

    Returns:
        float32 array in [0, 1]; single-channel images lose their channel axis.
    """
    if hasattr(images, "detach"):  # a torch tensor
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 1, -1)  # channel-first -> channel-last
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise ValueError(f"Images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3, got {x.shape}.")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        if x.size and (np.nanmin(x) < -1.001 or np.nanmax(x) > 1.001):
            raise ValueError(f"Float images must lie in [-1, 1], got [{np.nanmin(x):.3f}, {np.nanmax(x):.3f}]; "
                             "pass uint8 images or rescale them.")
        x = ((x.astype(np.float32) + 1.0) / 2.0).clip(0.0, 1.0)
    else:
        raise ValueError(f"Images must be uint8 or float in [-1, 1], got dtype {x.dtype}.")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    return x


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    """Draw one display image on an axes without ticks (grayscale with a fixed 0..1 range)."""
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _blank(ax: plt.Axes) -> None:
    """An empty grid cell."""
    ax.axis("off")


def image_grid(
    images: np.ndarray,
    nrow: int,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    cell_size: float = 1.3,
    suptitle: str | None = None,
) -> Figure:
    """A grid of images, ``nrow`` per row (as in torchvision's ``make_grid``).

    Args:
        images: `(N, H, W)`, `(N, H, W, C)` or `(N, C, H, W)`, uint8 or float in [-1, 1].
        nrow: images per row.
        titles: one title per image, or ``None``.
        row_labels: one label per row (written left of the row), or ``None``.
        cell_size: inches per image.
        suptitle: figure title, or ``None``.

    Returns:
        The figure: ``ceil(N / nrow) * nrow`` axes, one image on each of the first N.
    """
    x = to_display(images)
    n = len(x)
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}.")
    if n == 0:
        raise ValueError("image_grid: no images to show.")
    rows = -(-n // nrow)
    if titles is not None and len(titles) != n:
        raise ValueError(f"image_grid: {len(titles)} titles for {n} images.")
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"image_grid: {len(row_labels)} row labels for {rows} rows ({n} images, {nrow} per row).")
    fig, axes = plt.subplots(rows, nrow, figsize=(cell_size * nrow + (1.0 if row_labels else 0), cell_size * rows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            _blank(ax)
            continue
        _show(ax, x[i])
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _rows_grid(rows: Mapping[str, np.ndarray], n_cols: int, suptitle: str | None, cell_size: float = 1.3) -> Figure:
    """One labelled row of up to ``n_cols`` images per entry of ``rows`` (short rows padded blank)."""
    if not rows:
        raise ValueError("Nothing to show: the mapping of rows is empty.")
    if n_cols < 1:
        raise ValueError(f"The number of images per row must be >= 1, got {n_cols}.")
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell_size * n_cols + 1.0, cell_size * len(rows) + 0.3),
                             squeeze=False)
    for r, (label, imgs) in enumerate(rows.items()):
        x = to_display(imgs)[:n_cols]
        for c in range(n_cols):
            if c < len(x):
                _show(axes[r, c], x[c])
            else:
                _blank(axes[r, c])
        axes[r, 0].axis("on")
        _strip(axes[r, 0])
        axes[r, 0].set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _strip(ax: plt.Axes) -> None:
    """No ticks, no spines (keeps the y label visible)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def class_grid(images_by_class: Mapping[str, np.ndarray], n_per_class: int, suptitle: str | None = None) -> Figure:
    """One row per class, ``n_per_class`` images each, the class name at the left.

    Args:
        images_by_class: class name -> images (any layout accepted by :func:`to_display`).
        n_per_class: images per row (classes with fewer leave blank cells).
        suptitle: figure title, or ``None``.

    Returns:
        The figure: ``len(images_by_class) * n_per_class`` axes.
    """
    return _rows_grid(dict(images_by_class), n_per_class, suptitle)


def snapshot_grid(snapshots: Mapping[int, Mapping[int, np.ndarray]], classes: Sequence[str], title: str,
                  steps_per_epoch: float | None = None, cell_size: float = 0.5) -> Figure:
    """Fixed-latent samples over training: one row per snapshot step, one column block per class.

    Args:
        snapshots: ``{step: {class index: images}}`` (any layout accepted by :func:`to_display`),
            e.g. :attr:`medgan_core.train.trainer.GanRun.snapshots`.
        classes: class names in label order (the column titles).
        title: the figure's title.
        steps_per_epoch: if given, rows are labelled with the epoch too.
        cell_size: inches per image.

    Returns:
        The figure: one axes per (step, class), the class's images side by side.
    """
    if not snapshots:
        raise ValueError("snapshot_grid: no snapshots were kept; train with n_snapshots > 0.")
    steps = sorted(snapshots)
    n = max(len(v) for d in snapshots.values() for v in d.values())
    fig, axes = plt.subplots(len(steps), len(classes), squeeze=False,
                             figsize=(cell_size * n * len(classes) + 1.2, cell_size * len(steps) + 0.8))
    for r, step in enumerate(steps):
        for c, name in enumerate(classes):
            ax = axes[r, c]
            if c in snapshots[step]:
                ax.imshow(_tile(to_display(snapshots[step][c])), cmap="gray", vmin=0, vmax=1)
            _strip(ax)
            if r == 0:
                ax.set_title(str(name), fontsize=9)
            if c == 0:
                label = f"step {step}" + (f"\n(epoch {step / steps_per_epoch:.1f})" if steps_per_epoch else "")
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _tile(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """Display images `(n, S, S[, 3])` in [0, 1] side by side in one row (white gaps)."""
    n, s = images.shape[0], images.shape[1]
    row = np.ones((s, n * (s + pad)) + images.shape[3:], np.float32)
    for i, im in enumerate(images):
        row[:, i * (s + pad):i * (s + pad) + s] = im
    return row


def convergence_curves(evals: Mapping[str, pd.DataFrame], best_steps: Mapping[str, int] | None = None,
                       reference: float | None = None, ylabel: str = "validation KID", logy: bool = True,
                       title: str | None = None, reference_label: str = "real images") -> Figure:
    """Each generator's validation score against generator steps (left) and training seconds (right).

    Args:
        evals: ``{label: frame}`` with columns ``step``, ``seconds`` and ``score`` (a
            :class:`~medgan_core.train.trainer.GanRun`'s ``evals``); lower is better.
        best_steps: ``{label: step}`` of the kept (best-validation) generator, marked with a dot.
        reference: the same score for real held-out images (a grey dashed line), or ``None``.
        reference_label: what the reference line is (e.g. a yardstick that is not real images).
        ylabel: what the score is.
        logy: logarithmic vertical axis (scores at or below 0 are drawn at the axis floor).
        title: the figure's title, or ``None``.

    Returns:
        The figure: two axes sharing the vertical axis.
    """
    drawn = {k: v for k, v in evals.items() if len(v)}
    if not drawn:
        raise ValueError("convergence_curves: no generator has a validation score; train with eval_fn and eval_every.")
    for label, frame in drawn.items():
        missing = {"step", "seconds", "score"} - set(frame.columns)
        if missing:
            raise ValueError(f"convergence_curves: {label}'s frame lacks {sorted(missing)}; pass GanRun.evals.")
    positive = np.concatenate([f["score"].to_numpy()[f["score"].to_numpy() > 0] for f in drawn.values()])
    floor = float(positive.min()) / 2 if logy and positive.size else None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    palette = dict(zip(drawn, sns.color_palette(n_colors=len(drawn))))
    for ax, x, xlabel in ((axes[0], "step", "generator step"), (axes[1], "seconds", "training seconds")):
        for label, frame in drawn.items():
            score = frame["score"].clip(lower=floor) if floor else frame["score"]
            ax.plot(frame[x], score, marker=".", color=palette[label], label=label)
            best = (best_steps or {}).get(label)
            if best:
                hit = frame[frame["step"] == best]
                ax.plot(hit[x], score[hit.index], "o", color=palette[label], markersize=9, markerfacecolor="none")
        if reference is not None:  # on a log axis a reference <= 0 is drawn at the axis floor, and says so
            shown = reference if not floor or reference > 0 else floor
            ax.axhline(shown, color="grey", linestyle="--", linewidth=1,
                       label=reference_label + ("" if shown == reference else f" ({reference:.3g}, drawn at the axis floor)"))
        ax.set_xlabel(xlabel)
        if logy and floor:
            ax.set_yscale("log")
    axes[0].set_ylabel(ylabel + (" (log)" if logy and floor else "") + ", lower is better")
    axes[1].legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def metrics_over_training(evals: Mapping[str, pd.DataFrame], metrics: Mapping[str, str],
                          reference: Mapping[str, float] | None = None, best_steps: Mapping[str, int] | None = None,
                          title: str | None = None, x: str = "step", xlabel: str = "generator step") -> Figure:
    """One panel per metric: its value at every validation against the generator step, one line per model.

    Args:
        evals: ``{label: frame}`` with a ``step`` column and the metric columns (``GanRun.evals``
            of a run validated by :class:`~medgan_core.metrics.monitor.TrainingMonitor`).
        metrics: ``{column: panel title}``; the title should say which direction is better.
        reference: ``{column: value}`` of held-out real images scored the same way (grey dashed line).
        best_steps: ``{label: step}`` of the kept generator (a ring).
        title: the figure's title.
        x: the column on the horizontal axis (e.g. ``images_seen``).
        xlabel: its label.

    Returns:
        The figure.
    """
    drawn = {k: v for k, v in evals.items() if len(v)}
    if not drawn or not metrics:
        raise ValueError("metrics_over_training: give at least one non-empty frame and one metric.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.2), squeeze=False)
    palette = dict(zip(drawn, sns.color_palette(n_colors=len(drawn))))
    for ax, (column, label) in zip(axes[0], metrics.items()):
        for name, frame in drawn.items():
            if column not in frame:
                continue
            ax.plot(frame[x], frame[column], marker=".", color=palette[name], label=name)
            hit = frame[frame["step"] == (best_steps or {}).get(name)]
            ax.plot(hit[x], hit[column], "o", color=palette[name], markersize=9, markerfacecolor="none")
        if reference is not None and column in reference and np.isfinite(reference[column]):
            ax.axhline(reference[column], color="grey", linestyle="--", linewidth=1, label="held-out real images")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(histories: pd.DataFrame | Mapping[str, pd.DataFrame], columns: Sequence[str] | None = None,
                panels: Mapping[str, Sequence[str]] | None = None, smooth: int = 1, x: str = "step",
                ylabel: str = "loss", logy: bool = False, title: str | None = None) -> Figure:
    """Training curves, one axes per history (or per panel of one history), raw faint and smoothed bold.

    A ``class`` column (one GAN per class) gives one line per class and loss.

    Args:
        histories: one loss history (one row per step), or ``{label: history}`` for one panel each.
        columns: the curves to draw where present (default: every numeric column but ``x`` and ``class``).
        panels: for a single history: ``{panel title: columns}`` (overrides ``columns``).
        smooth: rolling-mean window in rows (1 = no smoothing).
        x: the column on the horizontal axis.
        ylabel: the vertical axis label.
        logy: logarithmic vertical axis.
        title: the figure's title, or ``None``.

    Returns:
        The figure: one axes per panel.
    """
    if smooth < 1:
        raise ValueError(f"smooth must be a window >= 1, got {smooth}.")
    if isinstance(histories, pd.DataFrame):
        spec = {k: (histories, v) for k, v in (panels or {"": columns}).items()}
    elif histories:
        spec = {k: (h, columns) for k, h in histories.items()}
    else:
        raise ValueError("loss_curves: no histories to draw.")
    fig, axes = plt.subplots(1, len(spec), figsize=(max(4.2 * len(spec), 6), 3.6), squeeze=False)
    for ax, (label, (hist, cols)) in zip(axes[0], spec.items()):
        numeric = [c for c in hist.select_dtypes("number").columns if c not in (x, "class")]
        cols = numeric if cols is None else [c for c in cols if c in hist.columns]
        if x not in hist.columns or not cols:
            raise ValueError(f"loss_curves: {label or 'the history'} needs column {x!r} and at least one of "
                             f"{columns or list(panels or {})}; it has {list(hist.columns)}.")
        groups = list(hist.groupby("class")) if "class" in hist.columns else [(None, hist)]
        palette = iter(sns.color_palette(n_colors=len(cols) * len(groups)))
        for cls, h in groups:
            for col in cols:
                colour, name = next(palette), col if cls is None else f"{col} (class {cls})"
                if smooth > 1:
                    ax.plot(h[x], h[col], color=colour, alpha=0.25, linewidth=0.8)
                    ax.plot(h[x], h[col].rolling(smooth, min_periods=1).mean(), color=colour, label=name)
                else:
                    ax.plot(h[x], h[col], color=colour, label=name)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel + (f" (mean of {smooth})" if smooth > 1 else ""))
        if logy:
            ax.set_yscale("log")
        if label:
            ax.set_title(label, fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def fidelity_bars(fid: pd.DataFrame, order: Sequence[str], labels: Mapping[str, str] | None = None) -> Figure:
    """FID per class and model with its interval (log scale), and precision against recall.

    Args:
        fid: the long frame of :func:`medgan_core.metrics.fidelity.fidelity_study`
            (``model, class, fid, fid_ci_low, fid_ci_high, precision, recall``).
        order: the models in bar order (the reference first).
        labels: display names of the models.

    Returns:
        The figure: two axes (FID bars, precision-recall scatter).
    """
    needed = {"model", "class", "fid", "fid_ci_low", "fid_ci_high", "precision", "recall"} - set(fid.columns)
    if needed:
        raise ValueError(f"fidelity_bars: the frame lacks columns {sorted(needed)}; pass fidelity_study's frame.")
    labels = dict(labels or {})
    colours = [f"C{i}" for i in range(len(order))]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    groups = list(fid.groupby("class", sort=False))
    for j, (_, g) in enumerate(groups):
        g = g.set_index("model").reindex(list(order))
        xs = j + np.linspace(-0.3, 0.3, len(order))
        axes[0].bar(xs, g.fid, width=0.6 / len(order), color=colours)
        axes[0].vlines(xs, g.fid_ci_low, g.fid_ci_high, color="black", lw=1)
        axes[1].scatter(g.precision, g.recall, c=colours, marker="osD^v"[j % 5], s=40)
    axes[0].set_xticks(range(len(groups)), ["all" if c == "all" else str(c) for c, _ in groups])
    axes[0].set_yscale("log")
    axes[0].set_ylabel("FID in the encoder's space (log)")
    axes[0].legend(handles=[Patch(color=c) for c in colours], labels=[labels.get(m, m) for m in order], fontsize=7)
    axes[1].set_xlabel("precision")
    axes[1].set_ylabel("recall")
    axes[1].set_xlim(-0.02, 1.02)
    axes[1].set_ylim(-0.02, 1.02)
    markers = ", ".join(f"{'osD^v'[j % 5]} {c}" for j, (c, _) in enumerate(groups))
    axes[1].set_title(f"precision vs recall (colour: model; marker: {markers})", fontsize=9)
    fig.tight_layout()
    return fig


def imbalance_curves(curves: pd.DataFrame, minority_name: str, metric: str = "minority_recall") -> Figure:
    """A metric (mean and 95% CI over seeds) against the kept share of the minority class, one line per arm.

    Args:
        curves: the frame of :func:`medgan_core.metrics.utility.induced_imbalance`.
        minority_name: the minority class's name (axis label).
        metric: the metric to plot.

    Returns:
        The figure: one axes, log-scaled shares.
    """
    data = curves[curves.metric == metric]
    if data.empty:
        raise ValueError(f"imbalance_curves: no rows for metric {metric!r}.")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arm, d in data.groupby("arm", sort=False):
        d = d.sort_values("fraction")
        ax.plot(d.fraction * 100, d["mean"], marker="o", label=arm)
        ax.fill_between(d.fraction * 100, d.ci_low, d.ci_high, alpha=0.12)
    ax.set_xscale("log")
    ticks = sorted(data.fraction.unique() * 100)
    ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
    ax.set_xlabel(f"share of {minority_name} kept in training (log scale)")
    ax.set_ylabel(f"{minority_name} recall on test" if metric == "minority_recall" else metric.replace("_", " "))
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Induced imbalance: how much minority recall each method restores")
    fig.tight_layout()
    return fig


FIVE_PANELS = ("original x", "nodule removed x'", "reconstructed G(x')", "background y", "injected G(y)")


def five_panel(snapshots: Mapping[int, np.ndarray], steps_per_epoch: float, row: int = 0) -> Figure:
    """SQ-AGGAN's five panels (original, erased, reconstructed, background, injected), one row per kept step.

    Args:
        snapshots: ``{step: (R, 5, S, S)}`` middle slices in [-1, 1]
            (:func:`medgan_core.models.sqaggan.five_panel_snapshot` over training).
        steps_per_epoch: to label rows in epochs.
        row: which of the ``R`` examples.

    Returns:
        The figure: ``len(snapshots) x 5`` axes.
    """
    if not snapshots:
        raise ValueError("five_panel: no snapshots were kept; train with n_snapshots > 0.")
    steps = sorted(snapshots)
    fig, axes = plt.subplots(len(steps), 5, figsize=(9, 1.9 * len(steps)), squeeze=False)
    for r, step in enumerate(steps):
        for c in range(5):
            _show(axes[r, c], to_display(np.asarray(snapshots[step])[row, c])[0])
            if r == 0:
                axes[r, c].set_title(FIVE_PANELS[c], fontsize=9)
        axes[r, 0].set_ylabel(f"epoch {step / steps_per_epoch:.0f}\n(step {step})", fontsize=9)
    fig.tight_layout()
    return fig


def sequence_grid(rows: Mapping[str, np.ndarray], cases: Sequence[int], title: str | None = None) -> Figure:
    """Slice sequences side by side: one row per label, the ``T`` slices of each chosen case in turn.

    Args:
        rows: ``{row label: (N, T, S, S) sequences in [-1, 1]}`` (masks: pass ``2 m - 1``).
        cases: which sequences to show.
        title: the figure's title, or ``None``.

    Returns:
        The figure: ``len(rows) x len(cases) T`` axes.
    """
    seqs = {k: np.asarray(v) for k, v in rows.items()}
    t = {v.shape[1] for v in seqs.values()}
    if len(t) != 1 or any(v.ndim != 4 for v in seqs.values()):
        raise ValueError(f"sequence_grid: every entry must be (N, T, S, S) with one T; got "
                         f"{ {k: v.shape for k, v in seqs.items()} }.")
    (t,) = t
    labels = [f"case {k + 1}, slice {s + 1}" for k in range(len(cases)) for s in range(t)]
    images = np.concatenate([v[list(cases)].reshape(-1, *v.shape[2:]) for v in seqs.values()])
    return image_grid(images, len(cases) * t, titles=labels * len(seqs), row_labels=list(seqs), cell_size=1.2,
                      suptitle=title)


def control_curves(per_level: Mapping[str, Mapping[float, float]], rho: Mapping[str, float],
                   mae: Mapping[str, float]) -> Figure:
    """Read-back rating against requested rating, one axes per controlled feature, with the ideal line.

    Args:
        per_level: ``{feature: {requested level: mean read-back rating}}``.
        rho: ``{feature: within-input Spearman}`` for the titles.
        mae: ``{feature: mean absolute error}`` for the titles.

    Returns:
        The figure: one axes per feature.
    """
    fig, axes = plt.subplots(1, len(per_level), figsize=(5 * len(per_level), 3.2), squeeze=False)
    for ax, (col, levels) in zip(axes[0], per_level.items()):
        ax.plot(list(levels), list(levels.values()), "o-", color="tab:red", lw=2, label="mean read back")
        ax.plot([1, 5], [1, 5], "k:", label="ideal")
        ax.set_xlabel(f"requested {col} (1-5)")
        ax.set_ylabel("read back by the regressor")
        ax.set_title(f"{col}: rho = {rho[col]:.2f}, MAE = {mae[col]:.1f}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _error_bars(table: pd.DataFrame, y: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """``(estimates, yerr)`` for matplotlib from the columns ``y``, ``ci_low`` and ``ci_high``; a missing
    interval (one seed, NaN) draws no bar."""
    mean = table[y].to_numpy(float)
    return mean, np.nan_to_num(np.vstack([mean - table.ci_low.to_numpy(float), table.ci_high.to_numpy(float) - mean]))


def arm_bars(summary: pd.DataFrame, metric: str, title: str | None = None) -> Figure:
    """Mean of a metric per utility arm with its 95% CI; GAN arms in another colour.

    Args:
        summary: the utility harness's summary (``arm, metric, mean, ci_low, ci_high``).
        metric: the metric to show (``"balanced_accuracy"``).
        title: axes title (default the metric's name).

    Returns:
        The figure: one axes, one bar per arm.
    """
    needed = {"arm", "metric", "mean", "ci_low", "ci_high"} - set(summary.columns)
    if needed:
        raise ValueError(f"arm_bars: the summary lacks columns {sorted(needed)}; pass UtilityResult.summary.")
    s = summary[summary.metric == metric]
    if s.empty:
        raise ValueError(f"arm_bars: no rows for metric {metric!r}; metrics present: {sorted(summary.metric.unique())}.")
    mean, err = _error_bars(s)
    is_gan = ["gan" in a or a.startswith("synthetic_only") for a in s.arm]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(s) + 1.5), 4))
    pos = np.arange(len(s))
    ax.bar(pos, mean, yerr=err, capsize=4, color=[GAN_COLOUR if g else BASE_COLOUR for g in is_gan])
    ax.set_xticks(pos, list(s.arm), rotation=30, ha="right")
    ax.set_xlabel("arm")
    ax.set_ylabel(f"{metric.replace('_', ' ')} (mean, 95% CI)")
    ax.set_title(title or metric.replace("_", " "))
    ax.legend(handles=[Patch(color=BASE_COLOUR, label="real only"), Patch(color=GAN_COLOUR, label="with GAN images")],
              fontsize=8, loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def bar_counts(counts: pd.Series | Mapping[str, int], title: str, ylabel: str = "images") -> Figure:
    """Class counts as bars; the title ends with the imbalance ratio (largest / smallest).

    Args:
        counts: class -> count.
        title: the title's beginning (the ratio is appended).
        ylabel: what is counted.

    Returns:
        The figure: one axes, one bar per class, counts written on the bars.
    """
    s = pd.Series(counts, dtype=float)
    if s.empty or (s < 0).any():
        raise ValueError(f"bar_counts: need non-negative counts, got {dict(s)}.")
    ratio = s.max() / s.min() if s.min() > 0 else float("inf")
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(s) + 2), 3.6))
    bars = ax.bar([str(k) for k in s.index], s.to_numpy(), color=sns.color_palette(n_colors=len(s)))
    ax.bar_label(bars, labels=[f"{int(v):,}" for v in s.to_numpy()], fontsize=8)
    ax.set_xlabel("class")
    ax.set_ylabel(ylabel)
    if max(len(str(k)) for k in s.index) * len(s) > 30:  # long names would overlap: slant them
        ax.tick_params(axis="x", labelrotation=25)
        plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_title(f"{title} (imbalance ratio {ratio:.1f}:1)")
    fig.tight_layout()
    return fig


def overlay_masks(images: np.ndarray, masks: np.ndarray, mode: str = "contour", ncol: int = 4,
                  titles: Sequence[str] | None = None, alpha: float = 0.4, colour: str = "red") -> Figure:
    """CT slices (or any grayscale images) with their masks drawn over them.

    Args:
        images: `(N, H, W)` slices: uint8 (shown as 0..255), or float in any range (each slice
            is rescaled to its 1st-99th percentile, since CT intensities have no fixed range).
        masks: `(N, H, W)` boolean (or 0/1) masks.
        mode: ``"contour"`` (outline) or ``"fill"`` (translucent fill).
        ncol: images per row.
        titles: one title per image, or ``None``.
        alpha: opacity of the fill.
        colour: mask colour.

    Returns:
        The figure: ``ceil(N / ncol) * ncol`` axes, one slice on each of the first N.
    """
    imgs, m = np.asarray(images), np.asarray(masks).astype(bool)
    if imgs.ndim == 2:
        imgs, m = imgs[None], m[None] if m.ndim == 2 else m
    if imgs.ndim != 3 or imgs.shape != m.shape:
        raise ValueError(f"overlay_masks: images {imgs.shape} and masks {m.shape} must both be (N, H, W).")
    if mode not in ("contour", "fill"):
        raise ValueError(f"mode must be 'contour' or 'fill', got {mode!r}.")
    n = len(imgs)
    rows = -(-n // ncol)
    cols = min(ncol, n)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows + 0.2), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            _blank(ax)
            continue
        img = imgs[i]
        if img.dtype == np.uint8:
            shown = img / 255.0
        else:
            lo, hi = np.percentile(img, [1, 99])
            shown = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        _show(ax, shown.astype(np.float32))
        if m[i].any():
            if mode == "contour":
                ax.contour(m[i].astype(float), levels=[0.5], colors=[colour], linewidths=1.0)
            else:
                ax.imshow(np.ma.masked_where(~m[i], np.ones_like(shown)), cmap=ListedColormap([colour]),
                          alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def draw_boxes(image: np.ndarray, boxes: pd.DataFrame, title: str | None = None) -> Figure:
    """An image with its bounding boxes, coloured by class, with a legend.

    Args:
        image: one image `(H, W)` or `(H, W, C)`, uint8 or float in [-1, 1].
        boxes: one row per box with columns ``label, xmin, ymin, xmax, ymax`` (pixels).
        title: axes title, or ``None``.

    Returns:
        The figure: one axes, one rectangle per box, one legend entry per class.
    """
    needed = {"label", "xmin", "ymin", "xmax", "ymax"} - set(boxes.columns)
    if needed:
        raise ValueError(f"draw_boxes: the boxes frame lacks columns {sorted(needed)}.")
    img = to_display(np.asarray(image)[None])[0]
    labels = sorted(boxes.label.astype(str).unique())
    colours = dict(zip(labels, sns.color_palette("bright", n_colors=max(len(labels), 1))))
    fig, ax = plt.subplots(figsize=(6.4, 6.4 * img.shape[0] / img.shape[1] + 0.4))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    for b in boxes.itertuples(index=False):
        ax.add_patch(Rectangle((b.xmin, b.ymin), b.xmax - b.xmin, b.ymax - b.ymin, fill=False,
                               edgecolor=colours[str(b.label)], linewidth=1.5))
    counts = boxes.label.astype(str).value_counts()
    ax.legend(handles=[Patch(edgecolor=colours[c], facecolor="none", label=f"{c} ({counts[c]})") for c in labels],
              fontsize=8, loc="upper right")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def imbalance_ratio_bars(ratios: pd.Series | Mapping[str, float], title: str = "How unbalanced is each dataset?") -> Figure:
    """Imbalance ratio (largest / smallest class) per dataset as horizontal bars on a log scale.

    Args:
        ratios: dataset -> imbalance ratio (>= 1), drawn top to bottom in this order.
        title: axes title.

    Returns:
        The figure: one axes, one bar per dataset, each labelled with its ratio (``" 4.8:1"``).
    """
    s = pd.Series(ratios, dtype=float)
    if s.empty or not (s >= 1).all():
        raise ValueError(f"imbalance_ratio_bars: need ratios >= 1 (largest / smallest class), got {dict(s)}.")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.barplot(x=s.to_numpy(), y=[str(k) for k in s.index], ax=ax, color=BASE_COLOUR)
    ax.set_xscale("log")
    ax.set_xlabel("imbalance ratio, largest / smallest class (log scale)")
    ax.set_ylabel("dataset")
    ax.set_title(title)
    for i, v in enumerate(s.to_numpy()):
        ax.text(v, i, f" {v:.1f}:1", va="center")
    fig.tight_layout()
    return fig


def class_count_panels(counts_by_set: Mapping[str, pd.Series | Mapping[str, int]], xlabel: str = "images") -> Figure:
    """Class counts of several datasets side by side, one horizontal bar panel each.

    Args:
        counts_by_set: dataset -> (class -> count); each panel's title ends with its imbalance ratio.
        xlabel: what is counted.

    Returns:
        The figure: one axes per dataset, titled ``"{name}: {largest / smallest:.1f}:1"``.
    """
    if not counts_by_set:
        raise ValueError("class_count_panels: no datasets to draw.")
    fig, axes = plt.subplots(1, len(counts_by_set), figsize=(4 * len(counts_by_set), 3.2), squeeze=False)
    for ax, (name, counts) in zip(axes[0], counts_by_set.items()):
        s = pd.Series(counts, dtype=float)
        if s.empty or not (s > 0).all():
            raise ValueError(f"class_count_panels: {name!r} needs positive counts, got {dict(s)}.")
        ax.barh([str(k) for k in s.index], s.to_numpy(), color=BASE_COLOUR)
        ax.set_title(f"{name}: {s.max() / s.min():.1f}:1")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("class")
    fig.tight_layout()
    return fig


def _step_histograms(ax: plt.Axes, values: Mapping[str, np.ndarray], bins: int,
                     value_range: tuple[float, float] | None, colours: Sequence[str] | None) -> None:
    """One outlined density histogram per entry of ``values`` on ``ax``, with a legend."""
    if colours is not None and len(colours) != len(values):
        raise ValueError(f"{len(colours)} colours for {len(values)} histograms.")
    for i, (label, v) in enumerate(values.items()):
        colour = None if colours is None else colours[i]
        ax.hist(np.asarray(v).ravel(), bins=bins, range=value_range, density=True, histtype="step", color=colour,
                label=str(label))
    ax.set_ylabel("density")
    ax.legend()


def intensity_histograms(values: Mapping[str, np.ndarray], title: str, xlabel: str = "pixel intensity (0-255)",
                         bins: int = 64, value_range: tuple[float, float] | None = (0, 255),
                         colours: Sequence[str] | None = None) -> Figure:
    """Pixel-intensity densities, one outlined histogram per group (channel, source, tissue).

    Args:
        values: group -> pixel values (any shape; pooled).
        title: axes title.
        xlabel: the intensity axis label, with its unit or range.
        bins: bins per histogram.
        value_range: the binned range, or ``None`` for each group's own range.
        colours: one colour per group, or ``None`` for the default cycle.

    Returns:
        The figure: one axes, one histogram and legend entry per group.
    """
    if not values:
        raise ValueError("intensity_histograms: no values to draw.")
    fig, ax = plt.subplots(figsize=(7, 3))
    _step_histograms(ax, values, bins, value_range, colours)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def box_sides(boxes: pd.DataFrame, bins: int = 40, title: str = "BCCD: how large each cell type is on the smear") -> Figure:
    """Histogram of bounding-box sizes (the longer side, in pixels), one outline per class.

    Args:
        boxes: one row per box with ``label, xmin, ymin, xmax, ymax`` (pixels).
        bins: number of bins.
        title: axes title.

    Returns:
        The figure: one axes, one step histogram per class.
    """
    needed = {"label", "xmin", "ymin", "xmax", "ymax"} - set(boxes.columns)
    if needed:
        raise ValueError(f"box_sides: the boxes frame lacks columns {sorted(needed)}.")
    data = boxes.assign(side=np.maximum(boxes.xmax - boxes.xmin, boxes.ymax - boxes.ymin))
    fig, ax = plt.subplots(figsize=(7, 3))
    sns.histplot(data=data, x="side", hue="label", bins=bins, ax=ax, element="step")
    ax.set_xlabel("box side before resizing (px)")
    ax.set_ylabel("boxes")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def nodule_panels(meta: pd.DataFrame, intensities: Mapping[str, np.ndarray]) -> Figure:
    """Three views of the LIDC slices: slices per malignancy, nodule mask areas, intensities inside the lungs.

    Args:
        meta: one row per slice with ``malignancy`` (1-5) and ``mask_area_px``.
        intensities: group -> normalised intensities (e.g. ``{"lung tissue": ..., "nodule": ...}``
            from :func:`medgan_core.data.summary.lidc_intensities`).

    Returns:
        The figure: three axes (bars, histogram, density histograms).
    """
    needed = {"malignancy", "mask_area_px"} - set(meta.columns)
    if needed:
        raise ValueError(f"nodule_panels: the slice table lacks columns {sorted(needed)}.")
    if not intensities:
        raise ValueError("nodule_panels: no intensities to draw.")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    meta["malignancy"].value_counts().sort_index().plot.bar(ax=axes[0], color="tab:red")
    axes[0].set_xlabel("malignancy (1 benign ... 5 malignant)")
    axes[0].set_ylabel("slices")
    axes[0].set_title("slices per malignancy")
    axes[1].hist(meta["mask_area_px"], bins=30, color="tab:gray")
    axes[1].set_xlabel("nodule mask area (px)")
    axes[1].set_ylabel("slices")
    axes[1].set_title("nodule size on the slice")
    _step_histograms(axes[2], intensities, bins=80, value_range=None, colours=None)
    axes[2].set_xlabel("normalised intensity")
    axes[2].set_title("intensity inside the lungs")
    fig.tight_layout()
    return fig


def feature_projection(real: np.ndarray, y_real: np.ndarray, fakes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       classes: Sequence[str], title: str | None = None, seed: int = 0) -> Figure:
    """Real and generated feature vectors in the 2-D plane of their first two principal components.

    The PCA (scikit-learn) is fitted on the real vectors only, so every panel shares the real
    data's axes: one panel per generator, real points as small dots and generated ones as
    crosses, one colour per class. Generated points far from the real cloud of their class, or
    all piled in one spot (a collapsed generator), show at a glance.

    Args:
        real: real feature vectors `(N, d)` (e.g. the spatial means of feature maps).
        y_real: their classes `(N,)`.
        fakes: ``{generator: (vectors (M, d), classes (M,))}``.
        classes: class names in label order.
        title: the figure's title.
        seed: seed of the PCA's randomised solver.
    """
    from sklearn.decomposition import PCA

    real = np.asarray(real, dtype=np.float64)
    if real.ndim != 2 or len(real) < 3:
        raise ValueError(f"real must be (N, d) vectors with N >= 3, got shape {real.shape}.")
    pca = PCA(2, random_state=seed).fit(real)
    p_real = pca.transform(real)
    colours = sns.color_palette("colorblind", len(classes))
    fig, axes = plt.subplots(1, max(1, len(fakes)), figsize=(4.2 * max(1, len(fakes)), 4), squeeze=False,
                             sharex=True, sharey=True)
    for ax, (name, (f, y_f)) in zip(axes[0], fakes.items()):
        p_fake = pca.transform(np.asarray(f, dtype=np.float64))
        for c, label in enumerate(classes):
            ax.scatter(*p_real[np.asarray(y_real) == c].T, s=8, alpha=0.45, color=colours[c], label=f"real {label}")
            ax.scatter(*p_fake[np.asarray(y_f) == c].T, s=22, marker="x", color=colours[c], label=f"generated {label}")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f"PC 1 ({pca.explained_variance_ratio_[0]:.0%} of real variance)")
    axes[0][0].set_ylabel(f"PC 2 ({pca.explained_variance_ratio_[1]:.0%})")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mtf_curves(mtfs: Mapping[str, np.ndarray], f: np.ndarray, title: str = "Simulated kernel styles") -> Figure:
    """Modulation transfer functions ``M(f)`` against radial frequency (1: a frequency passes unchanged).

    Args:
        mtfs: ``{style: M(f) (F,)}``.
        f: radial frequencies `(F,)`, cycles per pixel.
        title: the axes title.
    """
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, m in mtfs.items():
        ax.plot(f, m, label=name)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("radial frequency (cycles per pixel)")
    ax.set_ylabel("gain M(f)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def interval_lines(table: pd.DataFrame, x: str, hue: str, y: str = "mean", ylabel: str | None = None,
                   title: str | None = None, reference: float | None = None, reference_label: str = "") -> Figure:
    """A metric against ``x``, one line per ``hue`` value, each point with its 95% interval (``ci_low``, ``ci_high``).

    Args:
        table: one row per point with columns ``x``, ``hue``, ``y``, ``ci_low`` and ``ci_high``.
        x: the column on the horizontal axis (drawn on a log2 scale when every value is a power of two).
        hue: the column that makes the lines.
        y: the column of the point estimates.
        ylabel: the vertical axis label (with unit and direction).
        title: the axes title.
        reference: a grey dashed line (e.g. no translation), or ``None``.
        reference_label: its legend entry.
    """
    missing = {x, hue, y, "ci_low", "ci_high"} - set(table.columns)
    if missing:
        raise ValueError(f"interval_lines: the table lacks columns {sorted(missing)}.")
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for key, part in table.sort_values(x).groupby(hue, sort=True):
        mean, err = _error_bars(part, y)
        ax.errorbar(part[x].to_numpy(float), mean, yerr=err, marker="o", capsize=4, label=f"{hue} {key}")
    values = table[x].to_numpy(float)
    whole = np.all(values == np.round(values)) and (values > 0).all()
    if whole and not (values.astype(int) & (values.astype(int) - 1)).any():  # powers of two: a log2 axis
        ticks = sorted(set(values.astype(int)))
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(v) for v in ticks])
    if reference is not None:
        ax.axhline(reference, color="grey", ls="--", lw=1, label=reference_label or None)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title or "")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def seam_panels(images: Mapping[str, np.ndarray], rows: Sequence[int], cols: Sequence[int], ratios: Mapping[str, float],
                zoom: tuple[slice, slice] | None = None, title: str | None = None) -> Figure:
    """Tiled translations side by side with the window borders marked, and each one's seam ratio in its title.

    Args:
        images: ``{label: (H, W) image in [-1, 1]}``.
        rows: border rows (from :func:`~medgan_core.models.tiling.window_borders`), drawn as thin lines.
        cols: border columns.
        ratios: ``{label: seam ratio}`` (1: no seams).
        zoom: the region shown (rows, cols), or ``None`` for the whole image.
        title: the figure's title.
    """
    zr, zc = zoom if zoom is not None else (slice(None), slice(None))
    fig, axes = plt.subplots(1, len(images), figsize=(3.4 * len(images), 3.7), squeeze=False)
    for ax, (label, img) in zip(axes[0], images.items()):
        x = to_display(np.asarray(img)[None])[0]
        r0, c0 = zr.start or 0, zc.start or 0
        ax.imshow(x[zr, zc], cmap="gray", vmin=0, vmax=1, extent=(c0 - 0.5, c0 + x[zr, zc].shape[1] - 0.5,
                                                                 r0 + x[zr, zc].shape[0] - 0.5, r0 - 0.5))
        for k in rows:
            if r0 <= k < r0 + x[zr, zc].shape[0]:
                ax.axhline(k - 0.5, color="tab:red", lw=0.4, alpha=0.6)
        for k in cols:
            if c0 <= k < c0 + x[zr, zc].shape[1]:
                ax.axvline(k - 0.5, color="tab:red", lw=0.4, alpha=0.6)
        ax.set_title(f"{label}\nseam ratio {ratios[label]:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def interval_bars(table: pd.DataFrame, label: str, y: str = "mean", ylabel: str | None = None, title: str | None = None,
                  reference: float | None = None, reference_label: str = "") -> Figure:
    """One bar per row with its 95% interval (``ci_low``, ``ci_high``), labelled by the column ``label``.

    Args:
        table: rows with columns ``label``, ``y``, ``ci_low`` and ``ci_high``.
        label: the column that names each bar.
        y: the column of the estimates.
        ylabel: the vertical axis label (with direction).
        title: the axes title.
        reference: a grey dashed line (e.g. chance), or ``None``.
        reference_label: its legend entry.
    """
    missing = {label, y, "ci_low", "ci_high"} - set(table.columns)
    if missing:
        raise ValueError(f"interval_bars: the table lacks columns {sorted(missing)}.")
    mean, err = _error_bars(table, y)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(table) + 1.5), 3.6))
    pos = np.arange(len(table))
    ax.bar(pos, mean, yerr=err, capsize=4, color=BASE_COLOUR)
    ax.set_xticks(pos, list(table[label]), rotation=20, ha="right")
    if reference is not None:
        ax.axhline(reference, color="grey", ls="--", lw=1, label=reference_label or None)
        if reference_label:
            ax.legend(fontsize=8)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title or "")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def seed_spread(headlines: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """One panel per headline number: each seed's value with its within-run 95% CI, the mean over
    seeds with its across-seed interval (a shaded band) and the value meaning "no effect".

    Args:
        headlines: one row per (experiment, seed, headline): ``experiment, seed, name, value,
            ci_low, ci_high`` (:func:`medgan_core.grid.headline_table`).
        summary: one row per (experiment, name): ``label, mean, low, high, null, higher_is_better``
            (:func:`medgan_core.grid.across_seeds`).
    """
    missing = {"experiment", "name", "label", "mean", "low", "high", "null", "higher_is_better"} - set(summary.columns)
    if missing or summary.empty:
        raise ValueError(f"seed_spread: the summary is empty or lacks columns {sorted(missing)}; pass grid.across_seeds(...).")
    n = len(summary)
    cols = min(n, 2)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(6.2 * cols, 3.2 * ((n + cols - 1) // cols)), squeeze=False)
    for ax, row in zip(axes.flat, summary.itertuples()):
        g = headlines[(headlines.experiment == row.experiment) & (headlines.name == row.name)].sort_values("seed")
        mean, err = _error_bars(g.rename(columns={"value": "mean"}))
        ax.errorbar(g.seed, mean, yerr=err, fmt="o", capsize=4, color=BASE_COLOUR, label="one seed (within-run 95% CI)")
        if np.isfinite(row.low) and np.isfinite(row.high):
            ax.axhspan(row.low, row.high, color=GAN_COLOUR, alpha=0.2, label="across-seed 95% CI of the mean")
        ax.axhline(row.mean, color=GAN_COLOUR, lw=1.5, label="mean over seeds")
        if row.null is not None and np.isfinite(row.null):
            ax.axhline(row.null, color="grey", ls="--", lw=1, label=f"no effect ({row.null:g})")
        way = {True: "higher is better", False: "lower is better"}.get(row.higher_is_better, "no direction")
        ax.set_title(textwrap.fill(f"{row.experiment[:2]}: {row.label}", 70), fontsize=8)
        ax.set_xlabel("seed")
        ax.set_ylabel(f"value ({way})", fontsize=8)
        ax.set_xticks(list(g.seed))
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
        _blank(ax)
    fig.tight_layout()
    return fig
