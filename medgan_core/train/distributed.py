"""Training on several processes (``torchrun``): data-parallel GAN updates that equal one process's.

    torchrun --standalone --nproc-per-node 2 -m medgan_core.train.distributed spec.pt

or, from a notebook, ``launch(spec, nproc=2)``; afterwards an ordinary one-process
:func:`~medgan_core.train.trainer.train_gan` on the same ``run_dir`` loads the final checkpoint
(finished, not trained again). The spec is a dict (``torch.save``'d for the command line):

    spec = {"gan": {"name": "dcgan", "image_size": 32, "seed": 0},              # build_gan's keywords
            "data": {"images": images, "labels": labels, "batch_size": 64, "seed": 0},  # the global batch
            "train": {"num_steps": 2000, "run_dir": "runs/dcgan", "checkpoint_every": 500}}

Data parallelism: each of the ``W`` processes (ranks) holds a whole copy of the networks, takes its
share ``B / W`` of each step's global batch (:class:`ShardedBatches`) and back-propagates its own
losses; the gradients are averaged over the ranks before every optimiser step, so every rank takes
the same step and the weights stay equal. The losses are means over the batch, so the averaged
gradient is the gradient on the global batch: ``W`` processes with ``B / W`` images make the update
that one process makes with ``B``.

Why not ``torch.nn.parallel.DistributedDataParallel``: its reducer expects every parameter used in a
forward pass to receive its gradient before the next forward pass. A GAN step runs the
discriminator on reals and fakes, then the generator through a frozen discriminator (no gradient
for the discriminator's parameters), and a gradient penalty runs the discriminator again inside the
loss; DDP stops with "Expected to have finished reduction in the prior iteration". So
:func:`sync_gradients` hooks every optimiser instead (``register_step_pre_hook``): just before
``step()`` it sums the gradients over the ranks with an all-reduce and divides by ``W``, which is
what DDP's reducer computes, and no family's update code changes.

Batch norm would normalise each rank's ``B / W`` images on their own; :func:`convert_batchnorm`
gives it the statistics of the global batch: ``nn.SyncBatchNorm`` on CUDA, and on the CPU, where
``SyncBatchNorm`` refuses tensors, :class:`GlobalBatchNorm`. Both keep batch norm's parameters,
running statistics and state-dict keys, so their checkpoints load into plain batch norm.

Random streams: rank 0 keeps the run's stream (so one process is the run it always was); rank
``r > 0`` is seeded from ``(seed, r, 0)``, so the ranks draw independent latents. Only rank 0 writes
checkpoints (:func:`~medgan_core.train.loop.train_loop`); every rank resumes from them, and as a
checkpoint holds rank 0's random states, ranks ``r > 0`` re-seed from ``(seed, r, step)`` after
loading one. The networks keep their one-process state-dict keys (no wrapper), so a 2-process
checkpoint resumes in one process and the other way round.

A rank that stops (a NaN loss on its share of the batch, say) ends the run: torchrun then stops the
others, and the run resumes from the last checkpoint. Backends: NCCL on CUDA (rank ``r`` on
``cuda:LOCAL_RANK``), Gloo on the CPU. Without torchrun (no ``WORLD_SIZE`` in the environment), or
with one process, every function here is a no-op.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

if TYPE_CHECKING:  # annotations only: the models import the train package
    from medgan_core.models.registry import GAN
    from medgan_core.train.trainer import ImageBatches

ENTRY_POINT = "medgan_core.train.distributed"  # the module torchrun runs (``-m``)
SPEC_KEYS = {  # what a spec may hold: build_gan's keywords under "gan" (any), and these
    "data": (("images", "batch_size"), ("labels", "seed", "num_classes")),  # (required, optional)
    "train": (("num_steps", "run_dir"), ("checkpoint_every", "time_budget_s", "n_snapshots", "snapshot_n")),
}
_STREAMS = {"seed": 0}  # the run's seed, from which ranks r > 0 derive their random streams


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands among the ranks.

    Args:
        rank: its global rank ``0 .. world_size - 1``.
        local_rank: its rank on this machine (its GPU index under NCCL).
        world_size: the number of processes ``W``.
    """

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes checkpoints)."""
        return self.rank == 0


def env_info() -> DistInfo:
    """This process's place, read from torchrun's environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``).

    Returns:
        The :class:`DistInfo`; without torchrun (none of the three set): rank 0 of 1.
    """
    names = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
    found = [n for n in names if n in os.environ]
    if not found:
        return DistInfo(0, 0, 1)
    if len(found) < len(names):
        raise RuntimeError(f"the environment sets {found} but not {sorted(set(names) - set(found))}; launch with "
                           "torchrun, which sets all three (or unset them to run one process).")
    try:
        rank, local_rank, world = (int(os.environ[n]) for n in names)
    except ValueError as err:
        raise RuntimeError(f"RANK, LOCAL_RANK and WORLD_SIZE must be integers, got "
                           f"{[os.environ[n] for n in names]}.") from err
    if not (world >= 1 and 0 <= rank < world and 0 <= local_rank < world):
        raise RuntimeError(f"need 0 <= RANK, LOCAL_RANK < WORLD_SIZE, got {rank}, {local_rank}, {world}.")
    return DistInfo(rank, local_rank, world)


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join torchrun's process group (``env://`` rendezvous); one process without torchrun does nothing.

    Args:
        backend: ``"nccl"`` (CUDA; this process then uses ``cuda:LOCAL_RANK``) or ``"gloo"`` (CPU);
            ``None``: NCCL if CUDA is available, else Gloo.

    Returns:
        This process's :class:`DistInfo`.
    """
    info = env_info()
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' (CUDA) or 'gloo' (CPU), got {backend!r}.")
    if info.world_size == 1 or dist.is_initialized():
        return info
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend 'nccl' needs CUDA, which is not available here; use backend='gloo'.")
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend)
    return info


