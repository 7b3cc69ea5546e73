"""The `medgan` runner end to end on a tiny throwaway study (real papermill, real kernel)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
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


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
                   check=True, capture_output=True, text=True)


@pytest.fixture
def git_study(tmp_path) -> Path:
    """A tiny study in its own git repository, committed clean, with a tracked ``medgan_core/`` file.

    Its notebook does not import medgan_core (the study's ``medgan_core/`` folder would shadow it).
    """
    from study_fixture import make_notebook

    root = make_study(tmp_path / "repo")
    make_notebook(root / "notebooks" / "10_good.ipynb", "A good experiment", body="value = scale * (seed + 1)\n")
    (root / "medgan_core").mkdir()
    (root / "medgan_core" / "notes.txt").write_text("committed\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "study")
    return root


def test_git_tree_clean_dirty_and_unknown(git_study, tmp_path):
    from medgan_core.runner import git_commit, git_tree

    clean = git_tree(git_study, "start")
    assert clean["clean"] is True and clean["n_dirty"] == 0 and clean["checked_at"] == "start"
    assert "+dirty" not in git_commit(git_study)
    (git_study / "reports").mkdir()
    (git_study / "reports" / "x.txt").write_text("reports are not provenance\n")
    assert git_tree(git_study, "end")["clean"] is True
    (git_study / "params" / "10_good" / "new.yaml").write_text("seed: 2\n")  # untracked counts
    dirty = git_tree(git_study, "end")
    assert dirty["clean"] is False and dirty["dirty_paths"] == ["params/10_good/new.yaml"]
    assert git_commit(git_study).endswith("+dirty")
    unknown = git_tree(tmp_path / "nowhere", "start")  # not a git repository
    assert unknown["clean"] is None and unknown["reason"]


def test_run_json_records_a_dirty_tree(git_study):
    from medgan_core.runner import get_experiments, run_experiment

    (git_study / "medgan_core" / "notes.txt").write_text("changed, not committed\n")
    exp = get_experiments(["10_good"], git_study)[0]
    record = run_experiment(exp, "smoke", root=git_study, progress=False)
    run = json.loads((git_study / "reports" / "10_good" / "smoke" / "run.json").read_text())
    assert run == json.loads(json.dumps(record))
    assert run["status"] == "ok" and run["git_commit"].endswith("+dirty")
    tree = run["tree"]
    assert tree["clean"] is False and tree["n_dirty"] == 1 and tree["dirty_paths"] == ["medgan_core/notes.txt"]
    assert tree["start"]["checked_at"] == "start" and tree["start"]["clean"] is False
    assert tree["end"]["checked_at"] == "end" and tree["end"]["clean"] is False
    assert run["time_limit_min"] is None and run["over_budget"] is False  # smoke has no limit
    index = (git_study / "reports" / "index.html").read_text()
    assert "built from uncommitted changes: 1 file" in index and "medgan_core/notes.txt" in index


def test_time_limit_stops_the_run_and_marks_it_timed_out(tmp_path):
    from medgan_core.runner import get_experiments, run_experiment
    from study_fixture import make_notebook

    root = make_study(tmp_path)
    marker = tmp_path / "after.txt"
    body = "import time\nfor _ in range(600):\n    time.sleep(0.1)\n"
    path = make_notebook(root / "notebooks" / "10_good.ipynb", "A slow experiment", body=body)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"open({str(marker)!r}, 'w').write('ran')"))
    nbformat.write(nb, str(path))
    exp = get_experiments(["10_good"], root)[0]
    record = run_experiment(exp, "smoke", root=root, progress=False, time_limit_min=0.1)  # 6 s, sleep is 60 s
    assert record["status"] == "timed_out" and record["over_budget"] is True
    assert record["time_limit_min"] == 0.1 and "--time-limit-min" in record["error"]
    assert record["wall_seconds"] < 40
    assert not marker.exists()  # the run stopped at the interrupted cell
    folder = root / "reports" / "10_good" / "smoke"
    assert "KeyboardInterrupt" in (folder / "10_good.ipynb").read_text()  # saved with the interruption
    assert (folder / "10_good.html").is_file() and not list(folder.glob(".*partial*"))
    index = (root / "reports" / "index.html").read_text()
    assert "status-timed_out" in index and "over budget" in index
    assert json.loads((folder / "run.json").read_text())["status"] == "timed_out"


def test_time_limit_option_is_checked(study):
    out = medgan(study, "run", "10_good", "--profile", "smoke", "--time-limit-min", "-1")
    assert out.returncode == 2 and "--time-limit-min" in out.stderr
    out = medgan(study, "list")
    assert "limit 40" in out.stdout and "--time-limit-min" in out.stdout
