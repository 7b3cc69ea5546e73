"""Every notebook runs at the smoke profile through the real runner, within budget."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import REPO
from medgan_core.params import load_params_file, read_parameters
from medgan_core.runner import PROFILES, list_experiments

EXPERIMENTS = [e.name for e in list_experiments(REPO) if not e.aggregate]  # the aggregate: tests/test_workflow.py
SMOKE_BUDGET_S = 60


@pytest.mark.parametrize("name", [e.name for e in list_experiments(REPO)])
def test_params_files_hold_only_valid_overrides(name):
    exp = next(e for e in list_experiments(REPO) if e.name == name)
    params = read_parameters(exp.notebook)
    needed = {"profile"} if exp.aggregate else {"seed", "data_dir", "profile"}  # the aggregate reads reports, not data
    assert needed <= set(params), f"{name} must take {sorted(needed)}"
    for profile in PROFILES:
        path = REPO / "params" / name / f"{profile}.yaml"
        assert path.is_file(), f"{path} missing"
        load_params_file(path, params)  # raises on unknown names or wrong types


@pytest.mark.parametrize("name", [e.name for e in list_experiments(REPO)])
def test_notebook_committed_without_outputs(name):
    nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_run_through_runner(smoke_reports, name):
    folder = smoke_reports / name / "smoke"
    log = (smoke_reports / "runner.log").read_text()
    assert (folder / "run.json").is_file(), f"no run.json for {name}; runner log:\n{log[-3000:]}"
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "ok", f"{name} failed: {run['error']}\n{log[-3000:]}"
    assert run["wall_seconds"] <= SMOKE_BUDGET_S, f"{name} smoke took {run['wall_seconds']:.0f} s > {SMOKE_BUDGET_S} s"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["metrics"], f"{name} logged no metrics"
    assert (folder / f"{name}.html").is_file() and (folder / f"{name}.reader.html").is_file()
    assert (smoke_reports / "index.html").is_file()