def get_world_size() -> int:
    """The number of processes of the initialised group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_rank() -> int:
    """This process's rank in the initialised group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process is rank 0 (always, in one process)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (a no-op in one process)."""
    if get_world_size() == 1:
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def _device() -> torch.device:
    """Where this group's collectives put their tensors: the current GPU under NCCL, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def decided_by_main(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (a broadcast), e.g. whether a time budget ends the run.

    Args:
        flag: this rank's decision.

    Returns:
        Rank 0's decision (``flag`` itself in one process).
    """
    if get_world_size() == 1:
        return flag
    t = torch.tensor([int(flag)], device=_device())
    dist.broadcast(t, src=0)
    return bool(t.item())


def mean_over_ranks(values: Mapping[str, float]) -> Mapping[str, float]:
    """Each value averaged over the ranks (every rank must pass the same names, in the same order).

    Args:
        values: ``{name: float}``, e.g. a step's losses on this rank's share of the batch.

    Returns:
        ``{name: mean over ranks}`` (``values`` itself in one process).
    """
    world = get_world_size()
    if world == 1 or not values:
        return values
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return dict(zip(values, (t / world).tolist()))


# --- gradients and parameters -------------------------------------------------------------------

@torch.no_grad()
def average_gradients(params: Iterable[Tensor]) -> None:
    """Replace every gradient by its mean over the ranks, as DDP's reducer does (a no-op in one process).

    A parameter without a gradient on every rank keeps none (Adam then leaves it alone, as for the
    other classes' networks of a per-class DCGAN); one with a gradient on some ranks only counts as
    zero on the others. Gradients are summed in one all-reduce per dtype.

    Args:
        params: the parameters, in the same order on every rank (an optimiser's).
    """
    world = get_world_size()
    params = list(params)
    if world == 1 or not params:
        return
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=_device())
    dist.all_reduce(has_grad)  # how many ranks have each gradient
    used = [p for p, n in zip(params, has_grad.tolist()) if n > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    for _, group in itertools.groupby(sorted(used, key=lambda p: str(p.grad.dtype)), key=lambda p: str(p.grad.dtype)):
        grads = [p.grad for p in group]
        flat = torch.cat([g.reshape(-1) for g in grads])  # `(sum of sizes,)`
        dist.all_reduce(flat)
        flat /= world
        for g, mean in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(mean.view_as(g))


def _average_before_step(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
    """The optimiser step pre-hook of :func:`sync_gradients`."""
    average_gradients(p for group in optimizer.param_groups for p in group["params"])


def sync_gradients(optimizers: Iterable[torch.optim.Optimizer]) -> list[RemovableHandle]:
    """Average the gradients over the ranks just before every ``step()`` of each optimiser.

    Register once per optimiser, on every rank, in the same order.

    Args:
        optimizers: e.g. a GAN's ``opt_G``, ``opt_D`` and ``extra_opts``.

    Returns:
        The hooks' handles (``handle.remove()`` undoes one).
    """
    handles = []
    for opt in optimizers:
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"sync_gradients needs torch optimisers, got {type(opt).__name__}.")
        handles.append(opt.register_step_pre_hook(_average_before_step))
    return handles


@torch.no_grad()
def broadcast_state(modules: Iterable[nn.Module], src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's modules (a no-op in one process).

    Args:
        modules: the same modules, built the same way, on every rank.
        src: the rank whose values every rank gets.
    """
    if get_world_size() == 1:
        return
    for module in modules:
        for t in itertools.chain(module.parameters(), module.buffers()):
            dist.broadcast(t.detach(), src=src)


# --- batch norm over the global batch ------------------------------------------------------------

class _SumOverRanks(torch.autograd.Function):
    """``sum_r x_r`` on every rank (an all-reduce); its gradient is again the sum of the ranks' gradients.

    ``torch.distributed.nn.functional.all_reduce`` computes the same, but is deprecated in this torch
    and warns at every call.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return _SumOverRanks.apply(grad)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of every rank's batch together (CPU, Gloo).

    ``nn.SyncBatchNorm`` does this on CUDA but refuses CPU tensors. In training mode under several
    processes the per-channel mean and biased variance are taken over the global batch,
    ``mean = sum_r S_r / N`` and ``var = sum_r Q_r / N`` (``S_r`` the sum of rank ``r``'s inputs,
    ``Q_r`` the sum of their squared deviations from ``mean``, ``N`` the global count per channel),
    each summed with a differentiable all-reduce, so the gradients are those of one process on the
    global batch. The running statistics are updated as ``nn.BatchNorm2d`` does (unbiased variance,
    ``momentum``, or a cumulative average when it is ``None``). In eval mode, and in one process, it
    is plain batch norm. Its parameters, buffers and state-dict keys are ``nn.BatchNorm1d/2d/3d``'s.
    Build it with :func:`convert_batchnorm`.

    Input `(B, C)`, `(B, C, L)`, `(B, C, H, W)` or `(B, C, D, H, W)`; output of the same shape.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects input (B, C, ...), got shape {tuple(x.shape)}.")

    def forward(self, x: Tensor) -> Tensor:
        """Normalised ``x`` (see the class docstring)."""
        self._check_input_dim(x)
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        if not batch_stats or get_world_size() == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)  # a `(C,)` vector broadcast over `(B, C, ...)`
        count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype, device=x.device)
        sums = _SumOverRanks.apply(torch.cat([x.sum(dims), count]))  # `(C + 1,)`: channel sums, then N
        n = sums[-1].detach()
        if n < 2:
            raise ValueError(f"GlobalBatchNorm needs more than 1 value per channel in training, got {int(n)}.")
        mean = sums[:-1] / n  # `(C,)`
        centred = x - mean.view(shape)
        var = _SumOverRanks.apply(centred.pow(2).sum(dims)) / n  # `(C,)`, biased
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(mean.detach(), alpha=f)
                self.running_var.mul_(1 - f).add_(var.detach() * n / (n - 1), alpha=f)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def _to_global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every plain batch norm replaced by a :class:`GlobalBatchNorm` sharing its tensors."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (GlobalBatchNorm,
                                                                                      nn.SyncBatchNorm)):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias  # the same Parameters: optimisers keep them
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_global_batchnorm(child))
    return out


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Give every batch norm in ``module`` the statistics of the global batch (nested ones too).

    On CUDA: ``nn.SyncBatchNorm.convert_sync_batchnorm``; on the CPU: :class:`GlobalBatchNorm`.
    BigGAN's conditional batch norm holds a plain ``nn.BatchNorm2d(affine=False)``, which is
    converted like any other. The new layers share the old ones' parameters and buffers, so an
    optimiser built before keeps working and the state-dict keys do not change.

    Args:
        module: a network (changed in place).

    Returns:
        ``module`` (a new object only if ``module`` itself is a batch norm).
    """
    if any(t.is_cuda for t in itertools.chain(module.parameters(), module.buffers())):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batchnorm(module)


# --- data and random streams ----------------------------------------------------------------------

class ShardedBatches:
    """This rank's share of every global batch: rows ``r B / W .. (r + 1) B / W`` of ``data.batch(step)``.

    So ``W`` processes with ``B / W`` images each see, together, exactly the images that one process
    with batch ``B`` sees at every step. Every other attribute (``x``, ``num_classes``,
    ``image_size``, ...) is ``data``'s.

    Args:
        data: the batches by step with the *global* ``batch_size``
            (:class:`~medgan_core.train.trainer.ImageBatches`).
        rank: this process's rank (default: the process group's, 0 without one).
        world_size: the number of processes ``W`` (default: the process group's, 1 without one).
    """

    def __init__(self, data: "ImageBatches", rank: int | None = None, world_size: int | None = None) -> None:
        world = get_world_size() if world_size is None else int(world_size)
        r = get_rank() if rank is None else int(rank)
        if not 0 <= r < world:
            raise ValueError(f"need 0 <= rank < world_size, got rank={r}, world_size={world}.")
        bs = min(data.batch_size, len(data))
        if bs % world:
            raise ValueError(f"the global batch of {bs} images (batch_size={data.batch_size}) does not split over "
                             f"{world} processes; choose a batch_size divisible by the number of processes.")
        self.data, self.rank, self.world_size = data, r, world

    def __len__(self) -> int:
        return len(self.data)

    def __getattr__(self, name: str) -> Any:
        if name == "data":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.data, name)

    def batch(self, step: int, cls: int | None = None) -> tuple[Tensor, Tensor]:
        """This rank's share of ``data.batch(step, cls)``.

        Args:
            step: the 0-based training step.
            cls: draw only from this class (``None``: all images).

        Returns:
            ``(x, y)``: images `(B / W, C, S, S)` and labels `(B / W,)`.
        """
        x, y = self.data.batch(step, cls)  # `(B, C, S, S)`, `(B,)`
        if len(x) % self.world_size:
            raise ValueError(f"the batch of class {cls} has {len(x)} images (min of batch_size and the class's "
                             f"images), which do not split over {self.world_size} processes; choose a batch_size "
                             "divisible by the number of processes, at most the smallest class's size.")
        share = len(x) // self.world_size
        rows = slice(self.rank * share, (self.rank + 1) * share)
        return x[rows], y[rows]


def seed_ranks(seed: int, step: int = 0) -> None:
    """Independent random streams: rank 0 keeps its own, rank ``r > 0`` is seeded from ``(seed, r, step)``.

    Rank ``r > 0`` seeds Python, NumPy and torch with a number drawn by NumPy's ``SeedSequence``
    from ``(seed, r, step)``.

    Args:
        seed: the run's seed (kept for :func:`reseed_after_resume`).
        step: the training step the streams start at.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0 or int(step) < 0:
        raise ValueError(f"seed and step must be integers >= 0, got {seed!r} and {step!r}.")
    _STREAMS["seed"] = int(seed)
    rank = get_rank()
    if rank == 0:
        return
    derived = int(np.random.SeedSequence([int(seed), rank, int(step)]).generate_state(1)[0])
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)


