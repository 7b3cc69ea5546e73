"""Experiment 01 (blood-cell BAGAN study): data tasks, the four generators' training loops, tables, figures.

What lives here, in reading order:

- **Data**: :func:`load_task_a` (every VOC box cropped to a square cell image: RBC / WBC /
  platelets) and :func:`load_task_b` (the white cell of each smear with its subtype), both split
  by source smear (the repository's ``train/val/test`` image lists).
- **Training**: :func:`train_generator` trains one of :data:`GENERATORS` (``dcgan`` = one
  unconditional DCGAN per class, ``cwgan_gp``, ``bagan``, ``bagan_gp``) on uint8 images and
  labels, with checkpoints and resume through :func:`medgan_core.train.train_loop` in a run folder
  named after a hash of the data and settings (a changed setting never resumes a stale run).
  It returns a :class:`GanRun`: a class-conditional sampler, the loss history, sample grids at
  several epochs, and the compute numbers (parameters, seconds per epoch, peak memory).
- **Evaluation**: :func:`fidelity_study` (FID with a bootstrap CI, KID with its CI,
  precision/recall, density/coverage, MS-SSIM, per class and pooled, beside the real-vs-real
  reference), :func:`writeup_table` (the write-up's layout and numbers beside ours),
  :func:`induced_imbalance` (minority recall as the minority class is thinned out).
- **Figures**: :func:`snapshot_figure`, :func:`loss_figure`, :func:`pair_rows_figure`,
  :func:`class_rows_figure`, :func:`imbalance_figure`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from medgan_core.data import bccd
from medgan_core.data.datasets import to_tensor_images, to_uint8_images
from medgan_core.data.imbalance import subsample_class
from medgan_core.losses import get_losses
from medgan_core.metrics.diversity import ms_ssim_diversity
from medgan_core.metrics.fidelity import fidelity_row
from medgan_core.metrics.utility import run_utility_study
from medgan_core.models import bagan, cgan, dcgan
from medgan_core.train import adversarial_step, amp_context, check_finite, step_batch_indices, train_loop

GENERATORS = ("dcgan", "cwgan_gp", "bagan", "bagan_gp")
LABELS = {"dcgan": "DCGAN (per class)", "cwgan_gp": "cond. WGAN-GP", "bagan": "BAGAN", "bagan_gp": "BAGAN-GP"}
REFERENCE = "real (val vs train)"
# The write-up's FIDs (its own feature space and sample size; "all types" only).
WRITEUP_FID = {("all", REFERENCE): 0.004, ("all", "dcgan"): 0.835, ("all", "cwgan_gp"): 0.039, ("all", "bagan"): 0.038}

Split = tuple[np.ndarray, np.ndarray]  # uint8 images `(N, S, S, 3)`, int64 labels `(N,)`


# --- data -------------------------------------------------------------------------------------

def _by_split(images: np.ndarray, frame: pd.DataFrame) -> dict[str, Split]:
    """``{split: (images, labels)}`` from crops and their frame (``split``, ``label_idx``)."""
    return {s: (images[(frame.split == s).to_numpy()], frame.label_idx.to_numpy()[(frame.split == s).to_numpy()])
            for s in bccd.SPLITS}


def load_task_a(size: int, data_dir: str | os.PathLike | None = None, max_smears_per_split: int = 0,
                progress: bool = False) -> tuple[dict[str, Split], list[str]]:
    """Task A: every non-degenerate VOC box as a square cell crop, split by source smear.

    Args:
        size: crop side in pixels.
        data_dir: the data folder (``None``: ``$MEDGAN_DATA``, then ``./data``).
        max_smears_per_split: keep only the first this many smears of each split (0 = all; smoke runs).
        progress: show a progress bar while cropping.

    Returns:
        ``({"train"|"val"|"test": (images, labels)}, class names)`` with labels indexing
        :data:`medgan_core.data.bccd.CLASSES`.
    """
    if max_smears_per_split < 0:
        raise ValueError(f"max_smears_per_split must be >= 0 (0 = all), got {max_smears_per_split}.")
    boxes = bccd.load_index(data_dir)
    if max_smears_per_split:
        keep = [i for s in bccd.SPLITS for i in sorted(boxes[boxes.split == s].image_id.unique())[:max_smears_per_split]]
        boxes = boxes[boxes.image_id.isin(keep)]
    images, frame = bccd.crop_cells(boxes, size, data_dir, progress=progress)
    return _by_split(images, frame), list(bccd.CLASSES)


def load_task_b(size: int, data_dir: str | os.PathLike | None = None, min_count: int = 10,
                progress: bool = False) -> tuple[dict[str, Split], list[str], pd.DataFrame]:
    """Task B: the largest WBC box of each usable subtype-labelled smear, split by smear.

    Args:
        size: crop side in pixels.
        data_dir: the data folder.
        min_count: subtypes with fewer usable smears are dropped (basophils: 3).
        progress: show a progress bar while cropping.

    Returns:
        ``(splits, class names, exclusions)``: exclusions counts the CSV rows left out per
        reason (``no image``, ``blank``, ``two subtypes``, ``basophil (3 images)``) and the
        usable smears without a WBC box.
    """
    images, frame = bccd.wbc_crops(size, data_dir, min_count=min_count, progress=progress)
    table = bccd.wbc_subtypes(data_dir, min_count=min_count)
    reasons = table.loc[~table.usable, "excluded_reason"].value_counts()
    no_box = int((table.usable & (table.n_wbc_boxes == 0)).sum())
    exclusions = pd.concat([reasons, pd.Series({"usable label but no WBC box": no_box})]).rename("rows").to_frame()
    exclusions.index.name = "excluded because"
    return _by_split(images, frame), list(frame.attrs["classes"]), exclusions


def class_count_table(splits: Mapping[str, Split], classes: Sequence[str]) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with totals.

    Args:
        splits: ``{split: (images, labels)}``.
        classes: class names in label order.
    """
    table = pd.DataFrame({s: np.bincount(y, minlength=len(classes)) for s, (_, y) in splits.items()},
                         index=pd.Index(list(classes), name="class"))
    table["total"] = table.sum(1)
    return table


