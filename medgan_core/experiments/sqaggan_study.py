"""Experiment 05 helpers: train SQ-AGGAN, and measure control, background, continuity and cost.

What the notebook ``05_sqaggan_lung_nodules`` calls, beyond the model
(:mod:`medgan_core.models.sqaggan`) and the inputs (:mod:`medgan_core.data.nodule_sequences`):

- :func:`train_sqaggan`: the seeded, checkpointed training run (batches drawn by step, the same
  random flip/rotation for ``x``, ``x'``, ``M_n``; backgrounds drawn independently), keeping
  the five panels of fixed examples at chosen steps.
- :func:`generate`: ``G`` over a whole set, batched, in eval mode.
- :func:`nodule_descriptors` and :func:`fit_feature_regressor`: a ridge regressor from simple
  intensity and shape descriptors of the nodule region to a rating; :func:`feature_control`
  asks ``G`` for ratings 1..5 on fixed backgrounds and measures with the regressor whether the
  request is realised (Spearman correlation within each background, averaged, bootstrap CI).
- :func:`background_error`: L1 and PSNR outside a region, per sample.
- :func:`continuity`: mean absolute difference between neighbouring slices inside a region.
- :func:`saved_activation_bytes`, :func:`training_memory_estimate`, :func:`measure_step`: the cost
  table's memory and time.
- :func:`mean_ci`: mean with a 95% bootstrap interval; :func:`plot_five_panel`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import psutil
import torch
from scipy import ndimage
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from medgan_core.data.nodule_sequences import NoduleSequences, augment_batch
from medgan_core.models.sqaggan import Lambdas, define_D, define_G, generate_pair, train_step
from medgan_core.train import step_batch_indices, train_loop


def mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its 95% percentile-bootstrap interval.

    Args:
        values: `(N,)` numbers (NaNs dropped).
        n_boot: resamples.
        seed: the seed of the resampling.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    return float(v.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def _t(a: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """`(N, T, S, S)` array -> `(N, T, 1, S, S)` float tensor."""
    return torch.as_tensor(np.asarray(a, dtype=np.float32), device=device).unsqueeze(2)


def make_batch(seqs: NoduleSequences, rows: np.ndarray, backgrounds: np.ndarray, bg_rows: np.ndarray,
               device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A training batch ``{x, x_removed, m, y, f}`` (sequences `(B, T, 1, S, S)`, ``f`` `(B, F)`).

    Args:
        seqs: the nodule sequences.
        rows: which nodule crops.
        backgrounds: `(M, T, S, S)` background crops ``y``.
        bg_rows: which background crops (same count as ``rows``).
        device: where the tensors go.
        generator: draws one flip/rotation per item (applied alike to ``x``, ``x'``, ``M_n``, and
            independently to ``y``); ``None``: no augmentation.
    """
    rows, bg_rows = np.asarray(rows), np.asarray(bg_rows)
    if len(rows) != len(bg_rows):
        raise ValueError(f"rows ({len(rows)}) and bg_rows ({len(bg_rows)}) must have one length.")
    x, xr, m = _t(seqs.x[rows]), _t(seqs.x_removed[rows]), _t(seqs.m[rows])
    y = _t(backgrounds[bg_rows])
    if generator is not None:
        x, xr, m = augment_batch([x, xr, m], generator)
        (y,) = augment_batch([y], generator)
    f = torch.as_tensor(seqs.f[rows])
    return {k: v.to(device) for k, v in dict(x=x, x_removed=xr, m=m, y=y, f=f).items()}