def reseed_after_resume(step: int) -> None:
    """Re-derive the ranks' own streams after a checkpoint restored rank 0's random states on every rank.

    Ranks ``r > 0`` re-seed from ``(seed, r, step)`` (the seed of the last :func:`seed_ranks`, 0
    without one); rank 0 continues the checkpoint's stream. A no-op in one process.

    Args:
        step: the step the run resumes at.
    """
    if get_world_size() > 1:
        seed_ranks(_STREAMS["seed"], step)


def distribute(gan: "GAN", *, seed: int | None = None, sync_batchnorm: bool = True) -> "GAN":
    """Make a built GAN train data-parallel on every rank (a no-op in one process).

    1. with ``sync_batchnorm``, batch norm over the global batch in ``net_G``, ``net_D`` and the
       extras (:func:`convert_batchnorm`);
    2. rank 0's parameters and buffers copied to every rank (networks, extras, EMA), so all start equal;
    3. the gradients averaged before every step of ``opt_G``, ``opt_D`` and ``extra_opts``
       (:func:`sync_gradients`);
    4. independent random streams (:func:`seed_ranks`).

    Call it on every rank after :func:`~medgan_core.models.registry.build_gan` (and after
    :func:`~medgan_core.models.feature_gan.attach_head`), then train with :class:`ShardedBatches`.

    Args:
        gan: the GAN, changed in place.
        seed: the seed of the ranks' streams (default: ``gan.settings["seed"]``).
        sync_batchnorm: batch-norm statistics of the global batch; ``False`` keeps each rank's own
            (its running statistics then differ between ranks, and rank 0's are checkpointed).

    Returns:
        ``gan``.
    """
    if get_world_size() == 1:
        return gan
    if sync_batchnorm:
        gan.net_G = convert_batchnorm(gan.net_G)
        gan.net_D = convert_batchnorm(gan.net_D) if gan.net_D is not None else None
        gan.extras = {k: convert_batchnorm(v) for k, v in gan.extras.items()}
    networks = [gan.net_G, gan.net_D, *gan.extras.values(), gan.ema.module if gan.ema is not None else None]
    broadcast_state(m for m in networks if m is not None)
    sync_gradients(opt for opt in (gan.opt_G, gan.opt_D, *gan.extra_opts.values()) if opt is not None)
    seed_ranks(int(gan.settings["seed"]) if seed is None else seed)
    return gan