# --- training -----------------------------------------------------------------------------------

@dataclass
class GanConfig:
    """Settings shared by the four generators (the notebook's parameters).

    Args:
        nz: latent (and autoencoder code) size.
        width_G: generator width.
        width_D: discriminator width.
        batch_size: real images per step.
        steps: generator steps (for ``dcgan``: per class).
        lr: Adam learning rate of the GANs.
        n_critic: critic steps per generator step (WGAN-GP and BAGAN-GP).
        gp_weight: gradient-penalty weight (10 in WGAN-GP).
        ae_steps: autoencoder steps (BAGAN, BAGAN-GP).
        ae_lr: autoencoder learning rate.
        snapshots: how many sample grids to keep over training (evenly spaced).
        snapshot_n: images per class in each grid.
        checkpoint_every: steps between checkpoints (0: only at the end).
        device: where to train.
        amp: bf16 autocast on CUDA.
    """

    nz: int = 64
    width_G: int = 16
    width_D: int = 16
    batch_size: int = 32
    steps: int = 200
    lr: float = 2e-4
    n_critic: int = 2
    gp_weight: float = 10.0
    ae_steps: int = 200
    ae_lr: float = 1e-3
    snapshots: int = 4
    snapshot_n: int = 6
    checkpoint_every: int = 0
    device: str = "cpu"
    amp: bool = False

    def __post_init__(self) -> None:
        for name in ("nz", "width_G", "width_D", "batch_size", "steps", "n_critic", "ae_steps", "snapshots", "snapshot_n"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"GanConfig.{name} must be >= 1, got {getattr(self, name)}.")


@dataclass
class GanRun:
    """A trained generator and what the report shows about its training.

    Args:
        name: one of :data:`GENERATORS`.
        num_classes: number of classes it generates.
        sample_tensor: ``(cls, n, seed) -> (n, C, S, S)`` float in [-1, 1].
        history: loss history (one row per step; ``class`` column for per-class DCGANs).
        snapshots: ``{step: {cls: uint8 (n, S, S, 3)}}`` fixed-latent samples over training.
        seconds: training wall time (the autoencoder's included for BAGAN and BAGAN-GP).
        steps: generator steps (summed over classes for per-class DCGANs).
        seconds_per_epoch: training seconds per pass over the training images.
        n_params: parameters of generator + discriminator (all classes for per-class DCGANs).
        peak_memory_mb: peak training memory (measured on CUDA; estimated on CPU, see :func:`training_memory_mb`).
        autoencoder: for BAGAN models: ``{"history", "real", "recon", "seconds", "n_params"}``.
    """

    name: str
    num_classes: int
    sample_tensor: Callable[[int, int, int], torch.Tensor]
    history: pd.DataFrame
    snapshots: dict[int, dict[int, np.ndarray]]
    seconds: float
    steps: int
    seconds_per_epoch: float
    n_params: int
    peak_memory_mb: float
    autoencoder: dict[str, Any] | None = field(default=None, repr=False)

    def sample(self, cls: int, n: int, seed: int) -> np.ndarray:
        """``n`` uint8 images `(n, S, S, 3)` of class ``cls`` (the utility study's sampler signature).

        Args:
            cls: class index.
            n: number of images.
            seed: seed of the latents.
        """
        if not 0 <= int(cls) < self.num_classes:
            raise ValueError(f"{self.name}: class {cls} is outside 0..{self.num_classes - 1}.")
        return to_uint8_images(self.sample_tensor(int(cls), int(n), int(seed)), squeeze_gray=False)


