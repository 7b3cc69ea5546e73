"""Plain papermill refuses the parameter mistakes `medgan run` refuses, and never merges metrics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from medgan_core import results
from medgan_core.params import ParameterError, check_injected, load_params_file, parse_override, read_parameters
from study_fixture import make_notebook

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def notebook(tmp_path) -> Path:
    return make_notebook(tmp_path / "10_good.ipynb", "A good experiment")


def test_numbers_in_e_notation_are_floats_everywhere(notebook, tmp_path):
    params = read_parameters(notebook)
    assert parse_override("scale=1e-3", params) == ("scale", 0.001)  # YAML 1.1 alone reads it as text
    assert parse_override("seed=1e3", params) == ("seed", 1000)
    with pytest.raises(ParameterError, match="expects int"):
        parse_override("seed=1e-3", params)
    (tmp_path / "p.yaml").write_text("scale: 2e-4\n")
    assert load_params_file(tmp_path / "p.yaml", params) == {"scale": 0.0002}


def test_check_injected_rejects_unknown_and_mistyped_names_and_converts_numbers(notebook):
    ok = {"In": ["import x", "# Parameters\nseed = 3\nscale = \"1e-3\"\n"], "seed": 3, "scale": "1e-3"}
    assert check_injected(notebook, ok) == ["seed", "scale"] and ok["scale"] == 0.001
    typo = {"In": ["# Parameters\nsede = 1\n"], "sede": 1}
    with pytest.raises(ParameterError, match=r"(?s)unknown parameters \['sede'\].*Valid parameters:.*seed \(int"):
        check_injected(notebook, typo)
    wrong = {"In": ["# Parameters\nfail = 3\n"], "fail": 3}
    with pytest.raises(ParameterError, match="papermill parameters: parameter 'fail' expects bool"):
        check_injected(notebook, wrong)
    assert check_injected(notebook, {"In": ["seed = 99"]}) == []  # no injected cell (Jupyter): nothing to check


def test_metrics_outside_the_runner_go_to_a_new_timestamped_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(results.RUN_DIR_VAR, "placeholder")
    monkeypatch.delenv(results.RUN_DIR_VAR)
    monkeypatch.setenv(results.EXPERIMENT_VAR, "10_good")
    first = results.metrics_path()
    assert first.parent.parent == tmp_path / "runs" / "10_good" and first.name == "metrics.json"
    results.log_metrics(a=1)
    assert results.metrics_path() == first and results.load_metrics(first)["metrics"] == {"a": 1}


def test_plain_papermill_with_a_misspelled_parameter_fails_before_any_work(tmp_path):
    import papermill as pm

    t0 = time.perf_counter()
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(REPO / "notebooks" / "00_data_tour.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"profile": "smoke", "sede": 1}, kernel_name="python3", progress_bar=False,
                            cwd=str(tmp_path))
    assert err.value.ename == "ParameterError" and "sede" in err.value.evalue
    assert err.value.exec_count <= 4  # parameters, injected, imports, then the first cell: stopped there
    assert time.perf_counter() - t0 < 120
    assert not (tmp_path / "runs").exists()  # no metrics were written


def test_an_empty_data_dir_means_the_default_for_every_command():
    from medgan_core.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", "00_data_tour", "--data-dir", ""]).data_dir is None
    assert parser.parse_args(["data", "check", "--data-dir", ""]).data_dir is None
    assert parser.parse_args(["data", "check", "--data-dir", "/x"]).data_dir == "/x"