# --- the torchrun entry point ---------------------------------------------------------------------

def _plain(obj: Any) -> Any:
    """Arrays to tensors and paths to strings, recursively, so a spec loads with ``weights_only=True``."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a training spec (see the module docstring) and return it as a plain dict.

    Args:
        spec: ``{"gan": build_gan's keywords with "name", "data": ImageBatches' arguments (images,
            batch_size; labels, seed, num_classes), "train": train_gan's (num_steps, run_dir;
            checkpoint_every, time_budget_s, n_snapshots, snapshot_n)}``, and optionally
            ``"sync_batchnorm"`` (default ``True``).

    Returns:
        The spec with arrays as tensors and paths as strings.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"a spec is a dict with keys 'gan', 'data' and 'train', got {type(spec).__name__}.")
    spec = _plain(spec)
    unknown = set(spec) - {"gan", "data", "train", "sync_batchnorm"}
    missing = {"gan", "data", "train"} - set(spec)
    if unknown or missing:
        raise ValueError(f"a spec has the keys 'gan', 'data', 'train' (and optionally 'sync_batchnorm'); it lacks "
                         f"{sorted(missing)} and has unknown {sorted(unknown)}.")
    if not isinstance(spec["gan"], Mapping) or not isinstance(spec["gan"].get("name"), str):
        raise ValueError("spec['gan'] must be a dict of build_gan's keywords with the GAN's 'name', e.g. "
                         "{'name': 'dcgan', 'image_size': 32}.")
    if "device" in spec["gan"] and str(spec["gan"]["device"]).split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"spec['gan']['device'] must be 'cpu' or 'cuda' (each rank then takes cuda:LOCAL_RANK), "
                         f"got {spec['gan']['device']!r}.")
    for part, (required, optional) in SPEC_KEYS.items():
        given = spec[part]
        if not isinstance(given, Mapping):
            raise ValueError(f"spec[{part!r}] must be a dict, got {type(given).__name__}.")
        if set(required) - set(given) or set(given) - set(required) - set(optional):
            raise ValueError(f"spec[{part!r}] needs {list(required)} and may hold {list(optional)}; "
                             f"got {sorted(given)}.")
    if not isinstance(spec.get("sync_batchnorm", True), bool):
        raise ValueError(f"spec['sync_batchnorm'] must be True or False, got {spec['sync_batchnorm']!r}.")
    return spec


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check a spec written with ``torch.save`` (loaded with ``weights_only=True``).

    Args:
        path: the spec file.

    Returns:
        The checked spec (:func:`check_spec`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no spec file at {path}; write one with torch.save(spec, path).")
    try:
        spec = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot load the spec {path} with weights_only=True: {err}. A spec holds tensors, numbers, "
                         "strings and dicts/lists of them (images as a tensor; no modules).") from err
    return check_spec(spec)


def main(argv: list[str] | None = None) -> int:
    """Train the spec's GAN on every rank: ``torchrun --nproc-per-node N -m medgan_core.train.distributed SPEC``.

    Each rank seeds everything with the GAN's seed (as a notebook does), builds the GAN on its
    device (``cuda:LOCAL_RANK`` or the CPU), prepares it with :func:`distribute` and trains it on its
    :class:`ShardedBatches` of the spec's :class:`~medgan_core.train.trainer.ImageBatches` with
    :func:`~medgan_core.train.trainer.train_gan`.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``): the spec's path.

    Returns:
        The exit status, 0.
    """
    from medgan_core.models.registry import build_gan  # the models import the train package
    from medgan_core.train.seeding import seed_everything
    from medgan_core.train.trainer import ImageBatches, train_gan

    parser = argparse.ArgumentParser(prog=f"torchrun --nproc-per-node N -m {ENTRY_POINT}",
                                     description="Train a GAN of the registry on N processes from a spec file.")
    parser.add_argument("spec", help="a torch.save'd dict: {'gan': ..., 'data': ..., 'train': ...}")
    spec = load_spec(parser.parse_args(argv).spec)
    gan_kw, data_kw = dict(spec["gan"]), dict(spec["data"])
    name, wanted = gan_kw.pop("name"), str(gan_kw.pop("device", "cuda" if torch.cuda.is_available() else "cpu"))
    info = env_info()
    device = torch.device("cuda", info.local_rank) if wanted.startswith("cuda") else torch.device("cpu")
    init_distributed("nccl" if device.type == "cuda" else "gloo")
    images = data_kw.pop("images")
    if isinstance(images, Tensor) and images.dtype == torch.uint8:
        images = images.numpy()  # ImageBatches takes uint8 images as a NumPy array
    try:
        seed_everything(int(gan_kw.get("seed", 0)))
        gan = distribute(build_gan(name, device=device, **gan_kw), sync_batchnorm=spec.get("sync_batchnorm", True))
        data = ShardedBatches(ImageBatches(images, device=device, **data_kw))
        run = train_gan(gan, data, progress=info.is_main, **spec["train"])
        if info.is_main:
            print(f"{name}: {run.steps} steps on {info.world_size} processes ({run.stopped_by}), "
                  f"{run.seconds:.1f} s; checkpoints in {spec['train']['run_dir']}.", flush=True)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def launch(spec: str | Path | Mapping[str, Any], nproc: int, *, log: str | Path | None = None,
           timeout_s: float | None = None) -> Path:
    """Train on ``nproc`` processes: run torchrun on :func:`main` as a subprocess and wait for it.

    The command is ``python -m torch.distributed.run --standalone --nproc-per-node nproc -m
    medgan_core.train.distributed SPEC``, its output written to ``log``. Afterwards ``train_gan`` in this process, on the same GAN, data and ``run_dir``, loads the final
    checkpoint (finished, not trained again).

    Args:
        spec: the spec (a dict, see :func:`check_spec`, written to a temporary file) or its file.
        nproc: processes (ranks); on CUDA one GPU each.
        log: where torchrun's output goes (default: ``run_dir/torchrun.log``; overwritten).
        timeout_s: stop the run after this many seconds (``None``: no limit).

    torchrun gives every rank ``OMP_NUM_THREADS=1`` unless it is set: on the CPU, set it to
    ``cores // nproc`` before launching to use every core.

    Returns:
        The log's path.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be an int >= 1 (processes to train on), got {nproc!r}.")
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0 seconds (or None for no limit), got {timeout_s}.")
    checked = check_spec(spec) if isinstance(spec, Mapping) else load_spec(spec)
    batch = min(int(checked["data"]["batch_size"]), len(checked["data"]["images"]))
    if batch % nproc:
        raise ValueError(f"the global batch of {batch} images (spec['data']['batch_size']) does not split over "
                         f"nproc={nproc} processes; choose a batch_size divisible by nproc.")
    run_dir = Path(checked["train"]["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    log = Path(log) if log is not None else run_dir / "torchrun.log"
    package_root = str(Path(__file__).resolve().parents[2])  # so the ranks import this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(spec) if not isinstance(spec, Mapping) else Path(tmp) / "spec.pt"
        if isinstance(spec, Mapping):
            torch.save(checked, spec_path)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", ENTRY_POINT, str(spec_path)]
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                status = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)  # torchrun and its ranks: the session started here
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                raise TimeoutError(f"the {nproc}-process run passed timeout_s={timeout_s} and was stopped; its "
                                   f"checkpoints are in {run_dir}, its output in {log}.") from None
    if status != 0:
        text = log.read_text(errors="replace")
        raised = re.search(r"^\[rank(\d+)\]: ([A-Za-z_][\w.]*(?:Error|Exception)\b.*)$", text, flags=re.M)
        said = (f"rank {raised.group(1)} raised {raised.group(2)}" if raised else
                "its last lines:\n" + "\n".join(text.splitlines()[-25:]))
        raise RuntimeError(f"torchrun exited with status {status}; see the log {log}; {said}")
    return log


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy: train_loop consults the package module's state.
    sys.exit(importlib.import_module(ENTRY_POINT).main())