@torch.no_grad()
def generate(net_G: nn.Module, x_in: np.ndarray, m: np.ndarray, f: np.ndarray, batch_size: int = 64,
             device: torch.device | str = "cpu") -> np.ndarray:
    """Run ``G`` over a set in eval mode.

    Args:
        net_G: the generator.
        x_in: `(N, T, S, S)` inputs (``x'`` or ``y``) in [-1, 1].
        m: `(N, T, S, S)` nodule masks.
        f: `(N, F)` features in [0, 1].
        batch_size: sequences per forward pass.
        device: where to run.

    Returns:
        `(N, T, S, S)` float32 in [-1, 1].
    """
    if not (len(x_in) == len(m) == len(f)):
        raise ValueError(f"x_in, m and f need one length; got {len(x_in)}, {len(m)}, {len(f)}.")
    was = net_G.training
    net_G.eval()
    out = []
    for i in range(0, len(x_in), batch_size):
        sl = slice(i, i + batch_size)
        o = net_G(_t(x_in[sl], device), _t(m[sl], device), torch.as_tensor(f[sl], dtype=torch.float32, device=device))
        out.append(o.squeeze(2).float().cpu().numpy())
    net_G.train(was)
    return np.concatenate(out) if out else np.zeros((0,) + x_in.shape[1:], np.float32)


def train_sqaggan(train: NoduleSequences, backgrounds: np.ndarray, *, generator: str = "sqaggan",
                  g_width: int = 16, d_width: int = 16, lam: Lambdas = Lambdas(), num_steps: int = 100,
                  batch_size: int = 16, lr_G: float = 1e-4, lr_D: float = 1e-4, n_critic: int = 1,
                  seed: int = 0, run_dir: str | Path | None = None, checkpoint_every: int = 0,
                  snapshot_steps: Sequence[int] = (), snapshot_rows: Sequence[int] = (0,),
                  device: torch.device | str = "cpu", amp: bool = False,
                  progress: bool = True) -> tuple[nn.Module, nn.Module, pd.DataFrame, dict[int, np.ndarray]]:
    """Train one SQ-AGGAN (or its ablation) with checkpoints; resumes from ``run_dir``.

    Args:
        train: the training nodule sequences.
        backgrounds: `(M, T, S, S)` training background crops.
        generator: ``"sqaggan"`` or ``"sqaggan_no_lstm"``.
        g_width: generator base width.
        d_width: discriminator base width.
        lam: the loss weights.
        num_steps: generator updates.
        batch_size: sequences per step (at most the smaller of the two sets).
        lr_G: Adam learning rate of ``G`` (betas 0.5, 0.9 as in WGAN-GP).
        lr_D: Adam learning rate of ``D``.
        n_critic: critic steps per generator step.
        seed: seeds the weights, batches and augmentation.
        run_dir: checkpoint folder (``None``: none).
        checkpoint_every: checkpoint period in steps (0: never).
        snapshot_steps: after which steps (1-based counts) to keep the five panels.
        snapshot_rows: which crops of ``train`` the panels show (each with background ``k``).
        device: where to train.
        amp: bf16 autocast on CUDA.
        progress: show a tqdm bar.

    Returns:
        ``(net_G, net_D, history, snapshots)``; ``snapshots[step]`` is `(len(rows), 5, S, S)`:
        original, nodule removed, reconstructed, background, injected (middle slices);
        ``history.attrs["train_seconds"]`` is the wall time of all training steps, summed over
        resumed runs.
    """
    if batch_size > min(len(train), len(backgrounds)):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(train)} nodule or {len(backgrounds)} "
                         "background crops; lower it.")
    torch.manual_seed(seed)
    num_features = train.f.shape[1]
    net_G = define_G(generator, num_features, g_width).to(device)
    net_D = define_D(num_features, d_width).to(device)
    opt_G = torch.optim.Adam(net_G.parameters(), lr=lr_G, betas=(0.5, 0.9))
    opt_D = torch.optim.Adam(net_D.parameters(), lr=lr_D, betas=(0.5, 0.9))
    rows = np.asarray(snapshot_rows)
    fixed = make_batch(train, rows, backgrounds, np.arange(len(rows)) % len(backgrounds), device)
    t_mid = train.x.shape[1] // 2
    extra: dict = {"snapshots": {}, "train_seconds": 0.0}  # checkpointed: a resumed run keeps both
    wanted = set(int(s) for s in snapshot_steps)

    def step_fn(step: int) -> dict[str, float]:
        start = time.perf_counter()
        idx = step_batch_indices(step, len(train), batch_size, seed).numpy()
        bg = step_batch_indices(step, len(backgrounds), batch_size, seed + 1).numpy()
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        batch = make_batch(train, idx, backgrounds, bg, device, gen)
        out = train_step(net_G, net_D, opt_G, opt_D, batch, lam, n_critic=n_critic, amp=amp, step=step)
        if step + 1 in wanted:
            net_G.eval()
            with torch.no_grad():
                g_rec, g_inj = generate_pair(net_G, fixed)
            net_G.train()
            panels = torch.stack([fixed["x"][:, t_mid, 0], fixed["x_removed"][:, t_mid, 0], g_rec[:, t_mid, 0],
                                  fixed["y"][:, t_mid, 0], g_inj[:, t_mid, 0]], dim=1)  # `(R, 5, S, S)`
            extra["snapshots"][step + 1] = panels.float().cpu()
        extra["train_seconds"] += time.perf_counter() - start
        return out

    history = train_loop(step_fn, num_steps, run_dir=run_dir, checkpoint_every=checkpoint_every,
                         models={"G": net_G, "D": net_D}, optimizers={"G": opt_G, "D": opt_D}, extra=extra,
                         progress=progress, desc=generator)
    snaps = {int(k): v.numpy() for k, v in sorted(extra["snapshots"].items())}
    history.attrs["train_seconds"] = float(extra["train_seconds"])
    return net_G, net_D, history, snaps


