"""Where a run computes: device choice, mixed precision and memory layout.

Every function here is a no-op on CPU, so a notebook calls them unconditionally and the same
code runs on a laptop and on a GPU:

    set_threads(num_threads)                     # 0: every core this process may use
    device = select_device(device)               # "auto": cuda, then mps, then cpu
    net_G = maybe_channels_last(net_G, device)   # NHWC convolutions on CUDA only
    with amp_context(device, enabled=amp):       # bf16 autocast on CUDA only
        x_fake = net_G(z)
"""

from __future__ import annotations

import contextlib
import os
import warnings

import torch
from torch import nn


def available_cores() -> int:
    """The CPU cores this process may run on (its CPU affinity where the system has one, else all cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(num_threads: int = 0) -> int:
    """Set torch's CPU threads and return how many it uses: ``num_threads``; for 0, ``$OMP_NUM_THREADS``
    when it is set (a workflow job sized to a share of the machine, a ``torchrun`` rank), else every available core.

    Args:
        num_threads: threads for torch's CPU operations (0: ``$OMP_NUM_THREADS``, else :func:`available_cores`).
    """
    if int(num_threads) < 0:
        raise ValueError(f"num_threads must be >= 0 (0: every core this process may use), got {num_threads}.")
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if int(num_threads) == 0 and omp and not (omp.isdigit() and int(omp) > 0):
        raise ValueError(f"OMP_NUM_THREADS={omp!r} is not a positive integer; unset it or set it to the threads to use.")
    torch.set_num_threads(int(num_threads) or (int(omp) if omp else available_cores()))
    return torch.get_num_threads()


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def select_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device to compute on.

    Args:
        device: ``"auto"`` picks CUDA if present, then Apple's MPS, then the CPU; an explicit
            name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is checked to be available.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}.")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was asked for, but this torch build sees no CUDA GPU "
                               f"(torch {torch.__version__}). Use device='auto' or 'cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device={device!r} was asked for, but only {torch.cuda.device_count()} "
                               "CUDA device(s) exist. Use 'cuda:0' or 'auto'.")
    elif dev.type == "mps" and not _mps_available():
        raise RuntimeError(f"device={device!r} was asked for, but MPS is not available here. "
                           "Use device='auto' or 'cpu'.")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return dev


def amp_context(device: str | torch.device, enabled: bool = True,
                dtype: torch.dtype = torch.bfloat16) -> contextlib.AbstractContextManager:
    """Return an autocast context on CUDA, and a do-nothing context anywhere else.

    bf16 needs no gradient scaling. On a GPU without bf16 the context falls back to fp16 and
    warns: fp16 training then needs a ``torch.amp.GradScaler``, which the caller must add.

    Args:
        device: the device the forward pass runs on.
        enabled: ``False`` always gives the do-nothing context (full float32).
        dtype: ``torch.bfloat16`` (default) or ``torch.float16``.
    """
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"amp dtype must be torch.bfloat16 or torch.float16, got {dtype}.")
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        warnings.warn("This GPU has no bf16: autocasting to fp16, which needs a GradScaler.", stacklevel=2)
        dtype = torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def maybe_channels_last(module: nn.Module, device: str | torch.device) -> nn.Module:
    """Move ``module`` to ``device``, in ``channels_last`` memory format on CUDA only.

    Channels-last (NHWC) speeds up convolutions on tensor-core GPUs; on CPU it brings nothing
    here, so the module keeps its default layout.

    Args:
        module: the network to move.
        device: the target device.
    """
    device = torch.device(device)
    module = module.to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    return module
