"""What training costs: parameters, seconds per step and peak memory, measured one way everywhere.

- :func:`count_parameters`: trainable parameters of one or more networks.
- :class:`PeakMemory`: the one memory meter, a context manager around the code to measure.
  On CUDA it is PyTorch's peak allocated memory (``torch.cuda.reset_peak_memory_stats`` on
  entry, ``torch.cuda.max_memory_allocated`` on exit): weights, gradients, optimiser state and
  activations, without the allocator's cache. On the CPU (Linux) it resets the kernel's
  peak-resident-memory counter (writing ``5`` to ``/proc/self/clear_refs``), reads the peak
  ``VmHWM`` from ``/proc/self/status`` on exit and reports the peak *minus the resident memory
  at entry*: what the block added, at its highest. Where the counter cannot be reset it falls
  back to the resident-memory growth at exit (a lower bound). ``.method`` says which was used.
- :func:`measure_step`: seconds per training step and the peak memory of a few steps.
- :func:`saved_activation_bytes` and :func:`training_memory_estimate`: an *estimate* of a
  step's memory from the tensors autograd keeps, for settings too large to run here.
- :func:`cost_table`: the report's table of parameters, steps, seconds and memory per model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

if TYPE_CHECKING:  # only for annotations (the trainer imports this module)
    from medgan_core.train.trainer import GanRun

CUDA_METHOD = "measured: CUDA peak allocated (torch.cuda.max_memory_allocated)"
CPU_METHOD = "measured: process peak RSS growth (Linux VmHWM)"
CPU_FALLBACK_METHOD = "measured: process RSS growth at exit (no peak counter here; a lower bound)"


def count_parameters(*nets: nn.Module | None) -> int:
    """Number of trainable parameters of all ``nets`` together (``None`` entries are skipped).

    A parameter shared by two networks is counted once.

    Args:
        *nets: the networks (e.g. ``net_G, net_D``).
    """
    seen: dict[int, int] = {}
    for net in nets:
        if net is None:
            continue
        if not isinstance(net, nn.Module):
            raise TypeError(f"count_parameters takes nn.Modules (or None), got {type(net).__name__}.")
        for p in net.parameters():
            if p.requires_grad:
                seen[id(p)] = p.numel()
    return int(sum(seen.values()))


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``) in KiB, or ``None``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_bytes() -> int | None:
    """This process's resident memory in bytes (``VmRSS``, else psutil if installed), or ``None``."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); ``False`` where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


class PeakMemory:
    """Context manager measuring the peak memory a block of code adds, in MiB.

    ``with PeakMemory("cpu") as mem: train(...)`` then ``mem.mb`` and ``mem.method`` (a short
    phrase for tables). See the module docstring for what is measured on each device.

    Args:
        device: the device the block computes on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"PeakMemory({str(self.device)!r}): no CUDA GPU here; measure on 'cpu'.")
        self.mb = math.nan
        self.method = ""
        self._base = 0
        self._exact = False

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._base = _rss_bytes() or 0
            self._exact = _reset_peak_rss()
        return self

    def peak_mb(self) -> float:
        """The peak so far inside the block, in MiB (what ``.mb`` will be if nothing more is allocated)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self._exact:
            peak = (_status_kib("VmHWM") or 0) * 1024
        else:
            rss = _rss_bytes()
            peak = rss if rss is not None else self._base
        return max(peak - self._base, 0) / 2**20

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.method = CUDA_METHOD
        else:
            self.method = CPU_METHOD if self._exact else CPU_FALLBACK_METHOD
        self.mb = self.peak_mb()


def measure_step(step: Callable[[], object], n_steps: int = 3,
                 device: str | torch.device = "cpu") -> dict[str, float | str]:
    """Time a training step and measure the peak memory it adds, with :class:`PeakMemory`.

    The meter starts *before* a first (warm-up, untimed) call, so the memory includes Adam's
    moments, the gradients and the activations of a step; then ``n_steps`` calls are timed.

    Args:
        step: one training step (builds nothing the caller wants to keep out of the count).
        n_steps: timed repetitions (>= 1).
        device: where the step computes.

    Returns:
        ``{"seconds_per_step", "peak_memory_mb", "method"}``.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    dev = torch.device(device)
    with PeakMemory(dev) as mem:
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        for _ in range(n_steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = (time.perf_counter() - start) / n_steps
    return {"seconds_per_step": seconds, "peak_memory_mb": mem.mb, "method": mem.method}


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
    if batch < 1 or probe_batch < 1:
        raise ValueError(f"batch and probe_batch must be >= 1, got {batch} and {probe_batch}.")
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


def cost_table(runs: Mapping[str, "GanRun"], labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Parameters, steps, seconds and peak memory per trained model (the report's cost table).

    Args:
        runs: ``{name: GanRun}`` from :func:`medgan_core.train.trainer.train_gan`.
        labels: ``{name: row label}`` (default: the names).

    Returns:
        One row per model (index ``model``), columns ``parameters``, ``steps``,
        ``seconds / step``, ``training seconds``, ``peak memory (MiB)``, ``how measured``.
    """
    labels = dict(labels or {})
    rows = []
    for name, run in runs.items():
        gan = run.gan
        rows.append({"model": labels.get(name, name),
                     "parameters": count_parameters(gan.net_G, gan.net_D),
                     "steps": int(run.steps),
                     "seconds / step": run.seconds / run.steps if run.steps else math.nan,
                     "training seconds": float(run.seconds),
                     "peak memory (MiB)": float(run.peak_memory_mb),
                     "how measured": run.memory_method})
    columns = ["model", "parameters", "steps", "seconds / step", "training seconds", "peak memory (MiB)",
               "how measured"]
    return pd.DataFrame(rows, columns=columns).set_index("model")