# --- feature control ---------------------------------------------------------------------------

def nodule_descriptors(x_mid: np.ndarray, m_mid: np.ndarray, ring_px: int = 3) -> np.ndarray:
    """Intensity and shape descriptors of the nodule region of middle slices.

    Per image: mean, std, 10th/50th/90th percentile and maximum inside the mask; the mean of a
    ``ring_px`` ring around it and the contrast (inside minus ring); the mean gradient magnitude
    on the mask border; the mask area; and the 8x8 average-pooled image inside the dilated mask.

    Args:
        x_mid: `(N, S, S)` images in [-1, 1].
        m_mid: `(N, S, S)` bool masks.
        ring_px: width of the surrounding ring.

    Returns:
        `(N, 10 + 64)` float64.
    """
    if x_mid.shape != m_mid.shape or x_mid.ndim != 3:
        raise ValueError(f"x_mid and m_mid must both be (N, S, S); got {x_mid.shape} and {m_mid.shape}.")
    feats = []
    s = x_mid.shape[-1]
    for x, m in zip(x_mid, m_mid.astype(bool)):
        inside = x[m] if m.any() else x.ravel()
        grown = ndimage.binary_dilation(m, iterations=ring_px)
        ring = x[grown & ~m] if (grown & ~m).any() else x.ravel()
        border = m & ~ndimage.binary_erosion(m)
        grad = np.hypot(*np.gradient(x))
        pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy((x * grown)[None, None].astype(np.float32)),
                                                         8).numpy().ravel()
        feats.append(np.r_[inside.mean(), inside.std(), np.percentile(inside, [10, 50, 90]), inside.max(),
                           ring.mean(), inside.mean() - ring.mean(), grad[border].mean() if border.any() else 0.0,
                           m.sum() / (s * s), pooled])
    return np.asarray(feats, dtype=np.float64)


def fit_feature_regressor(x_mid: np.ndarray, m_mid: np.ndarray, target: np.ndarray):
    """Ridge regression (alpha by leave-one-out CV) from :func:`nodule_descriptors` to a rating.

    Args:
        x_mid: `(N, S, S)` real nodule middle slices in [-1, 1].
        m_mid: `(N, S, S)` their masks.
        target: `(N,)` the rating (e.g. malignancy 1..5).

    Returns:
        A fitted scikit-learn pipeline; ``predict(nodule_descriptors(x, m))`` gives ratings.
    """
    target = np.asarray(target, dtype=np.float64)
    if len(target) != len(x_mid) or len(np.unique(target)) < 2:
        raise ValueError("target needs one value per image and at least two distinct values.")
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    return model.fit(nodule_descriptors(x_mid, m_mid), target)


