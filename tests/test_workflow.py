"""The seed grid's workflow (workflow/Snakefile) through `medgan grid`: its jobs, its file targets, one smoke grid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, real_data_dir
from medgan_core import grid

SMOKE_EXP = "04_cyclegan_style_transfer"  # its smoke headlines differ between seeds, so the aggregate has intervals


def _grid(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDGAN_ROOT": str(REPO)}
    return subprocess.run([sys.executable, "-m", "medgan_core.cli", "grid", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=1200, env=env)


def _job_counts(output: str) -> dict[str, int]:
    """The dry run's "Job stats" table as ``{rule: count}``."""
    table = output[output.index("Job stats:"):]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M) if rule != "total"}


def test_dry_run_lists_one_job_per_experiment_and_seed_and_one_aggregate(tmp_path):
    proc = _grid("01", "04", "--profile", "cpu", "--seeds", "0", "1", "2", "--grid-dir", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _job_counts(proc.stdout) == {"aggregate": 1, "all": 1, "seed_run": 6}
    for exp in ("01_bagan_blood_cells", "04_cyclegan_style_transfer"):
        for seed in (0, 1, 2):
            assert f"run {exp} --profile cpu -p seed={seed} --out {tmp_path}/seed{seed} " in proc.stdout
    assert "run 90_seed_grid --profile cpu" in proc.stdout and "'seeds=[0, 1, 2]'" in proc.stdout
    assert not list(tmp_path.glob("seed*")), "a dry run must not create run folders"


def test_a_finished_seed_is_not_rerun_and_a_died_one_is(tmp_path):
    exp = "01_bagan_blood_cells"
    finished = grid.seed_folder(tmp_path, 0, exp, "cpu")
    finished.mkdir(parents=True)
    (finished / "run.json").write_text(json.dumps({"status": "ok"}))
    (finished / grid.DONE_NAME).write_text("")
    died = grid.seed_folder(tmp_path, 1, exp, "cpu")  # killed mid-run: run.json says running, no grid.done
    died.mkdir(parents=True)
    (died / "run.json").write_text(json.dumps({"status": "running"}))
    proc = _grid(exp, "--profile", "cpu", "--seeds", "0", "1", "--grid-dir", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _job_counts(proc.stdout)["seed_run"] == 1
    assert "-p seed=1" in proc.stdout and "-p seed=0" not in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["nope"], "Unknown experiment 'nope'"),
    (["90_seed_grid"], "is the grid's aggregate"),
    (["01", "--seeds", "-1"], "need an integer >= 0, got '-1'"),
    (["01", "--cores", "two"], "need an integer >= 0, got 'two'"),
])
def test_bad_grid_requests_are_refused_with_a_clear_error(tmp_path, args, message):
    proc = _grid(*args, "--grid-dir", str(tmp_path), "--dry-run")
    assert proc.returncode != 0 and message in proc.stderr


@pytest.mark.slow
def test_smoke_grid_runs_end_to_end_and_the_aggregate_holds_across_seed_intervals(tmp_path):
    data = real_data_dir()
    if data is None:
        pytest.skip("real data not found: set MEDGAN_DATA or place ../shared/data beside the clone")
    args = [SMOKE_EXP, "--profile", "smoke", "--seeds", "0", "1", "2", "--cores", "2", "--grid-dir", str(tmp_path),
            "--data-dir", str(data)]
    proc = _grid(*args)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    for seed in (0, 1, 2):
        assert (grid.seed_folder(tmp_path, seed, SMOKE_EXP, "smoke") / grid.DONE_NAME).is_file()
    folder = tmp_path / "aggregate" / "90_seed_grid" / "smoke"
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "ok", run.get("error")
    assert (folder / "90_seed_grid.html").is_file()
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = metrics["metrics"]["across_seeds"]
    assert {r["n_seeds"] for r in rows} <= {0, 3}  # 0: a number no smoke seed reaches (no model passed its floor)
    intervals = [r for r in rows if r["low"] is not None and r["high"] is not None]
    assert intervals, f"no across-seed interval in {rows}"
    for r in intervals:
        assert r["low"] < r["mean"] < r["high"]  # a real interval around its estimate, never zero width
    assert metrics["verdict"]
    again = _grid(*args)  # every target exists: nothing runs again
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