def _run_folder(root: str | Path, name: str, x: np.ndarray, y: np.ndarray, settings: dict) -> Path:
    """``root/name_<12 hex>``: the hash covers the images, labels and settings."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(x).data)
    h.update(np.ascontiguousarray(y).astype(np.int64).data)
    return Path(root) / f"{name}_{h.hexdigest()[:12]}"


def training_memory_mb(models: Sequence[nn.Module], batch: Sequence[Callable[[], Any]]) -> float:
    """Estimated peak training memory on the CPU, in MiB.

    Parameters, gradients and Adam's two moments (16 bytes per float32 parameter) plus every
    module output kept for the backward pass in one forward call of each ``batch`` closure
    (counted with forward hooks on leaf modules).

    Args:
        models: the networks being trained.
        batch: closures that each run one forward pass (e.g. ``lambda: net_D(net_G(z))``).
    """
    total = 16 * sum(p.numel() for m in models for p in m.parameters())
    acts = [0]

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            acts[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for net in models for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            for run in batch:
                run()
    finally:
        for handle in handles:
            handle.remove()
    return (total + acts[0]) / 2**20


def _snapshot_steps(steps: int, count: int) -> list[int]:
    """``count`` evenly spaced steps ending at ``steps`` (1-based, distinct)."""
    return sorted({max(1, int(round(steps * (i + 1) / count))) for i in range(count)})


def _fit(step_fn: Callable[[int], dict], steps: int, run_dir: Path, models: dict, optimizers: dict,
         snap: Callable[[], dict[int, np.ndarray]], cfg: GanConfig, desc: str,
         progress: bool) -> tuple[pd.DataFrame, dict[int, dict[int, np.ndarray]], float]:
    """Run :func:`train_loop` with fixed-latent snapshots and accumulated training seconds."""
    extra: dict[str, Any] = {"snapshots": {}, "seconds": 0.0}
    snap_at = set(_snapshot_steps(steps, cfg.snapshots))

    def wrapped(step: int) -> dict:
        t0 = time.perf_counter()
        out = step_fn(step)
        if step + 1 in snap_at:
            extra["snapshots"][str(step + 1)] = {str(c): torch.from_numpy(v) for c, v in snap().items()}
        extra["seconds"] = float(extra["seconds"] + time.perf_counter() - t0)
        return out

    history = train_loop(wrapped, steps, run_dir=run_dir, models=models, optimizers=optimizers,
                         checkpoint_every=cfg.checkpoint_every or steps, keep_last=1, extra=extra,
                         progress=progress, desc=desc)
    snaps = {int(s): {int(c): v.numpy() for c, v in d.items()} for s, d in extra["snapshots"].items()}
    return history, snaps, float(extra["seconds"])


def _adam(net: nn.Module, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(net.parameters(), lr=lr, betas=betas)


def _peak(device: torch.device, fallback: Callable[[], float]) -> float:
    """CUDA's peak allocated memory in MiB, else the CPU estimate."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return fallback()


def _train_dcgan(x: torch.Tensor, y: torch.Tensor, k: int, cfg: GanConfig, root: Path, seed: int,
                 progress: bool) -> GanRun:
    """One unconditional DCGAN per class; the class picks the generator."""
    dev = torch.device(cfg.device)
    d_loss, g_loss = get_losses("nonsaturating")
    nets, histories, snaps, seconds, n_params, mem = {}, [], {}, 0.0, 0, 0.0
    image_size = x.shape[-1]
    for c in range(k):
        x_c = x[y == c].to(dev)  # `(n_c, 3, S, S)`
        torch.manual_seed(seed + c)
        net_G, net_D = dcgan.build_dcgan(cfg.nz, image_size, x.shape[1], cfg.width_G, cfg.width_D)
        net_G, net_D = net_G.to(dev), net_D.to(dev)
        opt_G, opt_D = _adam(net_G, cfg.lr, (0.5, 0.999)), _adam(net_D, cfg.lr, (0.5, 0.999))
        bs = min(cfg.batch_size, len(x_c))

        def step_fn(step: int, x_c=x_c, net_G=net_G, net_D=net_D, opt_G=opt_G, opt_D=opt_D, bs=bs, c=c) -> dict:
            x_real = x_c[step_batch_indices(step, len(x_c), bs, seed + c).to(dev)]
            return adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                                    sample_z=lambda n: torch.randn(n, cfg.nz, device=dev), step=step, amp=cfg.amp)

        def snap(net_G=net_G, c=c) -> dict[int, np.ndarray]:
            return {c: to_uint8_images(dcgan.sample(net_G, cfg.snapshot_n, 10_000), squeeze_gray=False)}

        run_dir = _run_folder(root, f"dcgan_c{c}", x_c.cpu().numpy(), np.full(len(x_c), c), vars(cfg) | {"seed": seed})
        hist, sn, secs = _fit(step_fn, cfg.steps, run_dir, {"G": net_G, "D": net_D}, {"G": opt_G, "D": opt_D},
                              snap, cfg, f"DCGAN class {c}", progress)
        histories.append(hist.assign(**{"class": c}))
        for s, d in sn.items():
            snaps.setdefault(s, {}).update(d)
        seconds += secs
        n_params += dcgan.count_parameters(net_G) + dcgan.count_parameters(net_D)
        z = torch.randn(bs, cfg.nz, device=dev)
        mem = max(mem, _peak(dev, lambda: training_memory_mb([net_G, net_D], [lambda: net_D(net_G(z)),
                                                                               lambda: net_D(x_c[:bs])])))
        nets[c] = net_G
    epochs = cfg.steps * cfg.batch_size * k / len(x)  # every class's DCGAN ran `steps` steps

    def sample_tensor(cls: int, n: int, seed_: int) -> torch.Tensor:
        return dcgan.sample(nets[cls], n, seed_)

    return GanRun("dcgan", k, sample_tensor, pd.concat(histories, ignore_index=True), snaps, seconds,
                  cfg.steps * k, seconds / max(epochs, 1e-9), n_params, mem)