def spearman_ci(requested: np.ndarray, measured: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                seed: int = 0) -> tuple[float, float, float]:
    """Mean within-group Spearman correlation of requested vs measured ratings, with a bootstrap CI.

    For each group (one fixed background or erased nodule, asked for every level) the Spearman
    correlation between the requested levels and the ratings read back; groups whose read-back
    ratings are all equal (undefined correlation) count as 0. The mean over groups and its 95%
    bootstrap interval (resampling groups) are returned.

    Args:
        requested: `(N,)` requested ratings.
        measured: `(N,)` ratings read back by the regressor.
        groups: `(N,)` the input each pair was made from.
        n_boot: resamples.
        seed: the seed of the resampling.

    Returns:
        ``(rho, low, high)``.
    """
    requested, measured, groups = (np.asarray(a) for a in (requested, measured, groups))
    if not (len(requested) == len(measured) == len(groups)):
        raise ValueError("requested, measured and groups need one length.")
    rhos = []
    for g in np.unique(groups):
        sel = groups == g
        if len(np.unique(requested[sel])) < 2:
            raise ValueError(f"group {g} has a single requested level; ask for at least two levels per input.")
        r = spearmanr(requested[sel], measured[sel]).statistic
        rhos.append(float(r) if np.isfinite(r) else 0.0)
    return mean_ci(np.array(rhos), n_boot=n_boot, seed=seed)


def feature_control(net_G: nn.Module, regressor, backgrounds: np.ndarray, masks: np.ndarray, base_f: np.ndarray,
                    feature_index: int, levels: Sequence[float] = (1, 2, 3, 4, 5), mode: str = "inject",
                    device: torch.device | str = "cpu", seed: int = 0) -> dict[str, object]:
    """Ask ``G`` for each rating level on fixed inputs and read the rating back with ``regressor``.

    Args:
        net_G: the generator.
        regressor: from :func:`fit_feature_regressor`, for the feature being varied.
        backgrounds: `(N, T, S, S)` fixed inputs: ``y`` (injection) or ``x'`` (reconstruction).
        masks: `(N, T, S, S)` the nodule masks to fill.
        base_f: `(N, F)` features in [0, 1]; column ``feature_index`` is replaced by each level.
        feature_index: which feature is varied.
        levels: ratings 1..5 to request.
        mode: ``"inject"`` or ``"reconstruct"`` (only labels the result).
        device: where to run.
        seed: the seed of the bootstrap.

    Returns:
        ``rho``, ``ci`` (see :func:`spearman_ci`: direction), ``mae`` (mean absolute difference
        between read-back and requested ratings: magnitude), ``per_level`` (mean read-back rating
        per level), ``table`` (a frame of ``input, requested, measured``).
    """
    from medgan_core.data.nodule_sequences import scale_features

    if mode not in ("inject", "reconstruct"):
        raise ValueError(f"mode must be 'inject' or 'reconstruct', got {mode!r}.")
    t_mid = backgrounds.shape[1] // 2
    rows = []
    for level in levels:
        f = np.array(base_f, dtype=np.float32, copy=True)
        f[:, feature_index] = scale_features(level)
        out = generate(net_G, backgrounds, masks, f, device=device)
        measured = regressor.predict(nodule_descriptors(out[:, t_mid], masks[:, t_mid].astype(bool)))
        rows += [{"input": i, "requested": float(level), "measured": float(v)} for i, v in enumerate(measured)]
    table = pd.DataFrame(rows)
    rho, lo, hi = spearman_ci(table["requested"], table["measured"], table["input"], seed=seed)
    mae = float((table["measured"] - table["requested"]).abs().mean())
    per_level = table.groupby("requested")["measured"].mean().to_dict()
    return {"mode": mode, "rho": rho, "ci": (lo, hi), "mae": mae, "per_level": per_level, "table": table}


