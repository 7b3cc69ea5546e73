"""Shared test set-up: headless matplotlib, the real data folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent


def real_data_dir() -> Path | None:
    """The real data folder (``$MEDGAN_DATA`` or ``../shared/data``), or ``None`` if absent."""
    for candidate in (os.environ.get("MEDGAN_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir() and any(Path(candidate).iterdir()):
            return Path(candidate)
    return None


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def real_data() -> Path:
    """The real data folder; the test is skipped with a reason when it is absent."""
    path = real_data_dir()
    if path is None:
        pytest.skip("real data not found: set MEDGAN_DATA or place ../shared/data beside the clone")
    return path


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory) -> Path:
    """Every notebook run once at the smoke profile through the real runner (``medgan run all``).

    Returns the reports folder; each experiment's test then reads its ``run.json``.
    """
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("smoke-reports")
    data = real_data_dir()
    cmd = [sys.executable, "-m", "medgan_core.cli", "run", "all", "--profile", "smoke", "--out", str(out), "--no-progress"]
    if data is not None:
        cmd += ["--data-dir", str(data)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "MEDGAN_ROOT": str(REPO)})
    (out / "runner.log").write_text(proc.stdout + "\n" + proc.stderr)
    return out
