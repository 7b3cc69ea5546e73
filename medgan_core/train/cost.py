"""What training costs: parameters, seconds per step and peak memory, measured one way everywhere.

- :func:`count_parameters`: trainable parameters of one or more networks.
- :class:`PeakMemory`: the one memory meter of a model's training, a context manager around it.
  On CUDA it is PyTorch's peak allocated memory (``torch.cuda.reset_peak_memory_stats`` on
  entry, ``torch.cuda.max_memory_allocated`` on exit): weights, gradients, optimiser state and
  activations, without the allocator's cache. The CPU has no allocator statistics, and the
  process's resident memory is no measure either: freed pages are reused, so a model trained
  after another one shows almost no growth. So on the CPU the meter counts the training's
  tensors: 16 bytes per trainable parameter of the networks (fp32 weight, gradient and Adam's
  two moments) plus the most bytes autograd held for the backward pass at any moment of a step
  (:meth:`PeakMemory.step` counts the tensors saved by autograd's pack hook, each storage once,
  parameters excluded, and releases them in the unpack hook). Transient buffers that autograd
  does not keep are not in it, so on the CPU it is a lower bound of the working memory.
- :func:`measure_step`: seconds per training step and the peak memory of a few steps.
- :func:`saved_activation_bytes` and :func:`training_memory_estimate`: an *estimate* of a
  step's memory from the tensors autograd keeps, for settings too large to run here.
- :func:`cpu_bf16_is_fast`: whether bf16 autocast is worth running on this CPU (many CPUs have no
  native bf16 and emulate it 50 to 100 times slower than float32).
- :func:`cost_table`: the report's table of parameters, steps, seconds and memory per model.
- :func:`closest_width`: the network width whose parameter count comes closest to a target (e.g. a
  write-up's reported model size).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

if TYPE_CHECKING:  # only for annotations (the trainer imports this module)
    from medgan_core.train.trainer import GanRun

__all__ = ["CPU_METHOD", "CUDA_METHOD", "PeakMemory", "closest_width", "cost_table", "count_parameters",
           "cpu_bf16_is_fast", "measure_step", "saved_activation_bytes", "training_memory_estimate"]

CUDA_METHOD = "measured: CUDA peak allocated (torch.cuda.max_memory_allocated)"
CPU_METHOD = "counted: 16 B per parameter + tensors autograd held in a step (CPU)"


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


class _SavedTensors:
    """Bytes of the tensors autograd holds for backward: now, and at most since the last :meth:`reset`.

    Installed with :func:`torch.autograd.graph.saved_tensors_hooks` (``pack``/``unpack``); a
    storage saved several times counts once and is released when its last saved reference has
    been unpacked; storages in ``exclude`` (the parameters) are never counted.

    Args:
        exclude: tensors whose storage is not counted.
    """

    def __init__(self, exclude: Sequence[torch.Tensor] = ()) -> None:
        self.skip = {t.untyped_storage().data_ptr() for t in exclude}
        self.live: dict[int, list[int]] = {}  # storage pointer -> [bytes, saved references]
        self.now = self.peak = self.total = 0

    def reset(self) -> None:
        self.live.clear()
        self.now = self.peak = self.total = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            key, nbytes = t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()
        except RuntimeError:  # tensors without storage (sparse, meta)
            return t
        if key in self.skip:
            return t
        entry = self.live.setdefault(key, [0, 0])
        if entry[1] == 0:
            entry[0] = nbytes
            self.now += nbytes
            self.total += nbytes
        entry[1] += 1
        self.peak = max(self.peak, self.now)
        return t

    def unpack(self, t: torch.Tensor) -> torch.Tensor:
        try:
            entry = self.live.get(t.untyped_storage().data_ptr())
        except RuntimeError:
            return t
        if entry is not None and entry[1] > 0:
            entry[1] -= 1
            if entry[1] == 0:
                self.now -= entry[0]
        return t

    @contextmanager
    def hooks(self) -> Iterator["_SavedTensors"]:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack):
            yield self


class PeakMemory:
    """Context manager: the peak memory of a model's training, in MiB (see the module docstring).

    ``with PeakMemory(device, nets) as mem:`` around the training, ``with mem.step():`` around each
    training step; then ``mem.mb`` and ``mem.method`` (a short phrase for tables). On the CPU the
    first ``counted_steps`` steps are counted (a step's tensors do not change with the step).

    Args:
        device: the device the block computes on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        nets: the networks being trained (their parameters: weights, gradients, Adam's moments).
        counted_steps: CPU: how many steps are counted (the count costs a Python call per saved tensor).
    """

    def __init__(self, device: str | torch.device = "cpu", nets: Sequence[nn.Module | None] = (),
                 counted_steps: int = 3) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"PeakMemory({str(self.device)!r}): no CUDA GPU here; measure on 'cpu'.")
        nets = [n for n in nets if n is not None]
        self.parameter_bytes = 16 * count_parameters(*nets)
        params = [p for n in nets for p in n.parameters()]
        self._saved = _SavedTensors(exclude=params)
        self._activation_peak = 0
        self._steps_left = int(counted_steps)
        self.mb = math.nan
        self.method = CUDA_METHOD if self.device.type == "cuda" else CPU_METHOD

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    @contextmanager
    def step(self) -> Iterator[None]:
        """Wrap one training step (on the CPU, counts the tensors autograd keeps for its backward)."""
        if self.device.type == "cuda" or self._steps_left <= 0:
            yield
            return
        self._steps_left -= 1
        self._saved.reset()
        with self._saved.hooks():
            yield
        self._activation_peak = max(self._activation_peak, self._saved.peak)

    def peak_mb(self) -> float:
        """The peak so far, in MiB (what ``.mb`` will be if nothing more is counted)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return (self.parameter_bytes + self._activation_peak) / 2**20

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.mb = self.peak_mb()


def measure_step(step: Callable[[], object], nets: Sequence[nn.Module], n_steps: int = 3,
                 device: str | torch.device = "cpu") -> dict[str, float | str]:
    """Time a training step and measure its peak memory with :class:`PeakMemory`.

    A first (warm-up, untimed) call is measured too; then ``n_steps`` calls are timed.

    Args:
        step: one training step.
        nets: the networks it trains (their parameters count 16 bytes each on the CPU).
        n_steps: timed repetitions (>= 1).
        device: where the step computes.

    Returns:
        ``{"seconds_per_step", "peak_memory_mb", "method"}``.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    dev = torch.device(device)
    with PeakMemory(dev, nets) as mem:
        with mem.step():
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        for _ in range(n_steps):
            with mem.step():
                step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = (time.perf_counter() - start) / n_steps
    return {"seconds_per_step": seconds, "peak_memory_mb": mem.mb, "method": mem.method}


def saved_activation_bytes(fn: Callable[[], object], exclude: Sequence[torch.Tensor] = ()) -> int:
    """Bytes of all the tensors autograd saves for backward while ``fn()`` runs (each storage once).

    The *sum* over the call, not the peak held at one moment (:class:`PeakMemory` gives that):
    the activation memory of a step that holds everything before its backward pass. Storages of
    ``exclude`` (pass the model parameters: they are counted separately) are skipped.

    Args:
        fn: runs a training step (or a forward pass).
        exclude: tensors whose storage is not counted.
    """
    saved = _SavedTensors(exclude)
    with saved.hooks():
        fn()
    return int(saved.total)


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


def cpu_bf16_is_fast(max_slowdown: float = 4.0) -> bool:
    """Whether a bf16-autocast convolution on this CPU runs within ``max_slowdown`` times its float32 time.

    CPUs without native bf16 (no AVX512-BF16 or AMX) emulate it, 50 to 100 times slower than float32
    (measured here: a 64-channel 3x3 convolution on 6 images of 64 px, 0.02 s in float32 and 1.7 s in
    bf16): running a bf16 step there to measure it can take minutes. The probe itself takes well under
    a second.

    Args:
        max_slowdown: the largest bf16 / float32 time ratio still called fast.
    """
    conv = nn.Conv2d(16, 16, 3, padding=1)
    x = torch.randn(2, 16, 32, 32)
    times = []
    with torch.no_grad():
        for bf16 in (False, True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                conv(x)  # warm-up
                start = time.perf_counter()
                for _ in range(3):
                    conv(x)
                times.append(time.perf_counter() - start)
    return times[1] <= max_slowdown * max(times[0], 1e-9)


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


def closest_width(count_at: Callable[[int], int], target: int, widths: Iterable[int]) -> tuple[int, int]:
    """The candidate width whose parameter count is closest to ``target``, and that count.

    ``|count_at(w) - target|`` is smallest; of equally close widths the first candidate wins.

    Args:
        count_at: ``count_at(w)`` is the parameter count at width ``w`` (e.g. of a model built at ``w``).
        target: the parameter count to come close to (e.g. a write-up's reported model size).
        widths: the candidate widths, each tried once in order.

    Returns:
        ``(width, count_at(width))``.
    """
    best: tuple[int, int] | None = None
    for w in widths:
        n = int(count_at(w))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (int(w), n)
    if best is None:
        raise ValueError(f"closest_width got no candidate widths to compare against target {target}; pass a "
                         "non-empty iterable such as range(64, 129, 4).")
    return best