# --- background preservation and continuity ----------------------------------------------------

def background_error(out: np.ndarray, ref: np.ndarray, region: np.ndarray, data_range: float = 2.0) -> pd.DataFrame:
    """Per-sample L1 and PSNR between ``out`` and ``ref`` outside ``region`` (all slices).

    ``PSNR = 10 log10(data_range^2 / MSE)`` over the pixels outside the region.

    Args:
        out: `(N, T, S, S)` generated sequences.
        ref: `(N, T, S, S)` the inputs they should equal outside the region.
        region: `(N, T, S, S)` bool region excluded (the nodule / removal region).
        data_range: the intensity span (2 for [-1, 1]).

    Returns:
        A frame with columns ``l1`` and ``psnr`` (one row per sample).
    """
    if not (out.shape == ref.shape == region.shape):
        raise ValueError(f"out, ref and region need one shape; got {out.shape}, {ref.shape}, {region.shape}.")
    keep = ~region.astype(bool)
    n = keep.reshape(len(out), -1).sum(axis=1).clip(min=1)
    diff = (out - ref) * keep
    l1 = np.abs(diff).reshape(len(out), -1).sum(axis=1) / n
    mse = (diff ** 2).reshape(len(out), -1).sum(axis=1) / n
    psnr = 10.0 * np.log10(data_range ** 2 / np.maximum(mse, 1e-12))
    return pd.DataFrame({"l1": l1, "psnr": psnr})


