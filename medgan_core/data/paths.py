"""Where the data folder is.

Resolution order (STUDY.md section 4): an explicit ``data_dir`` argument (the runner's
``--data-dir``), then the ``MEDGAN_DATA`` environment variable, then ``./data``.
"""

from __future__ import annotations

import os
from pathlib import Path

from medgan_core.data.errors import MissingDatasetError

ENV_VAR = "MEDGAN_DATA"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data folder, following the documented resolution order.

    Args:
        data_dir: an explicit folder; ``None`` falls back to ``$MEDGAN_DATA`` then ``./data``.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    return Path("data")


def dataset_dir(folder: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Return ``<data_dir>/<folder>``, raising a clear error if it does not exist.

    Args:
        folder: the dataset's folder name, e.g. ``"bccd_blood"``.
        data_dir: the data folder (see :func:`resolve_data_dir`).
    """
    from medgan_core.data.registry import by_folder  # local import: registry imports nothing heavy

    root = resolve_data_dir(data_dir)
    path = root / folder
    if not path.is_dir():
        info = by_folder(folder)
        how = f"\n  Expected layout: {info.layout}\n  Obtain it: {info.obtain}" if info else ""
        raise MissingDatasetError(
            f"Dataset folder not found: {path.resolve()}\n"
            f"  Looked in the data folder {root.resolve()} (set it with --data-dir or "
            f"the {ENV_VAR} environment variable).{how}"
        )
    return path
