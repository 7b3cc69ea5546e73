"""The one GAN trainer: every family's step driven by one loop, with resume, snapshots and a time budget.

    gan = build_gan("cwgan_gp", num_classes=4, image_size=32, seed=0)
    data = ImageBatches(images, labels, batch_size=32, seed=0)
    run = train_gan(gan, data, num_steps=2000, run_dir=run_folder("runs", "cwgan_gp", params, images, labels))
    run.sample(cls=2, n=16, seed=0)  # uint8 `(16, S, S, 3)`

:func:`train_gan` calls ``gan.train_step(data, step)`` (the family's own update, see
:mod:`medgan_core.models.registry`) for steps ``0 .. num_steps - 1`` through
:func:`medgan_core.train.loop.train_loop`, which checkpoints the networks, the extras (e.g.
BAGAN's class latent), the EMA, the optimisers and the random states, resumes from the newest
checkpoint, keeps the loss history and stops on a NaN. Batches are drawn *by step*
(:class:`ImageBatches`, :class:`~medgan_core.data.nodule_sequences.NoduleBatches`), so a resumed
run ends with exactly the weights of an uninterrupted one.

Snapshots (the samples shown over training) are taken after ``n_snapshots`` evenly spaced steps
ending at ``num_steps``, or, with a time budget, when the training seconds pass evenly spaced
shares of the budget (the last at the budget); a run stopped early gets one more at its last
step. They and the training seconds are saved in the checkpoint, so a resumed run keeps them. ``time_budget_s > 0`` ends the run after the step during which the training
seconds (summed over resumed runs) passed the budget, with a checkpoint there; the run then
records ``stopped_by="time_budget"`` and a later resume does not train it further.

Training to convergence: with ``eval_fn`` (e.g. :func:`medgan_core.metrics.fidelity.validation_kid`,
lower is better) the generator is validated every ``eval_every`` steps; the scores are the run's
convergence curve (:attr:`GanRun.evals`, against steps and training seconds), the weights of the
best score are kept (in the checkpoint too) and loaded back at the end, and ``patience``
validations without a better score stop the run (``stopped_by="early_stopping"``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from medgan_core.data.datasets import to_tensor_images, to_uint8_images
from medgan_core.train.checkpoint import latest_checkpoint
from medgan_core.train.cost import PeakMemory
from medgan_core.train.loop import step_batch_indices, train_loop

if TYPE_CHECKING:  # annotations only: the models import the train package
    from medgan_core.models.registry import GAN

SNAPSHOT_SEED = 10_000  # latents of the default snapshots (the same at every snapshot step)


class ImageBatches:
    """Real image batches drawn by step: the batch of step ``s`` depends only on ``(seed, s)``.

    Args:
        images: uint8 `(N, S, S, C)` (converted with
            :func:`~medgan_core.data.datasets.to_tensor_images`) or a float tensor `(N, C, S, S)`
            in [-1, 1].
        labels: class labels `(N,)` in ``0..K-1``; ``None``: one class (all 0).
        batch_size: images per batch (at most the number of images of the set drawn from).
        seed: seed of the batch order.
        device: where the batches are returned (the images are kept there).
        num_classes: ``K`` (default: the largest label + 1); every class needs >= 2 images.
    """

    def __init__(self, images: np.ndarray | Tensor, labels: np.ndarray | Tensor | None = None,
                 batch_size: int = 32, seed: int = 0, device: str | torch.device = "cpu",
                 num_classes: int | None = None) -> None:
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2]:
                raise ValueError(f"images as a NumPy array must be square uint8 (N, S, S, C), got {images.dtype} "
                                 f"{images.shape}; crop or resize them first.")
            x = to_tensor_images(images)  # `(N, C, S, S)` in [-1, 1]
        elif isinstance(images, Tensor):
            if not images.is_floating_point() or images.ndim != 4 or images.shape[2] != images.shape[3]:
                raise ValueError(f"images as a tensor must be square float (N, C, S, S) in [-1, 1], got "
                                 f"{images.dtype} {tuple(images.shape)}.")
            if len(images) and (float(images.min()) < -1.0 or float(images.max()) > 1.0):
                raise ValueError(f"image values must lie in [-1, 1], got {float(images.min()):.3g}.."
                                 f"{float(images.max()):.3g}; scale them as to_tensor_images does.")
            x = images.detach().float()
        else:
            raise TypeError(f"images must be a uint8 NumPy array or a float tensor, got {type(images).__name__}.")
        n = len(x)
        if labels is None:
            y = torch.zeros(n, dtype=torch.long)
        else:
            y = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels))
            if y.ndim != 1 or len(y) != n or y.is_floating_point() or y.dtype == torch.bool:
                raise ValueError(f"labels must be integers of shape ({n},), got {y.dtype} {tuple(y.shape)}.")
            y = y.long()
        if n and int(y.min()) < 0:
            raise ValueError(f"labels must be >= 0, got {int(y.min())}.")
        k = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if n else 1)
        if n and int(y.max()) >= k:
            raise ValueError(f"labels must lie in 0..{k - 1} for num_classes={k}, got {int(y.max())}.")
        counts = torch.bincount(y, minlength=k)
        if (counts < 2).any():
            raise ValueError(f"every class needs >= 2 images, got counts {counts.tolist()} for {k} classes; "
                             "drop or merge the rare classes.")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.device = torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)  # `(N, C, S, S)`, `(N,)`
        self.batch_size, self.seed, self.num_classes = int(batch_size), int(seed), k
        self._rows = [torch.nonzero(y == c).flatten() for c in range(k)]  # each class's rows, in order

    def __len__(self) -> int:
        return len(self.x)

    @property
    def image_size(self) -> int:
        """The image side ``S``."""
        return int(self.x.shape[-1])

    @property
    def channels(self) -> int:
        """The image channels ``C``."""
        return int(self.x.shape[1])

    def batch(self, step: int, cls: int | None = None) -> tuple[Tensor, Tensor]:
        """The batch of ``step``: ``step_batch_indices(step, n, bs, seed)`` over all images, or
        ``step_batch_indices(step, n_cls, bs, seed + cls)`` over class ``cls``'s images.

        ``bs = min(batch_size, n)`` with ``n`` the number of images drawn from.

        Args:
            step: the 0-based training step.
            cls: draw only from this class (``None``: all images).

        Returns:
            ``(x, y)``: images `(bs, C, S, S)` in [-1, 1] and labels `(bs,)`, on ``device``.
        """
        if cls is None:
            n = len(self.x)
            idx = step_batch_indices(step, n, min(self.batch_size, n), self.seed)
        else:
            if not 0 <= int(cls) < self.num_classes:
                raise ValueError(f"cls must lie in 0..{self.num_classes - 1}, got {cls}.")
            rows = self._rows[int(cls)]
            idx = rows[step_batch_indices(step, len(rows), min(self.batch_size, len(rows)), self.seed + int(cls))]
        idx = idx.to(self.device)
        return self.x[idx], self.y[idx]


@dataclass
class GanRun:
    """A trained GAN and what the report shows about its training.

    Args:
        gan: the trained :class:`~medgan_core.models.registry.GAN`.
        history: the loss history, one row per step (a ``step`` column, one column per loss).
        snapshots: ``{step (1-based count): snapshot}``; the default snapshot is
            ``{cls: uint8 (n, S, S, C)}``; arrays and tensors come back as NumPy arrays.
        seconds: training wall seconds (steps and snapshots), summed over resumed runs.
        steps: steps done.
        stopped_by: ``"num_steps"``, ``"time_budget"`` or ``"early_stopping"``.
        peak_memory_mb: peak memory of the training (the largest over resumed runs).
        memory_method: how it was measured (:class:`~medgan_core.train.cost.PeakMemory`).
        resumed_from: the step a resume started from (0: a fresh run).
        run_dir: the checkpoint folder, or ``None``.
        evals: the convergence curve: one row per validation (``step``, training ``seconds`` so far,
            ``score``, lower is better); empty without ``eval_fn``.
        best_step: the step of the best validation score, whose generator weights ``gan`` holds
            (0 without ``eval_fn``: the last weights).
    """

    gan: "GAN"
    history: pd.DataFrame
    snapshots: dict[int, Any]
    seconds: float
    steps: int
    stopped_by: str
    peak_memory_mb: float
    memory_method: str
    resumed_from: int = 0
    run_dir: Path | None = field(default=None)
    evals: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["step", "seconds", "score"]))
    best_step: int = 0

    def sample(self, cls: int, n: int, seed: int) -> np.ndarray:
        """``n`` uint8 images `(n, S, S, C)` of class ``cls`` (the utility study's sampler signature).

        Args:
            cls: class index.
            n: number of images.
            seed: seed of the latents.
        """
        return to_uint8_images(self.gan.sample(int(cls), int(n), int(seed)), squeeze_gray=False)

    def sample_like(self, labels: np.ndarray, max_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A generated set with the class counts of a real set (each capped), e.g. to set beside the validation split.

        Class ``c`` gets ``min(count of c in labels, max_per_class)`` images drawn with ``seed``.

        Args:
            labels: the real set's class labels `(N,)`.
            max_per_class: the most images of any class.
            seed: seed of the latents (the same for every class).

        Returns:
            ``(images uint8 (M, S, S, C), labels (M,))``.
        """
        from medgan_core.models.registry import sample_like  # the models import this package

        images, labels = sample_like(self.gan, labels, max_per_class, seed)
        return to_uint8_images(images, squeeze_gray=False), labels


def snapshot_steps(num_steps: int, count: int) -> list[int]:
    """``count`` evenly spaced steps ending at ``num_steps`` (1-based counts, distinct, sorted).

    Args:
        num_steps: the run's length.
        count: how many snapshots (0: none).
    """
    if count <= 0 or num_steps <= 0:
        return []
    return sorted({max(1, int(round(num_steps * (i + 1) / count))) for i in range(count)})


def _to_plain(obj: Any) -> Any:
    """Arrays to tensors, recursively, so a snapshot can be checkpointed (``weights_only`` loading)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _from_plain(obj: Any) -> Any:
    """Tensors back to NumPy arrays, recursively."""
    if isinstance(obj, Tensor):
        return obj.numpy()
    if isinstance(obj, Mapping):
        return {k: _from_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_plain(v) for v in obj)
    return obj


def default_snapshot(gan: "GAN", data: Any, n: int = 6) -> dict[int, np.ndarray]:
    """``{cls: uint8 (n, S, S, C)}``: ``n`` images of every class from the fixed seed :data:`SNAPSHOT_SEED`.

    The BAGAN autoencoder, which has no sampler, shows ``{0: reconstructions}`` of the first
    ``n`` training images instead.

    Args:
        gan: the GAN being trained.
        data: its :class:`ImageBatches`.
        n: images per class.
    """
    if gan.name == "bagan_autoencoder":
        from medgan_core.models.bagan import reconstruct  # the models import this package

        return {0: reconstruct(gan.net_G, data.x[:n])}
    return {c: to_uint8_images(gan.sample(c, n, SNAPSHOT_SEED), squeeze_gray=False) for c in range(gan.num_classes)}


def train_gan(gan: "GAN", data: Any, *, num_steps: int, time_budget_s: float = 0.0,
              run_dir: str | Path | None = None, checkpoint_every: int = 0, n_snapshots: int = 0,
              snapshot_fn: Callable[["GAN"], Any] | None = None, snapshot_n: int = 6,
              eval_fn: Callable[["GAN"], float] | None = None, eval_every: int = 0, patience: int = 0,
              progress: bool = True, desc: str | None = None) -> GanRun:
    """Train ``gan`` for ``num_steps`` steps of its family's ``train_step`` (resuming from ``run_dir``).

    Args:
        gan: a GAN from :func:`medgan_core.models.registry.build_gan`.
        data: batches by step: :class:`ImageBatches` (image GANs) or
            :class:`~medgan_core.data.nodule_sequences.NoduleBatches` (SQ-AGGAN).
        num_steps: total steps of the run (a resumed run counts the earlier ones).
        time_budget_s: stop after the step during which the training seconds passed this (0: no budget).
        run_dir: checkpoint folder (e.g. from :func:`medgan_core.train.identity.run_folder`); ``None``: none.
        checkpoint_every: steps between checkpoints; 0 with a ``run_dir``: only at the end (or at the budget).
        n_snapshots: how many snapshots to keep, evenly spaced in steps (the last at ``num_steps``),
            or with ``time_budget_s`` in training seconds (the last at the budget).
        snapshot_fn: ``snapshot_fn(gan) -> anything`` replaces the default (``snapshot_n`` images per
            class from a fixed seed; reconstructions for the BAGAN autoencoder); SQ-AGGAN needs one.
        snapshot_n: images per class of the default snapshot.
        eval_fn: ``eval_fn(gan) -> score`` on held-out data, lower is better (e.g.
            :func:`medgan_core.metrics.fidelity.validation_kid`); it must not touch the global RNG.
            It may return a mapping with a ``"score"`` key and further validation curves (loss
            terms, a realism score): every key becomes a column of ``GanRun.evals``.
            The generator weights (the EMA's where there is one) of the best score are kept and
            loaded back at the end, so the run samples its best-validation generator.
        eval_every: steps between validations (needed with ``eval_fn``); its seconds are not training seconds.
        patience: stop after this many validations without a better score (0: never stop early).
        progress: show a tqdm bar.
        desc: the bar's label (default: the GAN's name).

    Returns:
        The :class:`GanRun`.
    """
    if int(num_steps) < 0 or checkpoint_every < 0 or n_snapshots < 0 or snapshot_n < 1:
        raise ValueError(f"need num_steps >= 0, checkpoint_every >= 0, n_snapshots >= 0 and snapshot_n >= 1; got "
                         f"{num_steps}, {checkpoint_every}, {n_snapshots}, {snapshot_n}.")
    if not time_budget_s >= 0:
        raise ValueError(f"time_budget_s must be >= 0 (0: no budget), got {time_budget_s}.")
    if n_snapshots and snapshot_fn is None and not getattr(gan, "draws_latents", True) and gan.name != "bagan_autoencoder":
        raise ValueError(f"{gan.name} has no class sampler for the default snapshot; pass snapshot_fn "
                         "(SQ-AGGAN: lambda g: sqaggan.five_panel_snapshot(g.net_G, data.fixed(rows)); "
                         "CycleGAN: translations of fixed images).")
    if eval_fn is not None and int(eval_every) < 1:
        raise ValueError(f"eval_fn needs eval_every >= 1 (steps between validations), got {eval_every}.")
    if int(patience) < 0:
        raise ValueError(f"patience must be >= 0 (0: no early stopping), got {patience}.")
    num_steps = int(num_steps)
    snap = snapshot_fn if snapshot_fn is not None else (lambda g: default_snapshot(g, data, snapshot_n))
    snap_at = set() if time_budget_s > 0 else set(snapshot_steps(num_steps, n_snapshots))
    snap_seconds = [time_budget_s * (i + 1) / n_snapshots for i in range(n_snapshots)] if time_budget_s > 0 else []
    extra: dict[str, Any] = {"snapshots": {}, "seconds": 0.0, "stopped_by": "num_steps", "peak_memory_mb": 0.0,
                             "evals": [], "best": {}, "bad_evals": 0}
    generator = gan.ema.module if gan.ema is not None else gan.net_G  # what sampling uses

    def validate(done: int) -> None:
        gan.refresh_ema()  # the EMA generator's own batch statistics (a no-op without EMA)
        result = eval_fn(gan)
        scores = {k: float(v) for k, v in result.items()} if isinstance(result, Mapping) else {"score": float(result)}
        if "score" not in scores:
            raise ValueError(f"eval_fn returned {sorted(scores)}; a mapping needs a 'score' key (lower is better).")
        score = scores["score"]
        extra["evals"].append({"step": done, "seconds": float(extra["seconds"]), **scores})
        best = extra["best"]
        if not best or score < best["score"]:
            extra["best"] = {"score": score, "step": done,
                             "G": {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}}
            extra["bad_evals"] = 0
        else:
            extra["bad_evals"] += 1

    def take_snapshot(done: int) -> None:
        if n_snapshots and done not in extra["snapshots"] and str(done) not in extra["snapshots"]:
            gan.refresh_ema()
            extra["snapshots"][done] = _to_plain(snap(gan))

    def step_fn(step: int) -> Mapping[str, float]:
        start = time.perf_counter()
        with mem.step():
            losses = gan.train_step(data, step)
        due = len(extra["snapshots"]) < len(snap_seconds) and (
            extra["seconds"] + time.perf_counter() - start >= snap_seconds[len(extra["snapshots"])])
        if step + 1 in snap_at or due or (snap_seconds and step + 1 == num_steps):  # a budget run that ends by steps
            take_snapshot(step + 1)
        extra["seconds"] = float(extra["seconds"] + time.perf_counter() - start)
        extra["peak_memory_mb"] = max(float(extra["peak_memory_mb"]), mem.peak_mb())  # checkpointed with the step
        if eval_fn is not None and ((step + 1) % eval_every == 0 or step + 1 == num_steps):
            validate(step + 1)
        return losses

    def should_stop(done: int) -> bool:
        if extra["stopped_by"] in ("time_budget", "early_stopping"):  # a stopped run stays stopped
            return True
        if patience and extra["bad_evals"] >= patience:
            extra["stopped_by"] = "early_stopping"
            take_snapshot(done)
            return True
        if time_budget_s > 0 and extra["seconds"] >= time_budget_s:
            extra["stopped_by"] = "time_budget"
            take_snapshot(done)
            return True
        return False

    models = {"G": gan.net_G, **({"D": gan.net_D} if gan.net_D is not None else {})}
    clash = set(models) & set(gan.extras)
    if clash:
        raise ValueError(f"gan.extras may not use the names {sorted(clash)}; they hold the networks.")
    models.update(gan.extras)
    optimizers = {"G": gan.opt_G, **({"D": gan.opt_D} if gan.opt_D is not None else {})}
    extra_opts = getattr(gan, "extra_opts", {})
    if set(optimizers) & set(extra_opts):
        raise ValueError(f"gan.extra_opts may not use the names {sorted(set(optimizers) & set(extra_opts))}; they "
                         "hold the networks' optimisers.")
    optimizers.update(extra_opts)
    ckpt = latest_checkpoint(run_dir) if run_dir is not None else None
    resumed_from = int(ckpt.stem[len("ckpt_"):]) if ckpt is not None else 0
    written = (dt.datetime.fromtimestamp(ckpt.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
               if ckpt is not None else "")
    every = (checkpoint_every or num_steps) if run_dir is not None else 0
    mem = PeakMemory(gan.settings.get("device", "cpu"), [gan.net_G, gan.net_D])
    with mem:
        history = train_loop(step_fn, num_steps, run_dir=run_dir, models=models, optimizers=optimizers,
                             ema={"G": gan.ema} if gan.ema is not None else None, pools=getattr(gan, "pools", None) or None,
                             schedulers=getattr(gan, "schedulers", None) or None, checkpoint_every=every,
                             keep_last=1 if checkpoint_every == 0 else 2, extra=extra, progress=progress,
                             desc=desc or gan.name, should_stop=should_stop)
    steps = len(history)
    if ckpt is not None:  # said in the notebook's output: these weights were (partly) trained by an earlier run
        now = "finished, not trained in this run" if steps == resumed_from else f"{steps - resumed_from} steps trained now"
        print(f"{desc or gan.name}: loaded run {Path(run_dir).name} at step {resumed_from} ({ckpt.name}, written "
              f"{written}; same parameters, data and code): {now}.")
    peak = max(float(extra["peak_memory_mb"]), mem.mb) if steps > resumed_from else float(extra["peak_memory_mb"])
    snapshots = {int(s): _from_plain(v) for s, v in sorted(extra["snapshots"].items(), key=lambda kv: int(kv[0]))}
    best_step = int(extra["best"].get("step", 0))
    if best_step:  # sample the best-validation generator (its batch statistics were refreshed before it was scored)
        generator.load_state_dict(extra["best"]["G"])
    else:
        gan.refresh_ema()
    evals = pd.DataFrame([e if isinstance(e, Mapping) else dict(zip(("step", "seconds", "score"), e))
                          for e in extra["evals"]], columns=None if extra["evals"] else ["step", "seconds", "score"])
    return GanRun(gan=gan, history=history, snapshots=snapshots, seconds=float(extra["seconds"]), steps=steps,
                  stopped_by=str(extra["stopped_by"]), peak_memory_mb=peak, memory_method=mem.method,
                  resumed_from=resumed_from, run_dir=Path(run_dir) if run_dir is not None else None,
                  evals=evals, best_step=best_step)