def continuity(seqs: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring slices inside ``region``, per sequence.

    ``mean_{t, p in R} |s_{t+1}(p) - s_t(p)|`` with ``R`` the union of the region over slices;
    lower is smoother. Compare generated sequences with the real ones on the same region.

    Args:
        seqs: `(N, T, S, S)` sequences, ``T >= 2``.
        region: `(N, T, S, S)` bool (e.g. the nodule removal region).

    Returns:
        `(N,)` float64.
    """
    if seqs.shape != region.shape or seqs.ndim != 4 or seqs.shape[1] < 2:
        raise ValueError(f"seqs and region must both be (N, T >= 2, S, S); got {seqs.shape} and {region.shape}.")
    r = region.astype(bool).any(axis=1)  # `(N, S, S)`
    d = np.abs(np.diff(seqs, axis=1)).mean(axis=1)  # `(N, S, S)`
    return np.array([d[i][r[i]].mean() if r[i].any() else np.nan for i in range(len(seqs))])


# --- cost ---------------------------------------------------------------------------------------

def saved_activation_bytes(fn: Callable[[], object], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of the tensors autograd saves for the backward pass while ``fn()`` runs.

    Counted through :func:`torch.autograd.graph.saved_tensors_hooks` (each storage once),
    skipping the storages of ``exclude`` (pass the model parameters: they are memory anyway).
    This is the activation memory a training step holds before ``backward()``.

    Args:
        fn: runs a training step (or a forward pass).
        exclude: tensors whose storage is not counted.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            key = t.untyped_storage().data_ptr()
            if key not in skip:
                seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except RuntimeError:  # tensors without storage (sparse, meta)
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return int(sum(seen.values()))


def training_memory_estimate(make_step: Callable[[int], tuple[nn.Module, nn.Module, Callable[[], object]]],
                             batch: int, probe_batch: int = 1) -> dict[str, float]:
    """Estimate a training step's memory at ``batch`` from activations counted at two small batches.

    ``memory(B) = 16 bytes x parameters (fp32 weights, gradients, Adam's two moments)
    + fixed + B x per_sample``, where ``per_sample`` and ``fixed`` (e.g. bf16 copies of the
    weights under autocast) come from :func:`saved_activation_bytes` at ``probe_batch`` and
    ``2 probe_batch``. Allocator overhead and workspaces are not included.

    Args:
        make_step: ``make_step(b) -> (net_G, net_D, step)`` builds fresh models and a step at batch ``b``.
        batch: the batch to estimate for.
        probe_batch: the smaller of the two batches actually run.

    Returns:
        ``{"parameters", "per_sample_mb", "fixed_mb", "training_memory_mb"}``.
    """
    counts = []
    for b in (probe_batch, 2 * probe_batch):
        g, d, step = make_step(b)
        params = list(g.parameters()) + list(d.parameters())
        counts.append(saved_activation_bytes(step, exclude=params))
    per_sample = max(counts[1] - counts[0], 0) / probe_batch
    fixed = max(counts[0] - per_sample * probe_batch, 0)
    n = sum(p.numel() for p in params)
    total = 16 * n + fixed + per_sample * batch
    return {"parameters": int(n), "per_sample_mb": per_sample / 2**20, "fixed_mb": fixed / 2**20,
            "training_memory_mb": total / 2**20}


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (``VmHWM``; falls back to the current RSS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return psutil.Process().memory_info().rss


def measure_step(step: Callable[[], object], n_steps: int = 3) -> dict[str, float]:
    """Time a training step and measure the process's peak memory growth while it runs.

    The memory baseline is taken *before* the first (warm-up) call, so the growth includes
    Adam's moments, gradients and the activations of a step; then ``n_steps`` calls are timed.
    Peak memory is the Linux ``VmHWM`` after resetting it (else the RSS after the steps).

    Args:
        step: one training step.
        n_steps: timed repetitions.

    Returns:
        ``{"seconds_per_step", "peak_rss_increase_mb", "peak_rss_mb"}``.
    """
    base = psutil.Process().memory_info().rss
    exact = _reset_peak_rss()
    step()
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    seconds = (time.perf_counter() - start) / n_steps
    peak = _peak_rss() if exact else max(_peak_rss(), psutil.Process().memory_info().rss)
    return {"seconds_per_step": seconds, "peak_rss_increase_mb": max(peak - base, 0) / 2**20,
            "peak_rss_mb": peak / 2**20}


# --- figure -------------------------------------------------------------------------------------

PANEL_TITLES = ("original x", "nodule removed x'", "reconstructed G(x')", "background y", "injected G(y)")


def plot_five_panel(snapshots: dict[int, np.ndarray], steps_per_epoch: float, row: int = 0) -> plt.Figure:
    """The write-up's five panels (one row per kept step) for one example.

    Args:
        snapshots: ``{step: (R, 5, S, S)}`` from :func:`train_sqaggan`.
        steps_per_epoch: to label rows in epochs.
        row: which example.
    """
    if not snapshots:
        raise ValueError("no snapshots were kept; pass snapshot_steps to train_sqaggan.")
    steps = sorted(snapshots)
    fig, axes = plt.subplots(len(steps), 5, figsize=(9, 1.9 * len(steps)), squeeze=False)
    for r, s in enumerate(steps):
        for c in range(5):
            ax = axes[r, c]
            ax.imshow(snapshots[s][row, c], cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(PANEL_TITLES[c], fontsize=9)
        axes[r, 0].set_ylabel(f"epoch {s / steps_per_epoch:.0f}\n(step {s})", fontsize=9)
    fig.tight_layout()
    return fig


def pick_test_fold(folds: list[dict[str, np.ndarray]], meta: pd.DataFrame) -> int:
    """The fold whose held-out nodules span the most malignancy levels (ties: more training slices).

    Decided from the labels alone, before any training.

    Args:
        folds: from :func:`medgan_core.data.imbalance.grouped_kfold`.
        meta: per-slice rows with ``nodule_id`` and ``malignancy``.
    """
    if not folds:
        raise ValueError("no folds given.")
    def score(k: int) -> tuple[int, int]:
        held = meta.iloc[folds[k]["test"]]
        return held.groupby("nodule_id")["malignancy"].first().nunique(), len(folds[k]["train"])
    return max(range(len(folds)), key=score)
