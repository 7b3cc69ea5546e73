"""One run identity: a short hash of the parameters, the data and the code that made a run.

A run folder is named ``<name>_<run_id>`` (:func:`run_folder`), so a changed parameter, a changed
image or a changed line of ``medgan_core`` (or of the notebook) gives a new folder and never
resumes a stale checkpoint; the same inputs find the same folder and resume it.

- :func:`data_fingerprint`: sha256 over each array's dtype, shape and bytes.
- :func:`code_fingerprint`: sha256 over every ``medgan_core/**/*.py`` (relative path and bytes,
  sorted by path), plus ``notebooks/<notebook>.ipynb`` beside the package when named and present.
- :func:`run_id`: the first 12 hex digits of a sha256 over the parameters (JSON, sorted keys,
  ``default=str``), the data fingerprint and the code fingerprint.
- :func:`notebook_parameters`: a notebook's resolved parameters (the names of its ``parameters``
  cell with their current values), the ``params`` a notebook passes to :func:`run_folder`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # `medgan_core/`
RUN_ID_LENGTH = 12


def data_fingerprint(*arrays: Any) -> str:
    """sha256 hex digest over each array's dtype, shape and bytes, in the order given.

    Args:
        *arrays: NumPy arrays, torch tensors (copied to the CPU) or array-likes.
    """
    h = hashlib.sha256()
    for i, a in enumerate(arrays):
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(np.asarray(a))
        if a.dtype == object:
            raise TypeError(f"array {i} has dtype object; pass numeric arrays "
                            "(convert labels with np.asarray(..., int)).")
        h.update(f"{i}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def code_fingerprint(notebook: str | None = None) -> str:
    """sha256 hex digest over the package's source files and, if named and present, one notebook.

    Args:
        notebook: a notebook's name in ``notebooks/`` beside the package (``.ipynb`` optional).
    """
    root = Path(PACKAGE_DIR)
    if not root.is_dir():
        raise FileNotFoundError(f"package folder {root} not found; is medgan_core installed from a checkout?")
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    if notebook is not None:
        name = notebook[:-len(".ipynb")] if notebook.endswith(".ipynb") else notebook
        path = root.parent / "notebooks" / f"{name}.ipynb"
        if path.is_file():
            h.update(f"notebooks/{path.name}".encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def notebook_parameters(notebook: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's parameters with their resolved values (after papermill's overrides).

    The names are those of the cell tagged ``parameters`` in ``notebooks/<notebook>.ipynb``
    beside the package; the values are read from ``namespace`` (pass ``globals()``).

    Args:
        notebook: the notebook's name (``.ipynb`` optional).
        namespace: where the values live, usually the notebook's ``globals()``.
    """
    from medgan_core.params import read_parameters  # nbformat is only needed here

    name = notebook[:-len(".ipynb")] if notebook.endswith(".ipynb") else notebook
    path = Path(PACKAGE_DIR).parent / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} not found; pass the name of a notebook in notebooks/.")
    names = list(read_parameters(path))
    missing = [n for n in names if n not in namespace]
    if missing:
        raise KeyError(f"{missing} of {name}'s parameters are not defined; run the parameters cell first.")
    return {n: namespace[n] for n in names}


def run_id(params: Mapping[str, Any], *arrays: Any, notebook: str | None = None) -> str:
    """A 12-hex-digit id of the parameters, the data and the code.

    Args:
        params: the resolved parameters (every value the run depends on).
        *arrays: the data (e.g. training images and labels).
        notebook: the notebook whose source also counts (see :func:`code_fingerprint`).
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of parameter names to values, got {type(params).__name__}.")
    h = hashlib.sha256(json.dumps(dict(params), sort_keys=True, default=str).encode())
    h.update(data_fingerprint(*arrays).encode())
    h.update(code_fingerprint(notebook).encode())
    return h.hexdigest()[:RUN_ID_LENGTH]


def run_folder(root: str | Path, name: str, params: Mapping[str, Any], *arrays: Any,
               notebook: str | None = None) -> Path:
    """``root/<name>_<run_id>``: the folder of one run's checkpoints (not created here).

    Args:
        root: the folder that holds the run folders.
        name: a readable prefix (e.g. the model's registry name).
        params: the resolved parameters.
        *arrays: the data.
        notebook: the notebook whose source also counts.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a non-empty folder name without slashes, got {name!r}.")
    return Path(root) / f"{name}_{run_id(params, *arrays, notebook=notebook)}"
