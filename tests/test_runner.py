"""The `medgan` runner end to end on a tiny throwaway study (real papermill, real kernel)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medgan_core.params import ParameterError, parse_override, read_parameters
from study_fixture import make_study


def medgan(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDGAN_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "medgan_core.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("study"))


def test_read_parameters_types_and_help(study):
    params = read_parameters(study / "notebooks" / "10_good.ipynb")
    assert list(params) == ["seed", "scale", "label", "fail", "profile", "data_dir"]
    assert params["scale"].type_name == "float" and params["scale"].help == "a float parameter"
    assert parse_override("scale=3", params) == ("scale", 3.0)
    assert parse_override("label=123", params) == ("label", "123")  # str keeps the raw text
    with pytest.raises(ParameterError, match="expects int"):
        parse_override("seed=abc", params)
    with pytest.raises(ParameterError, match="expects bool"):
        parse_override("fail=3", params)


def test_list(study):
    out = medgan(study, "list")
    assert out.returncode == 0, out.stderr
    assert "10_good" in out.stdout and "smoke,cpu" in out.stdout and "A good experiment" in out.stdout


def test_unknown_parameter_rejected_before_running(study):
    out = medgan(study, "run", "10_good", "--profile", "smoke", "-p", "no_such_param=1")
    assert out.returncode != 0
    assert "no_such_param" in out.stderr and "Valid parameters" in out.stderr
    for name in ("seed", "scale", "label", "fail"):
        assert name in out.stderr
    assert not (study / "reports" / "10_good").exists()  # nothing ran


def test_wrong_type_rejected(study):
    out = medgan(study, "run", "10_good", "--profile", "smoke", "-p", "seed=1.5")
    assert out.returncode != 0 and "expects int" in out.stderr
    assert not (study / "reports" / "10_good").exists()


def test_bad_params_file_rejected(tmp_path):
    root = make_study(tmp_path)
    (root / "params" / "10_good" / "smoke.yaml").write_text("sede: 1\n")
    out = medgan(root, "run", "10_good", "--profile", "smoke")
    assert out.returncode != 0 and "sede" in out.stderr and "smoke.yaml" in out.stderr


def test_unknown_experiment(study):
    out = medgan(study, "run", "99_nothing", "--profile", "smoke")
    assert out.returncode != 0 and "10_good" in out.stderr


def test_batch_runs_publishes_and_survives_a_failure(study):
    out = medgan(study, "run", "all", "--profile", "smoke", "-p", "label=batch")
    assert out.returncode == 1, out.stderr  # 11_bad fails, so the batch exits non-zero at the end
    good, bad = study / "reports" / "10_good" / "smoke", study / "reports" / "11_bad" / "smoke"
    for folder, name in ((good, "10_good"), (bad, "11_bad")):
        for f in (f"{name}.ipynb", f"{name}.html", f"{name}.reader.html", "metrics.json", "params.json", "run.json"):
            assert (folder / f).is_file(), f"{folder / f} missing"
        assert not list(folder.glob(".*.tmp")) and not list(folder.glob(".*partial*"))

    run = json.loads((good / "run.json").read_text())
    assert run["status"] == "ok" and run["profile"] == "smoke"
    for key in ("git_commit", "packages", "device", "start", "end", "wall_seconds", "peak_memory_mb", "command"):
        assert key in run
    assert run["cpu_cores_available"] >= 1  # what num_threads = 0 gives the notebooks
    assert run["peak_memory_mb"] > 10  # the kernel's resident memory was sampled
    assert run["packages"]["torch"].startswith("2.13")
    params = json.loads((good / "params.json").read_text())
    assert params["seed"] == 1 and params["scale"] == 2.0 and params["label"] == "batch"  # yaml < -p
    metrics = json.loads((good / "metrics.json").read_text())
    assert metrics["metrics"]["value"] == pytest.approx(4.0)  # scale 2 * (seed 1 + 1), computed in the run
    assert metrics["verdict"] == "The value is 4.00 for batch."

    bad_run = json.loads((bad / "run.json").read_text())
    assert bad_run["status"] == "failed" and "planted failure" in bad_run["error"]
    bad_html = (bad / "11_bad.html").read_text()
    assert "An Exception was encountered" in bad_html  # papermill's error banner, rendered

    full, reader = (good / "10_good.html").read_text(), (good / "10_good.reader.html").read_text()
    code = 'class="highlight hl-'
    assert code in full and code not in reader and "log_metrics" in full
    assert "PROFILE smoke" in reader  # outputs stay in the reader version
    for page in (full, reader):
        assert "<math" in page and "MEDGANMATH" not in page
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", page)
        assert "Reproduce" in page and "medgan run 10_good --profile smoke" in page
        assert 'href="#Method"' in page  # table of contents

    index = (study / "reports" / "index.html").read_text()
    assert "10_good/smoke/10_good.html" in index and "10_good/smoke/10_good.reader.html" in index
    assert "status-ok" in index and "status-failed" in index
    assert "Demo value" in index and "The value is 4.00 for batch." in index
