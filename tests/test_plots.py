"""Figures: every function returns a Figure with the expected axes, images and labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
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


def test_class_and_snapshot_grids():
    imgs = {"RBC": np.zeros((5, 8, 8, 3), np.uint8), "WBC": np.zeros((2, 8, 8, 3), np.uint8)}
    fig = plots.class_grid(imgs, n_per_class=3)
    assert len(fig.axes) == 6 and n_images(fig) == 3 + 2  # the short class leaves a blank cell
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["RBC", "WBC"]
    snaps = {10: {0: np.zeros((4, 8, 8, 3), np.uint8), 1: np.zeros((4, 8, 8, 3), np.uint8)},
             1: {0: np.zeros((4, 8, 8, 3), np.uint8)}}  # class 1 missing at step 1: a blank cell
    fig = plots.snapshot_grid(snaps, ["RBC", "WBC"], "samples", steps_per_epoch=5)
    assert len(fig.axes) == 4 and n_images(fig) == 3
    assert fig.axes[0].get_ylabel().startswith("step 1\n") and "epoch 2.0" in fig.axes[2].get_ylabel()  # sorted
    assert [fig.axes[0].get_title(), fig.axes[1].get_title()] == ["RBC", "WBC"]
    with pytest.raises(ValueError, match="no snapshots"):
        plots.snapshot_grid({}, ["RBC"], "x")


def test_convergence_curves_against_steps_and_seconds():
    a = pd.DataFrame({"step": [100, 200, 300], "seconds": [10.0, 20.0, 30.0], "score": [0.5, 0.1, 0.2]})
    b = pd.DataFrame({"step": [100, 200], "seconds": [30.0, 60.0], "score": [0.9, -0.01]})
    fig = plots.convergence_curves({"A": a, "B": b, "C": a.iloc[:0]}, best_steps={"A": 200}, reference=0.02)
    left, right = fig.axes
    assert left.get_xlabel() == "generator step" and right.get_xlabel() == "training seconds"
    assert left.get_yscale() == "log" and "lower is better" in left.get_ylabel()
    lines = [ln for ln in left.get_lines() if ln.get_marker() == "."]
    assert len(lines) == 2 and list(lines[1].get_xdata()) == [100, 200]  # C has no scores: not drawn
    assert min(lines[1].get_ydata()) > 0  # a score <= 0 sits at the log axis floor
    best = [ln for ln in left.get_lines() if ln.get_marker() == "o"]
    assert list(best[0].get_xdata()) == [200] and list(best[0].get_ydata()) == [0.1]
    assert list(right.get_lines()[0].get_xdata()) == [10.0, 20.0, 30.0]
    below = plots.convergence_curves({"A": a}, reference=-0.01).axes[0]
    ref_line = [ln for ln in below.get_lines() if ln.get_linestyle() == "--"][0]
    assert ref_line.get_ydata()[0] > 0 and "axis floor" in ref_line.get_label()  # a reference <= 0 is shown, and says so
    yard = plots.convergence_curves({"A": a}, reference=0.3, logy=False, reference_label="erased input").axes[0]
    assert [ln.get_label() for ln in yard.get_lines() if ln.get_linestyle() == "--"] == ["erased input"]
    with pytest.raises(ValueError, match="eval_fn"):
        plots.convergence_curves({"A": a.iloc[:0]})
    with pytest.raises(ValueError, match="lacks"):
        plots.convergence_curves({"A": a.drop(columns="seconds")})


def test_loss_curves_single_mapping_and_panels():
    hist = pd.DataFrame({"step": np.arange(20), "loss_D": np.linspace(1, 0, 20), "loss_G": np.linspace(2, 1, 20)})
    fig = plots.loss_curves(hist, smooth=5)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss (mean of 5)"
    assert len(ax.get_lines()) == 4  # raw + smoothed per column
    assert len(plots.loss_curves(hist, columns=["loss_G"]).axes[0].get_lines()) == 1
    with pytest.raises(ValueError, match="needs column 'epoch'"):
        plots.loss_curves(hist, x="epoch")
    per_class = pd.concat([hist.assign(**{"class": c}) for c in range(3)])
    ae = pd.DataFrame({"step": np.arange(5), "loss_AE": np.ones(5)})
    fig = plots.loss_curves({"DCGAN": per_class, "autoencoder": ae}, columns=["loss_D", "loss_G", "loss_AE"])
    assert [a.get_title() for a in fig.axes] == ["DCGAN", "autoencoder"]
    assert len(fig.axes[0].get_lines()) == 6 and len(fig.axes[1].get_lines()) == 1  # 2 losses x 3 classes; AE
    fig = plots.loss_curves(hist, panels={"critic": ["loss_D"], "generator": ["loss_G"]}, logy=True)
    assert [a.get_title() for a in fig.axes] == ["critic", "generator"] and fig.axes[1].get_yscale() == "log"


def test_fidelity_bars_and_imbalance_curves():
    rows = [{"model": m, "class": c, "fid": f, "fid_ci_low": f / 2, "fid_ci_high": 2 * f, "precision": 0.5,
             "recall": 0.4} for c in ("all", "RBC") for m, f in (("ref", 1.0), ("dcgan", 10.0))]
    fig = plots.fidelity_bars(pd.DataFrame(rows), ["ref", "dcgan"], {"dcgan": "DCGAN"})
    bars = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert [b.get_height() for b in bars] == [1.0, 10.0, 1.0, 10.0] and fig.axes[0].get_yscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ref", "DCGAN"]
    with pytest.raises(ValueError, match="lacks columns"):
        plots.fidelity_bars(pd.DataFrame(rows).drop(columns="recall"), ["ref"])
    curves = pd.DataFrame({"fraction": [1.0, 0.1, 1.0, 0.1], "arm": ["real", "real", "real+gan", "real+gan"],
                           "metric": "minority_recall", "mean": [0.9, 0.2, 0.9, 0.6], "ci_low": 0.0, "ci_high": 1.0})
    fig = plots.imbalance_curves(curves, "Platelets")
    assert len(fig.axes[0].get_lines()) == 2 and "Platelets recall" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="no rows for metric"):
        plots.imbalance_curves(curves, "Platelets", metric="auc")


def test_five_panel_sequence_grid_and_control_curves():
    snaps = {4: np.zeros((2, 5, 8, 8), np.float32), 8: np.ones((2, 5, 8, 8), np.float32)}
    fig = plots.five_panel(snaps, steps_per_epoch=4, row=1)
    assert len(fig.axes) == 10 and n_images(fig) == 10 and fig.axes[0].get_title() == "original x"
    assert fig.axes[5].get_ylabel().startswith("epoch 2")
    seqs = np.zeros((4, 3, 8, 8), np.float32)
    fig = plots.sequence_grid({"real x": seqs, "G(y)": seqs}, cases=[0, 2])
    assert len(fig.axes) == 12 and n_images(fig) == 12 and fig.axes[6].get_ylabel() == "G(y)"
    with pytest.raises(ValueError, match="one T"):
        plots.sequence_grid({"a": seqs, "b": np.zeros((4, 2, 8, 8))}, cases=[0])
    fig = plots.control_curves({"malignancy": {1.0: 3.0, 5.0: 4.0}}, {"malignancy": 0.5}, {"malignancy": 1.2})
    assert fig.axes[0].get_title() == "malignancy: rho = 0.50, MAE = 1.2" and len(fig.axes[0].get_lines()) == 2


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


def test_bar_counts():
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


def test_imbalance_ratio_bars():
    fig = plots.imbalance_ratio_bars(pd.Series({"isic2017": 4.77, "bccd": 11.51, "covid19_radiography": 1.01}))
    (ax,) = fig.axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [round(b.get_width(), 2) for b in bars] == [4.77, 11.51, 1.01]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["isic2017", "bccd", "covid19_radiography"]
    assert [t.get_text() for t in ax.texts] == [" 4.8:1", " 11.5:1", " 1.0:1"]
    assert ax.get_xscale() == "log" and "largest / smallest" in ax.get_xlabel() and ax.get_ylabel() == "dataset"
    with pytest.raises(ValueError, match="ratios >= 1"):
        plots.imbalance_ratio_bars({"bad": 0.5})


def test_class_count_panels():
    counts = {"kermany": pd.Series({"bacteria": 2752, "normal": 1571, "virus": 1485}),
              "pneumoniamnist": {"normal": 1583, "pneumonia": 4273}}
    fig = plots.class_count_panels(counts)
    assert [ax.get_title() for ax in fig.axes] == ["kermany: 1.9:1", "pneumoniamnist: 2.7:1"]
    bars = [p.get_width() for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert bars == [2752, 1571, 1485]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["normal", "pneumonia"]
    assert all(ax.get_xlabel() == "images" and ax.get_ylabel() == "class" for ax in fig.axes)
    with pytest.raises(ValueError, match="'x' needs positive counts"):
        plots.class_count_panels({"x": {"a": 3, "b": 0}})


def test_intensity_histograms():
    values = {"red": np.full((2, 4, 4), 10, np.uint8), "green": np.full((2, 4, 4), 200, np.uint8)}
    fig = plots.intensity_histograms(values, title="ISIC", colours=("red", "green"))
    (ax,) = fig.axes
    assert len(ax.patches) == 2 and ax.get_title() == "ISIC"
    assert ax.get_xlabel() == "pixel intensity (0-255)" and ax.get_ylabel() == "density"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["red", "green"]
    assert ax.patches[0].get_edgecolor()[:3] == (1.0, 0.0, 0.0)
    assert ax.get_xlim()[0] <= 0 and ax.get_xlim()[1] >= 255  # the fixed range, not the data's
    with pytest.raises(ValueError, match="1 colours for 2 histograms"):
        plots.intensity_histograms(values, title="x", colours=("red",))


def test_box_sides():
    boxes = pd.DataFrame({"label": ["RBC", "RBC", "WBC"], "xmin": [0, 0, 0], "ymin": [0, 0, 0],
                          "xmax": [10, 4, 30], "ymax": [5, 12, 20]})  # sides 10, 12, 30
    fig = plots.box_sides(boxes, bins=5)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "box side before resizing (px)" and ax.get_ylabel() == "boxes"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RBC", "WBC"]
    lo, hi = ax.get_xlim()
    assert lo <= 10 and hi >= 30
    with pytest.raises(ValueError, match=r"lacks columns \['ymax'\]"):
        plots.box_sides(boxes.drop(columns="ymax"))


def test_nodule_panels():
    meta = pd.DataFrame({"malignancy": [5, 1, 5, 3], "mask_area_px": [10, 200, 40, 90]})
    fig = plots.nodule_panels(meta, {"lung tissue": RNG.normal(0, 1, 50), "nodule": RNG.normal(1, 1, 20)})
    assert len(fig.axes) == 3
    bars = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert [b.get_height() for b in bars] == [1, 1, 2]  # malignancy 1, 3, 5 in order
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "3", "5"]
    assert fig.axes[1].get_xlabel() == "nodule mask area (px)" and fig.axes[1].get_ylabel() == "slices"
    assert sum(p.get_height() for p in fig.axes[1].patches) == 4  # every slice in the area histogram
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["lung tissue", "nodule"]
    assert fig.axes[2].get_ylabel() == "density"
    with pytest.raises(ValueError, match=r"lacks columns \['mask_area_px'\]"):
        plots.nodule_panels(meta.drop(columns="mask_area_px"), {"nodule": np.zeros(3)})


def test_metrics_over_training_one_panel_per_metric_with_reference_and_kept_step():
    a = pd.DataFrame({"step": [100, 200, 300], "recall": [0.1, 0.4, 0.3], "ms_ssim": [0.5, 0.4, 0.45]})
    b = pd.DataFrame({"step": [50, 100], "recall": [0.2, 0.3]})  # no ms_ssim column: left out of that panel
    fig = plots.metrics_over_training({"A": a, "B": b}, {"recall": "recall (higher is better)", "ms_ssim": "MS-SSIM"},
                                      reference={"recall": 0.8}, best_steps={"A": 200})
    recall_ax, ms_ax = fig.axes
    assert recall_ax.get_title() == "recall (higher is better)" and recall_ax.get_xlabel() == "generator step"
    assert [list(ln.get_xdata()) for ln in recall_ax.get_lines() if ln.get_marker() == "."] == [[100, 200, 300], [50, 100]]
    assert [ln.get_ydata()[0] for ln in recall_ax.get_lines() if ln.get_linestyle() == "--"] == [0.8]
    assert [list(ln.get_ydata()) for ln in recall_ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata())] == [[0.4]]
    assert len([ln for ln in ms_ax.get_lines() if ln.get_marker() == "."]) == 1
    seen = plots.metrics_over_training({"A": a.assign(images=a.step * 16)}, {"recall": "r"}, x="images", xlabel="images seen")
    assert seen.axes[0].get_xlabel() == "images seen" and list(seen.axes[0].get_lines()[0].get_xdata()) == [1600, 3200, 4800]
    with pytest.raises(ValueError, match="at least one"):
        plots.metrics_over_training({"A": a.iloc[:0]}, {"recall": "r"})


def test_mtf_curves_one_line_per_style_and_the_unit_gain():
    f = np.linspace(0, 0.5, 20)
    fig = plots.mtf_curves({"smooth": np.exp(-10 * f), "sharp": 1 + f}, f, title="kernels")
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3 and list(lines[0].get_xdata()) == pytest.approx(f) and lines[1].get_ydata()[-1] == 1.5
    assert list(lines[2].get_ydata()) == [1.0, 1.0] and lines[2].get_linestyle() == "--"  # gain 1: unchanged
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["smooth", "sharp"]
    assert ax.get_title() == "kernels" and "cycles per pixel" in ax.get_xlabel() and "M(f)" in ax.get_ylabel()


def _interval_table(xs=(32, 64, 128), hues=(2, 16)) -> pd.DataFrame:
    rows = [{"patch": x, "batch": b, "mean": 20 + i + 3 * j, "ci_low": 19 + i + 3 * j, "ci_high": 22 + i + 3 * j}
            for j, b in enumerate(hues) for i, x in enumerate(xs)]
    return pd.DataFrame(rows).sample(frac=1, random_state=0)  # shuffled: the lines are drawn in x order


def test_interval_lines_one_errorbar_line_per_hue_on_a_log2_axis():
    fig = plots.interval_lines(_interval_table(), "patch", "batch", ylabel="PSNR (dB, higher is better)",
                               title="patch vs batch", reference=18.0, reference_label="no translation")
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    line, _, (vlines,) = bars[0].lines
    assert list(line.get_xdata()) == [32, 64, 128] and list(line.get_ydata()) == [20, 21, 22]
    assert [tuple(seg[:, 1]) for seg in vlines.get_segments()] == [(19, 22), (20, 23), (21, 24)]  # ci_low to ci_high
    assert list(bars[1].lines[0].get_ydata()) == [23, 24, 25]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["no translation", "batch 2", "batch 16"]
    assert [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"] == [18.0]
    assert ax.get_xlabel() == "patch" and ax.get_ylabel() == "PSNR (dB, higher is better)"
    assert ax.get_title() == "patch vs batch"


def test_interval_lines_linear_axis_unless_powers_of_two_and_nan_intervals():
    table = _interval_table(xs=(10, 20, 30), hues=(1,))
    fig = plots.interval_lines(table, "patch", "batch")
    (ax,) = fig.axes
    assert ax.get_xscale() == "linear" and ax.get_ylabel() == "mean" and ax.get_legend() is not None
    nan = _interval_table().astype({"ci_low": float, "ci_high": float})
    nan.loc[nan.patch == 64, ["ci_low", "ci_high"]] = np.nan  # e.g. a single seed: no interval
    (ax,) = plots.interval_lines(nan, "patch", "batch").axes
    assert len(ax.containers) == 2 and np.isfinite(ax.containers[0].lines[2][0].get_segments()[1]).all()


def test_interval_lines_names_the_missing_columns():
    with pytest.raises(ValueError, match=r"lacks columns \['ci_high', 'psnr'\]"):
        plots.interval_lines(_interval_table().drop(columns="ci_high"), "patch", "batch", y="psnr")


def test_seam_panels_one_panel_per_image_with_borders_and_ratio():
    images = {"plain tiling": np.zeros((48, 48)), "blended": np.full((48, 48), 0.5)}
    fig = plots.seam_panels(images, rows=[16, 32], cols=[24], ratios={"plain tiling": 31.416, "blended": 0.9},
                            title="seams")
    assert len(fig.axes) == 2 and n_images(fig) == 2 and fig._suptitle.get_text() == "seams"
    assert [ax.get_title() for ax in fig.axes] == ["plain tiling\nseam ratio 31.42", "blended\nseam ratio 0.90"]
    assert all(len(ax.get_lines()) == 3 for ax in fig.axes)  # two border rows, one border column
    assert fig.axes[1].get_images()[0].get_array()[0, 0] == pytest.approx(0.75)  # [-1, 1] shown as [0, 1]
    zoomed = plots.seam_panels({"a": np.zeros((48, 48))}, [16, 32], [24], {"a": 1.0}, zoom=(slice(8, 24), slice(0, 20)))
    (ax,) = zoomed.axes
    assert ax.get_images()[0].get_array().shape == (16, 20)
    assert [ln.get_ydata()[0] for ln in ax.get_lines()] == [15.5]  # only the border row inside the zoom


def test_interval_bars_one_bar_per_row_with_its_interval():
    table = pd.DataFrame({"method": ["CycleGAN", "pix2pix", "identity"], "mean": [0.6, 0.8, 0.5],
                          "ci_low": [0.5, 0.7, np.nan], "ci_high": [0.7, 0.95, np.nan]})
    fig = plots.interval_bars(table, "method", ylabel="SSIM (higher is better)", title="translation",
                              reference=0.5, reference_label="no translation")
    (ax,) = fig.axes
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [round(r.get_height(), 3) for r in rects] == [0.6, 0.8, 0.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CycleGAN", "pix2pix", "identity"]
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = bars.lines[2][0].get_segments()
    assert [tuple(np.round(seg[:, 1], 3)) for seg in segments] == [(0.5, 0.7), (0.7, 0.95), (0.5, 0.5)]  # NaN: none
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["no translation"]
    assert ax.get_ylabel() == "SSIM (higher is better)" and ax.get_title() == "translation"
    plain = plots.interval_bars(table, "method")
    assert plain.axes[0].get_legend() is None and plain.axes[0].get_ylabel() == "mean"


def test_interval_lines_keeps_a_linear_axis_for_non_integer_x():
    table = pd.DataFrame({"p": [1.5, 2.5, 4.5], "h": "a", "mean": [1, 2, 3], "ci_low": [0, 1, 2], "ci_high": [2, 3, 4]})
    fig = plots.interval_lines(table, "p", "h")
    assert fig.axes[0].get_xscale() == "linear"
    plt.close(fig)
