"""Checkpoints of the complete training state, written atomically and loaded safely.

A checkpoint holds everything a resumed run needs to continue *exactly* as an uninterrupted one
would: the ``state_dict`` of every model, optimiser, learning-rate scheduler, EMA and image
pool, the random states of Python, NumPy and torch (CPU and CUDA), the step, and an ``extra``
dict (loss history, fixed latent vectors, ...).

Format: one ``torch.save`` file, loaded with ``torch.load(..., weights_only=True)``, which
refuses to run arbitrary code from a file (plain pickle would). That loader accepts tensors,
numbers, strings, ``None`` and dicts/lists/tuples/sets of them, so the random states are stored
in those forms (NumPy's key as a list of ints) and :func:`save_checkpoint` checks the whole
state before writing, naming the first value of another type (a NumPy scalar, say). One file
keeps the optimiser's nested state simple; safetensors would need a JSON sidecar for it.

Writing is atomic: the state goes to a temporary file in the same folder, is flushed and
fsync'ed, then renamed over the target with ``os.replace``. A crash or error while saving leaves
the previous checkpoint untouched, never a half-written one.

Every checkpoint has a checksum beside it, ``ckpt_{step:08d}.pt.sha256`` (written before the
checkpoint is renamed into place), and :func:`load_checkpoint` verifies it: a flipped byte in a
tensor would otherwise load silently and change the results. A checkpoint without its checksum
is incomplete and :func:`latest_checkpoint` skips it.

Files are named ``ckpt_{step:08d}.pt``; :func:`latest_checkpoint` finds the newest in a folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import re
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan_core.atomic import write_text_atomic

FORMAT_VERSION = 1
GROUPS = ("models", "optimizers", "schedulers", "ema", "pools")
_NAME = re.compile(r"^ckpt_(\d+)\.pt$")
_SCALARS = (str, bytes, int, float, complex, bool, type(None), torch.Size, torch.dtype, torch.device)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read, or does not match the objects it is loaded into."""


def checkpoint_path(folder: str | Path, step: int) -> Path:
    """Return ``folder/ckpt_{step:08d}.pt``.

    Args:
        folder: the run folder.
        step: the number of completed training steps the checkpoint holds.
    """
    return Path(folder) / f"ckpt_{int(step):08d}.pt"


def checksum_path(path: str | Path) -> Path:
    """The checksum file of a checkpoint: ``ckpt_00000500.pt.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def latest_checkpoint(folder: str | Path) -> Path | None:
    """Return the checkpoint with the highest step in ``folder``, or ``None`` if there is none.

    Temporary files of an interrupted save, and checkpoints without their checksum file (a save
    that did not complete), are ignored.

    Args:
        folder: the run folder (need not exist).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _NAME.match(p.name)) and p.is_file() and checksum_path(p).is_file()]
    return max(found)[1] if found else None


