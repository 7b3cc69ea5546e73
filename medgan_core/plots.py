"""Figures of the study: image grids, loss and metric curves, utility bars, boxes and masks.

Every function builds and returns a matplotlib ``Figure`` (the notebook displays it; nothing
here calls ``plt.show()``), labels its axes with units where there are units, and accepts the
arrays the rest of the core produces:

- images as numpy uint8 `(N, H, W)` / `(N, H, W, C)` (0..255), or float in [-1, 1] in the same
  layouts or channel-first `(N, C, H, W)` (a generator's output; torch tensors are converted);
- training histories and metric frames as tidy pandas frames (one row per step);
- the utility harness's ``summary`` (``arm, metric, mean, ci_low, ci_high``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

__all__ = [
    "to_display", "image_grid", "class_grid", "epoch_grid", "loss_curves", "metric_vs_step", "arm_bars",
    "nn_pair_grid", "bar_counts", "overlay_masks", "draw_boxes",
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


def epoch_grid(samples_by_epoch: Mapping[int, np.ndarray], n_per_epoch: int | None = None,
               suptitle: str | None = "Samples over training") -> Figure:
    """One row per epoch (sorted) of generated samples, labelled ``epoch N``.

    Args:
        samples_by_epoch: epoch -> images (any layout accepted by :func:`to_display`).
        n_per_epoch: images per row (default: the smallest number of samples of any epoch).
        suptitle: figure title, or ``None``.

    Returns:
        The figure: ``len(samples_by_epoch) * n_per_epoch`` axes.
    """
    if not samples_by_epoch:
        raise ValueError("epoch_grid: samples_by_epoch is empty.")
    n = n_per_epoch or min(len(v) for v in samples_by_epoch.values())
    rows = {f"epoch {e}": samples_by_epoch[e] for e in sorted(samples_by_epoch)}
    return _rows_grid(rows, n, suptitle)


def loss_curves(
    history: pd.DataFrame,
    x: str = "step",
    columns: Sequence[str] | None = None,
    smooth: int = 1,
    ylabel: str = "loss",
    title: str | None = None,
) -> Figure:
    """Training curves: one line per column against ``x`` (raw faint, rolling mean bold).

    Args:
        history: one row per logged step, with column ``x`` and the loss columns.
        x: the column on the horizontal axis (``"step"``, ``"epoch"``).
        columns: the curves to draw (default: every numeric column except ``x``).
        smooth: rolling-mean window in rows (1 = no smoothing).
        ylabel: the vertical axis label.
        title: axes title, or ``None``.

    Returns:
        The figure: one axes, one line per column (two when smoothed).
    """
    if x not in history.columns:
        raise ValueError(f"loss_curves: no column {x!r} in the history; columns are {list(history.columns)}.")
    if columns is None:
        columns = [c for c in history.select_dtypes("number").columns if c != x]
    missing = [c for c in columns if c not in history.columns]
    if missing or not columns:
        raise ValueError(f"loss_curves: columns {missing or '[]'} not in the history {list(history.columns)}.")
    if smooth < 1:
        raise ValueError(f"smooth must be a window >= 1, got {smooth}.")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    palette = sns.color_palette(n_colors=len(columns))
    for colour, col in zip(palette, columns):
        if smooth > 1:
            ax.plot(history[x], history[col], color=colour, alpha=0.25, linewidth=0.8)
            smoothed = history[col].rolling(smooth, min_periods=1).mean()
            ax.plot(history[x], smoothed, color=colour, label=f"{col} (mean of {smooth})")
        else:
            ax.plot(history[x], history[col], color=colour, label=col)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def metric_vs_step(frame: pd.DataFrame, metric: str, hue: str | None = None, x: str = "step",
                   ylabel: str | None = None, title: str | None = None) -> Figure:
    """A metric (FID, KID, accuracy, ...) against training steps, one line per ``hue`` value.

    Args:
        frame: tidy frame with columns ``x``, ``metric`` and optionally ``hue``.
        metric: the metric column.
        hue: column that splits the lines (a model, a class), or ``None``.
        x: the horizontal axis column.
        ylabel: vertical axis label (default the metric's name).
        title: axes title, or ``None``.

    Returns:
        The figure: one axes.
    """
    needed = [c for c in (x, metric, hue) if c is not None and c not in frame.columns]
    if needed:
        raise ValueError(f"metric_vs_step: columns {needed} not in the frame {list(frame.columns)}.")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sns.lineplot(data=frame, x=x, y=metric, hue=hue, marker="o", ax=ax)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or metric)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


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
    mean = s["mean"].to_numpy(float)
    err = np.vstack([mean - s.ci_low.to_numpy(float), s.ci_high.to_numpy(float) - mean])
    err = np.nan_to_num(err)  # one seed: no interval
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


def nn_pair_grid(generated: np.ndarray, nearest_real: np.ndarray, distances: Sequence[float],
                 distance_name: str = "d") -> Figure:
    """Generated images (top row) above their nearest real training image (bottom row).

    Args:
        generated: `(n, ...)` generated images.
        nearest_real: `(n, ...)` the nearest real image of each.
        distances: `(n,)` their distances (in the feature space used for the search).
        distance_name: how the distance is named in the titles.

    Returns:
        The figure: ``2 * n`` axes.
    """
    g, r = to_display(generated), to_display(nearest_real)
    d = np.asarray(distances, dtype=float).reshape(-1)
    if not len(g) == len(r) == len(d):
        raise ValueError(f"nn_pair_grid: {len(g)} generated, {len(r)} nearest real and {len(d)} distances; need one each.")
    n = len(g)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n + 1.2, 3.2), squeeze=False)
    for i in range(n):
        _show(axes[0, i], g[i])
        _show(axes[1, i], r[i])
        axes[1, i].set_title(f"{distance_name} = {d[i]:.3g}", fontsize=8)
    axes[0, 0].set_ylabel("generated", rotation=0, ha="right", va="center")
    axes[1, 0].set_ylabel("nearest real", rotation=0, ha="right", va="center")
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