def _train_cwgan(x: torch.Tensor, y: torch.Tensor, k: int, cfg: GanConfig, root: Path, seed: int,
                 progress: bool) -> GanRun:
    """The conditional WGAN-GP; the ``n_critic`` critic steps of one step see the same real batch."""
    dev = torch.device(cfg.device)
    d_loss, g_loss = get_losses("wgan")
    torch.manual_seed(seed)
    net_G, net_D = cgan.build_cwgan_gp(k, cfg.nz, x.shape[-1], x.shape[1], cfg.width_G, cfg.width_D)
    net_G, net_D = net_G.to(dev), net_D.to(dev)
    opt_G, opt_D = _adam(net_G, cfg.lr, (0.5, 0.9)), _adam(net_D, cfg.lr, (0.5, 0.9))
    x_d, y_d = x.to(dev), y.to(dev)
    bs = min(cfg.batch_size, len(x))

    def step_fn(step: int) -> dict:
        idx = step_batch_indices(step, len(x), bs, seed).to(dev)
        x_real, y_real = x_d[idx], y_d[idx]
        return adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                                make_fake=lambda n: net_G(torch.randn(n, cfg.nz, device=dev), y_real),
                                cond=(y_real,), n_critic=cfg.n_critic, gp_weight=cfg.gp_weight, step=step, amp=cfg.amp)

    def snap() -> dict[int, np.ndarray]:
        return {c: to_uint8_images(cgan.sample_class(net_G, c, cfg.snapshot_n, 10_000), squeeze_gray=False)
                for c in range(k)}

    run_dir = _run_folder(root, "cwgan_gp", x.numpy(), y.numpy(), vars(cfg) | {"seed": seed})
    hist, snaps, secs = _fit(step_fn, cfg.steps, run_dir, {"G": net_G, "D": net_D}, {"G": opt_G, "D": opt_D},
                             snap, cfg, "cond. WGAN-GP", progress)
    z, yb = torch.randn(bs, cfg.nz, device=dev), y_d[:bs]
    mem = _peak(dev, lambda: training_memory_mb([net_G, net_D], [lambda: net_D(net_G(z, yb), yb)] * (cfg.n_critic + 2)))
    n_params = dcgan.count_parameters(net_G) + dcgan.count_parameters(net_D)
    epochs = cfg.steps * bs / len(x)
    return GanRun("cwgan_gp", k, lambda c, n, s: cgan.sample_class(net_G, c, n, s), hist, snaps, secs, cfg.steps,
                  secs / max(epochs, 1e-9), n_params, mem)


def train_autoencoder(x: torch.Tensor, cfg: GanConfig, root: str | Path, seed: int, progress: bool = False,
                      n_show: int = 8) -> tuple[bagan.Autoencoder, dict[str, Any]]:
    """Stage 1 of BAGAN: the autoencoder on all training images (cached by its run folder).

    Args:
        x: training images `(N, 3, S, S)` in [-1, 1].
        cfg: the settings (``nz``, widths, ``ae_steps``, ``ae_lr``, ``batch_size``).
        root: the folder of run folders.
        seed: the run's seed.
        progress: show a progress bar.
        n_show: images kept for the reconstruction figure.

    Returns:
        ``(autoencoder, info)``; info holds ``history``, ``real`` and ``recon`` (uint8 rows for
        the figure), ``seconds`` and ``n_params``.
    """
    dev = torch.device(cfg.device)
    torch.manual_seed(seed)
    ae = bagan.build_autoencoder(cfg.nz, x.shape[-1], x.shape[1], cfg.width_D, cfg.width_G).to(dev)
    opt = _adam(ae, cfg.ae_lr, (0.5, 0.999))
    x_d, bs = x.to(dev), min(cfg.batch_size, len(x))

    def step_fn(step: int) -> dict:
        x_real = x_d[step_batch_indices(step, len(x), bs, seed).to(dev)]
        with amp_context(dev, cfg.amp):
            loss = bagan.reconstruction_loss(x_real, ae(x_real).float())
        check_finite("loss_AE", loss, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss_AE": loss.item()}

    run_dir = _run_folder(root, "autoencoder", x.numpy(), np.zeros(1), vars(cfg) | {"seed": seed})
    hist, _, secs = _fit(step_fn, cfg.ae_steps, run_dir, {"AE": ae}, {"AE": opt}, dict, cfg, "autoencoder", progress)
    show = x[np.random.default_rng(seed).choice(len(x), min(n_show, len(x)), replace=False)]
    ae.eval()
    with torch.no_grad():
        recon = ae(show.to(dev)).float().cpu()
    info = {"history": hist, "real": to_uint8_images(show, squeeze_gray=False),
            "recon": to_uint8_images(recon, squeeze_gray=False), "seconds": secs,
            "n_params": dcgan.count_parameters(ae)}
    return ae, info


def _train_bagan(x: torch.Tensor, y: torch.Tensor, k: int, cfg: GanConfig, root: Path, seed: int,
                 progress: bool, variant: str) -> GanRun:
    """BAGAN (``variant="bagan"``) or BAGAN-GP (``"bagan_gp"``), started from the autoencoder."""
    dev = torch.device(cfg.device)
    ae, ae_info = train_autoencoder(x, cfg, root, seed, progress)
    latent = bagan.ClassLatent(k, cfg.nz).fit(bagan.encode(ae.encoder, x), y).to(dev)
    torch.manual_seed(seed)
    net_G, net_D = bagan.MODELS[variant](ae, k)
    net_G, net_D = net_G.to(dev), net_D.to(dev)
    betas = (0.5, 0.9) if variant == "bagan_gp" else (0.5, 0.999)
    opt_G, opt_D = _adam(net_G, cfg.lr, betas), _adam(net_D, cfg.lr, betas)
    x_d, y_d, bs = x.to(dev), y.to(dev), min(cfg.batch_size, len(x))

    if variant == "bagan_gp":
        d_loss, g_loss = get_losses("wgan")

        def step_fn(step: int) -> dict:
            idx = step_batch_indices(step, len(x), bs, seed).to(dev)
            x_real, y_real = x_d[idx], y_d[idx]
            return adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                                    make_fake=lambda n: net_G(latent.sample(y_real)), cond=(y_real,),
                                    n_critic=cfg.n_critic, gp_weight=cfg.gp_weight, step=step, amp=cfg.amp)
    else:
        def step_fn(step: int) -> dict:
            idx = step_batch_indices(step, len(x), bs, seed).to(dev)
            x_real, y_real = x_d[idx], y_d[idx]
            y_fake = torch.randint(k, (bs,), device=dev)  # classes drawn uniformly, as in BAGAN
            with amp_context(dev, cfg.amp):
                with torch.no_grad():
                    x_fake = net_G(latent.sample(y_fake))
                loss_D = bagan.d_bagan(net_D(x_real).float(), y_real, net_D(x_fake).float())
            check_finite("loss_D", loss_D, step)
            opt_D.zero_grad(set_to_none=True)
            loss_D.backward()
            opt_D.step()
            net_D.requires_grad_(False)
            with amp_context(dev, cfg.amp):
                loss_G = bagan.g_bagan(net_D(net_G(latent.sample(y_fake))).float(), y_fake)
            net_D.requires_grad_(True)
            check_finite("loss_G", loss_G, step)
            opt_G.zero_grad(set_to_none=True)
            loss_G.backward()
            opt_G.step()
            return {"loss_D": loss_D.item(), "loss_G": loss_G.item()}

    def snap() -> dict[int, np.ndarray]:
        return {c: to_uint8_images(bagan.sample_class(net_G, latent, c, cfg.snapshot_n, 10_000), squeeze_gray=False)
                for c in range(k)}

    run_dir = _run_folder(root, variant, x.numpy(), y.numpy(), vars(cfg) | {"seed": seed})
    hist, snaps, secs = _fit(step_fn, cfg.steps, run_dir, {"G": net_G, "D": net_D, "latent": latent},
                             {"G": opt_G, "D": opt_D}, snap, cfg, LABELS[variant], progress)
    yb = y_d[:bs]
    if variant == "bagan_gp":
        calls = [lambda: net_D(net_G(latent.sample(yb)), yb)] * (cfg.n_critic + 2)
    else:
        calls = [lambda: net_D(net_G(latent.sample(yb)))] * 3
    mem = _peak(dev, lambda: training_memory_mb([net_G, net_D], calls))
    n_params = dcgan.count_parameters(net_G) + dcgan.count_parameters(net_D)
    epochs = cfg.steps * bs / len(x)
    ae_info["latent"] = latent
    return GanRun(variant, k, lambda c, n, s: bagan.sample_class(net_G, latent, c, n, s), hist, snaps,
                  secs + ae_info["seconds"], cfg.steps, secs / max(epochs, 1e-9), n_params, mem, ae_info)