def rng_state() -> dict:
    """Return the random states of Python, NumPy and torch (and CUDA if initialised) as plain data."""
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()  # ndarray -> list of ints
    state = {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the random states saved by :func:`rng_state`.

    Args:
        state: the dict returned by :func:`rng_state` (possibly after a save/load round trip).
    """
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = dict(np_state["state"], key=np.asarray(np_state["state"]["key"], dtype=np.uint32))
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _check_plain(obj: Any, where: str) -> None:
    """Raise CheckpointError at the first value that ``torch.load(weights_only=True)`` would refuse.

    Types are compared exactly: a NumPy ``float64`` is a ``float`` subclass, yet pickles as a
    NumPy object that the safe loader refuses.
    """
    kind = type(obj)
    if kind in (dict, OrderedDict):
        for key, value in obj.items():
            _check_plain(key, f"{where} key {key!r}")
            _check_plain(value, f"{where}[{key!r}]")
    elif kind in (list, tuple, set, frozenset):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
    elif kind not in _SCALARS and not isinstance(obj, torch.Tensor):
        raise CheckpointError(f"Cannot checkpoint {where}: type {kind.__module__}.{kind.__qualname__} "
                              "is not loadable with weights_only=True. Store tensors, Python numbers, "
                              "strings and lists/dicts of them (e.g. float(x) for a NumPy scalar, "
                              "torch.as_tensor(a) for an array).")


def _states(group: str, objects: Mapping[str, Any] | None) -> dict:
    objects = dict(objects or {})
    for name, obj in objects.items():
        if not hasattr(obj, "state_dict"):
            raise TypeError(f"{group}['{name}'] has no state_dict(): pass models, optimisers, schedulers, "
                            "EMA and ImagePool objects.")
    return {name: obj.state_dict() for name, obj in objects.items()}


def save_checkpoint(path: str | Path, *, models: Mapping[str, Any], optimizers: Mapping[str, Any],
                    schedulers: Mapping[str, Any] | None = None, ema: Mapping[str, Any] | None = None,
                    pools: Mapping[str, Any] | None = None, step: int, extra: dict | None = None) -> Path:
    """Write the complete training state to ``path`` atomically.

    Args:
        path: the checkpoint file; its folder is created if needed.
        models: ``{"G": net_G, "D": net_D}``: every ``nn.Module`` being trained.
        optimizers: ``{"G": opt_G, "D": opt_D}``.
        schedulers: learning-rate schedulers by name.
        ema: :class:`~medgan_core.train.ema.EMA` objects by name.
        pools: :class:`~medgan_core.train.image_pool.ImagePool` objects by name.
        step: the number of completed training steps.
        extra: further plain data to keep (loss history, fixed noise, ...).

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    if not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}.")
    payload = {"format_version": FORMAT_VERSION, "step": int(step), "extra": dict(extra or {}), "rng": rng_state()}
    for group, objects in zip(GROUPS, (models, optimizers, schedulers, ema, pools)):
        payload[group] = _states(group, objects)
    _check_plain(payload, "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        data = buffer.getvalue()
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        write_text_atomic(checksum_path(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _verified_bytes(path: Path) -> bytes:
    """The checkpoint's bytes, after checking them against its checksum file."""
    fix = (f"Delete {path.name} and {checksum_path(path).name} to resume from the previous checkpoint, "
           f"or delete the folder {path.parent} to train again.")
    try:
        expected = checksum_path(path).read_text().split()[0]
    except (OSError, IndexError) as err:
        raise CheckpointError(f"{path} has no readable checksum file {checksum_path(path).name}, so its integrity "
                              f"cannot be checked (an interrupted save, or a copy without it). {fix}") from err
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{path} does not match its sha256 in {checksum_path(path).name}: the file changed "
                              f"after it was written (a disk or copy error, or an edit). {fix}")
    return data


def load_checkpoint(path: str | Path, *, models: Mapping[str, Any], optimizers: Mapping[str, Any],
                    schedulers: Mapping[str, Any] | None = None, ema: Mapping[str, Any] | None = None,
                    pools: Mapping[str, Any] | None = None, restore_rng: bool = True) -> tuple[int, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` into freshly built objects.

    The names in each group must be exactly those saved; models are loaded strictly.

    Args:
        path: the checkpoint file.
        models: the models to fill, by the names used when saving.
        optimizers: the optimisers to fill (built over the models' parameters).
        schedulers: the schedulers to fill.
        ema: the EMA objects to fill.
        pools: the image pools to fill.
        restore_rng: also restore Python/NumPy/torch random states (needed for an exact resume).

    Returns:
        ``(step, extra)``: the number of completed steps and the saved ``extra`` dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    data = _verified_bytes(path)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
            raise CheckpointError(f"{path} is not a torch checkpoint: it is truncated or corrupt; "
                                  "delete it to resume from the previous one.") from err
        raise CheckpointError(f"{path} holds objects other than tensors and plain data, so it is not "
                              f"loaded (weights_only=True). Was it written by save_checkpoint? {err}") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # ValueError: a truncated archive read from memory
        raise CheckpointError(f"Cannot read checkpoint {path}: {err}. The file is truncated or corrupt; "
                              "delete it to resume from the previous one.") from err
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a medgan checkpoint of format {FORMAT_VERSION}.")
    for group, objects in zip(GROUPS, (models, optimizers, schedulers, ema, pools)):
        objects = dict(objects or {})
        saved = payload[group]
        if set(objects) != set(saved):
            raise CheckpointError(f"{path} holds {group} {sorted(saved)}, but {sorted(objects)} were passed; "
                                  "pass the same names as when saving.")
        for name, obj in objects.items():
            try:
                obj.load_state_dict(saved[name])
            except (RuntimeError, KeyError, ValueError) as err:
                raise CheckpointError(f"Cannot load {group}['{name}'] from {path}: {err}. "
                                      "Build it with the same architecture and settings as when saving.") from err
    if restore_rng:
        set_rng_state(payload["rng"])
    return payload["step"], payload["extra"]
