"""Figures: every function returns a Figure with the expected axes, images and labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from medgan_core import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def n_images(fig: Figure) -> int:
    """Number of images drawn on the figure's axes."""
    return sum(isinstance(a, AxesImage) for ax in fig.axes for a in ax.get_images())


RNG = np.random.default_rng(0)
GRID_CASES = [  # (images, nrow, expected axes)
    (RNG.integers(0, 256, (5, 8, 8), dtype=np.uint8), 3, 6),  # grayscale uint8
    (RNG.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), 2, 4),  # RGB uint8, channel-last
    (RNG.uniform(-1, 1, (3, 3, 8, 8)).astype(np.float32), 4, 4),  # RGB float, channel-first
    (torch.rand(2, 1, 8, 8) * 2 - 1, 2, 2),  # a generator's output
]


@pytest.mark.parametrize("images,nrow,n_axes", GRID_CASES)
def test_image_grid(images, nrow, n_axes):
    fig = plots.image_grid(images, nrow)
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes and n_images(fig) == len(images)


def test_image_grid_titles_row_labels_and_errors():
    x = np.zeros((4, 8, 8), np.uint8)
    fig = plots.image_grid(x, 2, titles=list("abcd"), row_labels=["real", "fake"])
    assert [ax.get_title() for ax in fig.axes] == list("abcd")
    assert fig.axes[0].get_ylabel() == "real" and fig.axes[2].get_ylabel() == "fake"
    with pytest.raises(ValueError, match="3 titles for 4 images"):
        plots.image_grid(x, 2, titles=list("abc"))
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        plots.image_grid(np.full((2, 8, 8), 5.0), 2)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        plots.image_grid(np.zeros((2, 8, 8, 2), np.uint8), 2)


def test_to_display_scales():
    x = plots.to_display(np.array([[[0, 255]]], np.uint8))
    assert x.tolist() == [[[0.0, 1.0]]]
    assert plots.to_display(np.array([[[-1.0, 0.0, 1.0]]])).tolist() == [[[0.0, 0.5, 1.0]]]


def test_class_and_epoch_grids():
    imgs = {"RBC": np.zeros((5, 8, 8, 3), np.uint8), "WBC": np.zeros((2, 8, 8, 3), np.uint8)}
    fig = plots.class_grid(imgs, n_per_class=3)
    assert len(fig.axes) == 6 and n_images(fig) == 3 + 2  # the short class leaves a blank cell
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["RBC", "WBC"]
    fig = plots.epoch_grid({10: np.zeros((4, 8, 8)), 1: np.zeros((3, 8, 8))})
    assert len(fig.axes) == 6 and n_images(fig) == 6
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["epoch 1", "epoch 10"]  # sorted


def test_loss_curves_and_metric_vs_step():
    hist = pd.DataFrame({"step": np.arange(20), "loss_D": np.linspace(1, 0, 20), "loss_G": np.linspace(2, 1, 20)})
    fig = plots.loss_curves(hist, smooth=5)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    assert len(ax.get_lines()) == 4  # raw + smoothed per column
    assert len(plots.loss_curves(hist, columns=["loss_G"]).axes[0].get_lines()) == 1
    with pytest.raises(ValueError, match="no column 'epoch'"):
        plots.loss_curves(hist, x="epoch")
    frame = pd.DataFrame({"step": [1, 2, 1, 2], "fid": [9.0, 5.0, 8.0, 4.0], "model": ["a", "a", "b", "b"]})
    fig = plots.metric_vs_step(frame, "fid", hue="model")
    assert fig.axes[0].get_xlabel() == "step" and fig.axes[0].get_ylabel() == "fid"
    assert len(fig.axes[0].get_legend().get_texts()) == 2


def test_arm_bars():
    summary = pd.DataFrame({
        "arm": ["real", "real+oversample", "real+gan[bagan]"], "metric": ["balanced_accuracy"] * 3,
        "mean": [0.6, 0.7, 0.8], "ci_low": [0.5, 0.65, 0.7], "ci_high": [0.7, 0.75, 0.9],
    })
    fig = plots.arm_bars(summary, "balanced_accuracy")
    (ax,) = fig.axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [round(b.get_height(), 3) for b in bars] == [0.6, 0.7, 0.8]
    assert bars[0].get_facecolor() == bars[1].get_facecolor() != bars[2].get_facecolor()  # GAN arm stands out
    assert "balanced accuracy" in ax.get_ylabel() and ax.get_xlabel() == "arm"
    with pytest.raises(ValueError, match="no rows for metric 'auc'"):
        plots.arm_bars(summary, "auc")


def test_nn_pair_grid_and_bar_counts():
    fig = plots.nn_pair_grid(np.zeros((3, 8, 8)), np.ones((3, 8, 8)) * 0.5, [1.0, 2.5, 3.0])
    assert len(fig.axes) == 6 and n_images(fig) == 6
    assert fig.axes[3].get_title() == "d = 1" and fig.axes[0].get_ylabel() == "generated"
    with pytest.raises(ValueError, match="3 generated, 2 nearest real"):
        plots.nn_pair_grid(np.zeros((3, 8, 8)), np.zeros((2, 8, 8)), [1, 2, 3])
    fig = plots.bar_counts({"RBC": 4155, "WBC": 372, "Platelets": 361}, "BCCD cells")
    (ax,) = fig.axes
    assert ax.get_title() == "BCCD cells (imbalance ratio 11.5:1)"
    assert ax.get_xlabel() == "class" and ax.get_ylabel() == "images"


@pytest.mark.parametrize("mode", ["contour", "fill"])
def test_overlay_masks(mode):
    imgs = RNG.normal(0, 1, (3, 16, 16)).astype(np.float32)  # CT-like floats, any range
    masks = np.zeros((3, 16, 16), bool)
    masks[:, 5:9, 5:9] = True
    fig = plots.overlay_masks(imgs, masks, mode=mode, ncol=2)
    assert len(fig.axes) == 4
    drawn = [ax for ax in fig.axes[:3]]
    if mode == "fill":
        assert n_images(fig) == 6  # slice + mask per image
    else:
        assert n_images(fig) == 3 and all(len(ax.collections) >= 1 for ax in drawn)
    with pytest.raises(ValueError, match="must both be"):
        plots.overlay_masks(imgs, masks[:2])


def test_draw_boxes():
    boxes = pd.DataFrame({"label": ["RBC", "RBC", "WBC"], "xmin": [1, 10, 20], "ymin": [1, 5, 8],
                          "xmax": [8, 18, 30], "ymax": [9, 15, 28]})
    fig = plots.draw_boxes(np.zeros((32, 40, 3), np.uint8), boxes)
    (ax,) = fig.axes
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 3 and rects[0].get_edgecolor() == rects[1].get_edgecolor() != rects[2].get_edgecolor()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RBC (2)", "WBC (1)"]
    assert ax.get_xlabel() == "x (px)" and ax.get_ylabel() == "y (px)"
    with pytest.raises(ValueError, match=r"lacks columns \['xmax'"):
        plots.draw_boxes(np.zeros((8, 8)), boxes.drop(columns=["xmax"]))