def train_generator(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int, cfg: GanConfig,
                    root: str | Path, seed: int, progress: bool = False) -> GanRun:
    """Train one of :data:`GENERATORS` on real images (resuming from ``root`` if a run is there).

    Args:
        name: ``"dcgan"``, ``"cwgan_gp"``, ``"bagan"`` or ``"bagan_gp"``.
        images: training images, uint8 `(N, S, S, 3)` (S a power of two).
        labels: their classes `(N,)` in ``0..num_classes-1``.
        num_classes: number of classes ``K``.
        cfg: the settings.
        root: the folder that holds one run folder per model and data hash.
        seed: the run's seed.
        progress: show progress bars.

    Returns:
        The :class:`GanRun`.
    """
    if name not in GENERATORS:
        raise ValueError(f"Unknown generator {name!r}; valid names: {list(GENERATORS)}.")
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    if len(counts) != num_classes or (counts < 2).any():
        raise ValueError(f"{name}: every class needs >= 2 training images, got counts {counts.tolist()} "
                         f"for {num_classes} classes.")
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square uint8 (N, S, S, 3), got {images.shape}.")
    x = to_tensor_images(images)  # `(N, 3, S, S)` in [-1, 1]
    y = torch.from_numpy(labels)
    dev = torch.device(cfg.device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    root = Path(root)
    if name == "dcgan":
        return _train_dcgan(x, y, num_classes, cfg, root, seed, progress)
    if name == "cwgan_gp":
        return _train_cwgan(x, y, num_classes, cfg, root, seed, progress)
    return _train_bagan(x, y, num_classes, cfg, root, seed, progress, name)


def compute_table(runs: Mapping[str, GanRun], device: str) -> pd.DataFrame:
    """Parameters, steps, seconds per epoch, total seconds and peak memory per model.

    Args:
        runs: ``{name: GanRun}``.
        device: the device name, for the memory column's label.
    """
    mem_label = "peak memory (MiB, measured)" if device.startswith("cuda") else "peak memory (MiB, estimated)"
    rows = []
    for name, run in runs.items():
        rows.append({"model": LABELS[name], "parameters": run.n_params, "generator steps": run.steps,
                     "seconds / epoch": run.seconds_per_epoch, "training seconds": run.seconds, mem_label: run.peak_memory_mb})
        if run.autoencoder is not None and not any(r["model"].startswith("autoencoder") for r in rows):
            ae = run.autoencoder
            rows.append({"model": "autoencoder (shared by BAGAN, BAGAN-GP)", "parameters": ae["n_params"],
                         "generator steps": len(ae["history"]), "seconds / epoch": np.nan,
                         "training seconds": ae["seconds"], mem_label: np.nan})
    return pd.DataFrame(rows).set_index("model")


# --- evaluation ---------------------------------------------------------------------------------

def fid_bootstrap_ci(feats_a: np.ndarray, feats_b: np.ndarray, fid: float, n_boot: int = 50, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Basic bootstrap interval of FID, as :func:`medgan_core.metrics.fid.fid_ci` but fast on small sets.

    Rows of both sets are resampled with replacement; each resample's FID uses
    ``Tr((S_a S_b)^(1/2)) = sum_i sqrt(lambda_i(S_a S_b))`` (the eigenvalues of a product of two
    covariance matrices are real and non-negative), which stays fast and stable when a resample has
    fewer distinct images than feature dimensions (where ``scipy.linalg.sqrtm`` slows down). The
    interval is ``[2 fid - q_high, 2 fid - q_low]``, clipped at 0.

    Args:
        feats_a: features of the first set `(n_a, d)`.
        feats_b: features of the second set `(n_b, d)`.
        fid: the point estimate on the full sets.
        n_boot: resamples (>= 2).
        seed: seed of the resampling.
        level: coverage of the interval.
    """
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}.")
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        a = feats_a[rng.integers(0, len(feats_a), len(feats_a))]
        b = feats_b[rng.integers(0, len(feats_b), len(feats_b))]
        c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        tr_root = np.sqrt(np.clip(np.linalg.eigvals(c_a @ c_b).real, 0.0, None)).sum()
        diff = a.mean(0) - b.mean(0)
        boots[i] = max(float(diff @ diff + np.trace(c_a) + np.trace(c_b) - 2.0 * tr_root), 0.0)
    q_low, q_high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(max(2 * fid - q_high, 0.0)), float(max(2 * fid - q_low, 0.0))


def _subsample(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n_total) if n_total <= n else np.sort(rng.choice(n_total, n, replace=False))


def fidelity_study(features: Callable[[np.ndarray], np.ndarray], train: Split, heldout: Split,
                   fakes: Mapping[str, Split], classes: Sequence[str], seed: int = 0, k: int = 5,
                   max_n: int = 1000, n_boot: int = 50, ms_ssim_pairs: int = 200,
                   kid_subsets: int = 50) -> pd.DataFrame:
    """Fidelity and diversity per model and class (and pooled), beside the real-vs-real reference.

    For every group (``all`` and each class) the generated and held-out sets are cut to the same
    size ``n_eval`` (seeded) and both are compared with the same real training features.

    Args:
        features: ``images -> (N, d)`` features (the domain encoder's ``features``).
        train: real training split ``(images, labels)``.
        heldout: real held-out split (validation).
        fakes: ``{model: (images, labels)}`` generated images with the class they were made for.
        classes: class names in label order.
        seed: seed of the subsampling, bootstrap, KID subsets and MS-SSIM pairs.
        k: neighbours of precision/recall/density/coverage.
        max_n: cap on every set per group.
        n_boot: bootstrap resamples of the FID interval.
        ms_ssim_pairs: random pairs for the mean pairwise MS-SSIM.
        kid_subsets: KID subsets.

    Returns:
        Long frame: ``model, class, n_eval, fid, fid_ci_low, fid_ci_high, kid, kid_ci_low,
        kid_ci_high, precision, recall, density, coverage, ms_ssim, ms_ssim_scales``; the
        reference rows have ``model`` = :data:`REFERENCE`.
    """
    f_train, f_held = features(train[0]), features(heldout[0])
    f_fake = {m: features(x) for m, (x, _) in fakes.items()}
    groups = [("all", None)] + [(c, i) for i, c in enumerate(classes)]
    rows = []
    for cls, i in groups:
        rng = np.random.default_rng(seed)
        m_tr = slice(None) if i is None else train[1] == i
        m_he = slice(None) if i is None else heldout[1] == i
        ft = f_train[m_tr][_subsample(int(np.sum(train[1] == i)) if i is not None else len(f_train), max_n, rng)]
        fh_all, xh_all = f_held[m_he], heldout[0][m_he]
        sets = {REFERENCE: (fh_all, xh_all)}
        for m, (x, y) in fakes.items():
            m_f = slice(None) if i is None else y == i
            sets[m] = (f_fake[m][m_f], x[m_f])
        n_eval = min(min(len(f) for f, _ in sets.values()), max_n)
        for model, (f, x) in sets.items():
            if n_eval <= k or len(ft) <= k:
                rows.append({"model": model, "class": cls, "n_eval": n_eval})
                continue
            pick = _subsample(len(f), n_eval, np.random.default_rng([seed, len(rows)]))
            row = fidelity_row(ft, f[pick], seed, k, kid_subsets, 1000)
            ci_low, ci_high = fid_bootstrap_ci(ft, f[pick], row["fid"], n_boot=n_boot, seed=seed)
            div = ms_ssim_diversity(x[pick], n_pairs=ms_ssim_pairs, seed=seed)
            rows.append({"model": model, "class": cls, "n_eval": n_eval, "fid": row["fid"],
                         "fid_ci_low": ci_low, "fid_ci_high": ci_high, "kid": row["kid_mean"],
                         "kid_ci_low": row["kid_ci_low"], "kid_ci_high": row["kid_ci_high"],
                         "precision": row["precision"], "recall": row["recall"], "density": row["density"],
                         "coverage": row["coverage"], "ms_ssim": div["ms_ssim"], "ms_ssim_scales": div["scales"]})
    return pd.DataFrame(rows)


def writeup_table(fid: pd.DataFrame, models: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """The write-up's FID table (all types, then each type), ours with CIs beside the write-up's numbers.

    Args:
        fid: the frame of :func:`fidelity_study`.
        models: the generators to show, in order.
        digits: decimals.
    """
    cols = [REFERENCE, *models]
    out = {}
    for model in cols:
        label = LABELS.get(model, model)
        sub = fid[fid.model == model].set_index("class")
        out[f"{label}: ours"] = [f"{r.fid:.{digits}f} [{r.fid_ci_low:.{digits}f}, {r.fid_ci_high:.{digits}f}]"
                                 if pd.notna(r.get("fid")) else "n/a" for _, r in sub.iterrows()]
        out[f"{label}: write-up"] = [str(WRITEUP_FID.get((c, model), "–")) for c in sub.index]
        index = list(sub.index)
    table = pd.DataFrame(out, index=pd.Index(["all types" if c == "all" else c for c in index], name="FID"))
    return table


def rank_generators(fid: pd.DataFrame, models: Sequence[str]) -> list[str]:
    """Generators ordered by mean per-class FID gap to the reference (validation split only; best first).

    Args:
        fid: the frame of :func:`fidelity_study`.
        models: the candidates.
    """
    per_class = fid[fid["class"] != "all"]
    ref = per_class[per_class.model == REFERENCE].set_index("class")["fid"]
    score = {m: float((per_class[per_class.model == m].set_index("class")["fid"] - ref).mean()) for m in models}
    return sorted(models, key=lambda m: (np.nan_to_num(score[m], nan=np.inf), m))


def induced_imbalance(train: Split, val: Split, test: Split, minority: int, fractions: Sequence[float],
                      make_sampler: Callable[[np.ndarray, np.ndarray, float], Mapping[str, Callable]],
                      build_classifier: Callable[[], nn.Module], arms: Sequence[str], seeds: Sequence[int],
                      seed: int = 0, **utility_kw: Any) -> pd.DataFrame:
    """The BAGAN paper's protocol: keep a fraction of the minority class, measure its recall per method.

    Args:
        train: the real training split.
        val: the validation split (model selection).
        test: the test split.
        minority: the class to thin out.
        fractions: kept shares of the minority class, e.g. ``(1.0, 0.25, 0.1, 0.05)``.
        make_sampler: ``(images, labels, fraction) -> {gan name: sampler}`` trains the generator(s)
            on the reduced training set (called only when ``arms`` holds a GAN arm).
        build_classifier: ``() -> classifier`` as in :func:`~medgan_core.metrics.utility.run_utility_study`.
        arms: utility arms (methods), one curve each.
        seeds: classifier seeds per point.
        seed: seed of the minority subsampling.
        **utility_kw: passed on to :func:`~medgan_core.metrics.utility.run_utility_study`.

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


# --- figures ------------------------------------------------------------------------------------

def _tile(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """Images `(n, S, S, 3)` side by side in one row `(S, n (S + pad), 3)` (white gaps)."""
    n, s = images.shape[0], images.shape[1]
    row = np.full((s, n * (s + pad), 3), 255, np.uint8)
    for i, im in enumerate(images):
        row[:, i * (s + pad):i * (s + pad) + s] = im
    return row


def snapshot_figure(snapshots: Mapping[int, Mapping[int, np.ndarray]], classes: Sequence[str], title: str,
                    steps_per_epoch: float | None = None) -> plt.Figure:
    """Fixed-latent samples over training: one row per snapshot, one column per class.

    Args:
        snapshots: ``{step: {cls: uint8 (n, S, S, 3)}}``.
        classes: class names.
        title: the figure's title.
        steps_per_epoch: if given, rows are labelled in epochs too.
    """
    steps = sorted(snapshots)
    fig, axes = plt.subplots(len(steps), len(classes), figsize=(3.2 * len(classes), 0.75 * len(steps) + 0.6),
                             squeeze=False)
    for r, s in enumerate(steps):
        for c, name in enumerate(classes):
            ax = axes[r, c]
            if c in snapshots[s]:
                ax.imshow(_tile(snapshots[s][c]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name)
            if c == 0:
                ax.set_ylabel(f"step {s}" + (f"\n(ep {s / steps_per_epoch:.1f})" if steps_per_epoch else ""),
                              rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_figure(histories: Mapping[str, pd.DataFrame], window: int = 20) -> plt.Figure:
    """Discriminator and generator losses per model (moving average over ``window`` steps).

    Args:
        histories: ``{model label: history}``; a ``class`` column (per-class DCGANs) gives one line per class.
        window: moving-average window in steps.
    """
    fig, axes = plt.subplots(1, len(histories), figsize=(3.6 * len(histories), 3), squeeze=False)
    for ax, (label, hist) in zip(axes[0], histories.items()):
        groups = hist.groupby("class") if "class" in hist else [(None, hist)]
        for cls, h in groups:
            for col, style in (("loss_D", "-"), ("loss_G", "--"), ("loss_AE", "-")):
                if col in h:
                    name = col if cls is None else f"{col} (class {cls})"
                    ax.plot(h["step"], h[col].rolling(window, min_periods=1).mean(), style, label=name, lw=1)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (moving average)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def pair_rows_figure(top: np.ndarray, bottom: np.ndarray, labels: tuple[str, str], title: str) -> plt.Figure:
    """Two rows of images: e.g. real images above their autoencoder reconstructions.

    Args:
        top: uint8 `(n, S, S, 3)`.
        bottom: uint8 `(n, S, S, 3)`.
        labels: the two rows' names.
        title: the figure's title.
    """
    fig, axes = plt.subplots(2, 1, figsize=(0.8 * len(top) + 1, 2.2))
    for ax, imgs, label in zip(axes, (top, bottom), labels):
        ax.imshow(_tile(imgs))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_rows_figure(rows: Mapping[str, np.ndarray], title: str) -> plt.Figure:
    """One row of images per label (class or model).

    Args:
        rows: ``{row label: uint8 (n, S, S, 3)}``.
        title: the figure's title.
    """
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.75 * n + 1.5, 0.8 * len(rows) + 0.5), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows.items()):
        ax.imshow(_tile(imgs))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def imbalance_figure(curves: pd.DataFrame, minority_name: str, metric: str = "minority_recall") -> plt.Figure:
    """Minority recall (mean and 95% CI over seeds) against the kept share of the minority class.

    Args:
        curves: the frame of :func:`induced_imbalance`.
        minority_name: the minority class's name (axis label).
        metric: the metric to plot.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4))
    data = curves[curves.metric == metric]
    for arm, d in data.groupby("arm", sort=False):
        d = d.sort_values("fraction")
        ax.plot(d.fraction * 100, d["mean"], marker="o", label=arm)
        ax.fill_between(d.fraction * 100, d.ci_low, d.ci_high, alpha=0.12)
    ax.set_xscale("log")
    ticks = sorted(data.fraction.unique() * 100)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}%" for t in ticks])
    ax.set_xlabel(f"share of {minority_name} kept in training (log scale)")
    ax.set_ylabel(f"{minority_name} recall on test" if metric == "minority_recall" else metric.replace("_", " "))
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Induced imbalance: how much minority recall each method restores")
    fig.tight_layout()
    return fig


# --- verdict ------------------------------------------------------------------------------------

def fid_ratios(fid: pd.DataFrame, model: str) -> dict[str, float]:
    """Per class: the model's FID divided by the real-vs-real reference FID (1 = as close as real data).

    Args:
        fid: the frame of :func:`fidelity_study`.
        model: the generator.
    """
    ref = fid[fid.model == REFERENCE].set_index("class")["fid"]
    ours = fid[fid.model == model].set_index("class")["fid"]
    return {c: float(ours[c] / ref[c]) for c in ref.index if pd.notna(ours.get(c)) and pd.notna(ref[c]) and ref[c] > 0}


def imbalance_sentence(curves: pd.DataFrame, minority_name: str) -> str:
    """One sentence on the smallest kept fraction: the GAN arm's minority recall against the best non-GAN arm.

    Args:
        curves: the frame of :func:`induced_imbalance`.
        minority_name: the thinned class's name.
    """
    rec = curves[curves.metric == "minority_recall"]
    frac = rec.fraction.min()
    last = rec[rec.fraction == frac].set_index("arm")
    gan = [a for a in last.index if a.startswith("real+gan")]
    base = [a for a in last.index if "gan" not in a and not a.startswith("synthetic")]
    if not gan or not base:
        return ""
    g, b = max(gan, key=lambda a: last.loc[a, "mean"]), max(base, key=lambda a: last.loc[a, "mean"])
    overlap = not (last.loc[g, "ci_low"] > last.loc[b, "ci_high"] or last.loc[b, "ci_low"] > last.loc[g, "ci_high"])
    return (f"With {frac:.0%} of the {minority_name} kept ({int(last.loc[g, 'n_minority'])} images), {minority_name} "
            f"recall was {last.loc[g, 'mean']:.2f} (95% CI {last.loc[g, 'ci_low']:.2f} to {last.loc[g, 'ci_high']:.2f}) "
            f"with {g} against {last.loc[b, 'mean']:.2f} ({last.loc[b, 'ci_low']:.2f} to {last.loc[b, 'ci_high']:.2f}) "
            f"with the best non-GAN method ({b}); the intervals {'overlap' if overlap else 'do not overlap'}.")


def study_verdict(fid: pd.DataFrame, best: str, utility: Mapping[str, Any], curves: pd.DataFrame | None,
                  minority_name: str) -> str:
    """The report's verdict, generated from this run's numbers.

    Args:
        fid: task A's fidelity frame.
        best: the generator ranked first on the validation split.
        utility: ``{task label: UtilityResult}``.
        curves: the induced-imbalance frame, or ``None``.
        minority_name: task A's thinned class.
    """
    ratios = fid_ratios(fid, best)
    per_class = ", ".join(f"{c} {r:.1f}x" for c, r in ratios.items() if c != "all")
    parts = [f"The best generator on the validation split was {LABELS[best]}, whose FID was {per_class} the "
             f"real-vs-real reference (1x = as close to the training cells as held-out real cells)."]
    for task, res in utility.items():
        parts.append(f"{task}: {res.verdict}")
    if curves is not None and len(curves):
        parts.append(imbalance_sentence(curves, minority_name))
    return " ".join(p for p in parts if p)
