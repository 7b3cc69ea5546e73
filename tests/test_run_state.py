"""Report folders never claim a state they are not in: killed, interrupted and concurrent runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medgan_core.run_state import (
    FolderBusyError, FolderLock, clear_outputs, effective_status, pid_alive, write_running,
)
from study_fixture import make_notebook, make_study


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_lock_on_a_folder_is_refused_with_its_owner(tmp_path):
    with FolderLock(tmp_path / "rep", command="medgan run X"):
        with pytest.raises(FolderBusyError, match=rf"pid {os.getpid()} on .*medgan run X.*another --out"):
            with FolderLock(tmp_path / "rep"):
                pass
    assert not (tmp_path / "rep" / ".lock").exists()  # released
    with FolderLock(tmp_path / "rep"):  # and free again
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_message(tmp_path, capsys):
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / ".lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "since": "then"}))
    with FolderLock(folder):
        assert json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
    assert "taking over" in capsys.readouterr().err
    (folder / ".lock").write_text(json.dumps({"pid": _dead_pid(), "host": "another-host", "since": "then"}))
    with pytest.raises(FolderBusyError, match="another-host"):  # another machine's pid cannot be checked from here
        with FolderLock(folder):
            pass


def test_running_record_reads_as_died_once_its_process_is_gone(tmp_path):
    record = write_running(tmp_path, {"experiment": "x"})
    assert record["status"] == "running" and effective_status(record) == "running"
    assert json.loads((tmp_path / "run.json").read_text())["pid"] == os.getpid()
    assert effective_status({**record, "pid": _dead_pid()}) == "died"
    assert effective_status({**record, "pid": _dead_pid(), "host": "elsewhere"}) == "running"
    assert effective_status({"status": "ok"}) == "ok" and not pid_alive(_dead_pid())


def test_clear_outputs_keeps_only_the_lock_and_run_json(tmp_path):
    for name in ("run.json", ".lock", "x.html", "x.ipynb", ".x.partial.ipynb", "metrics.json", "answers.csv"):
        (tmp_path / name).write_text("old")
    assert sorted(clear_outputs(tmp_path)) == [".x.partial.ipynb", "answers.csv", "metrics.json", "x.html", "x.ipynb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "run.json"]


@pytest.fixture
def slow_study(tmp_path) -> Path:
    root = make_study(tmp_path / "study")
    make_notebook(root / "notebooks" / "12_slow.ipynb", "A slow experiment",
                  body="import time\nfrom medgan_core import results\nresults.log_metrics(started=1)\n"
                       "time.sleep(0 if fail else 120)\n")
    (root / "params" / "12_slow").mkdir(parents=True)
    (root / "params" / "12_slow" / "smoke.yaml").write_text("")
    folder = root / "reports" / "12_slow" / "smoke"  # an earlier, finished run's report
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"experiment": "12_slow", "profile": "smoke", "status": "ok"}))
    (folder / "12_slow.html").write_text("old report")
    (folder / "metrics.json").write_text(json.dumps({"metrics": {"old": 1}, "verdict": "old verdict"}))
    return root


def _start(root: Path) -> subprocess.Popen:
    env = {**os.environ, "MEDGAN_ROOT": str(root)}
    return subprocess.Popen([sys.executable, "-m", "medgan_core.cli", "run", "12_slow", "--profile", "smoke",
                             "--no-progress"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_until_executing(folder: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until the notebook has logged its first metric (the kernel runs the sleeping cell)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()}")
        try:
            if json.loads((folder / "metrics.json").read_text())["metrics"].get("started"):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError("the notebook never started")


def _medgan(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDGAN_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "medgan_core.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_killed_run_shows_died_and_a_second_run_is_refused_meanwhile(slow_study):
    folder = slow_study / "reports" / "12_slow" / "smoke"
    proc = _start(slow_study)
    try:
        _wait_until_executing(folder, proc)
        run = json.loads((folder / "run.json").read_text())
        assert run["status"] == "running" and run["pid"] == proc.pid
        assert not (folder / "12_slow.html").exists()  # the earlier report is gone, not passed off as this run's
        assert "status-running" in (slow_study / "reports" / "index.html").read_text()
        second = _medgan(slow_study, "run", "12_slow", "--profile", "smoke", "--no-progress")
        assert second.returncode == 1 and "is being written by another run" in second.stderr
        assert json.loads((folder / "run.json").read_text())["pid"] == proc.pid  # untouched by the refused run
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, as a CI timeout would
        proc.wait()
    assert json.loads((folder / "run.json").read_text())["status"] == "running"
    assert _medgan(slow_study, "index").returncode == 0
    index = (slow_study / "reports" / "index.html").read_text()
    assert "status-died" in index and "old verdict" not in index and "process is gone" in index
    again = _medgan(slow_study, "run", "12_slow", "--profile", "smoke", "--no-progress", "-p", "fail=true")
    assert "taking over" in again.stderr  # the dead run's lock does not block the next run


def test_sigterm_ends_the_run_as_interrupted(slow_study):
    folder = slow_study / "reports" / "12_slow" / "smoke"
    proc = _start(slow_study)
    try:
        _wait_until_executing(folder, proc)
        proc.send_signal(signal.SIGTERM)  # the runner only, as `timeout` does
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "interrupted" and "signal 15" in run["error"]
    assert (folder / "12_slow.html").is_file() and not (folder / ".lock").exists()
    assert "status-interrupted" in (slow_study / "reports" / "index.html").read_text()


def test_an_out_that_is_a_file_or_not_writable_is_one_clear_line(study_for_out):
    root = study_for_out
    (root / "afile").write_text("x")
    out = _medgan(root, "run", "10_good", "--profile", "smoke", "--out", str(root / "afile"))
    assert out.returncode == 2 and "is a file, not a folder" in out.stderr and "Traceback" not in out.stderr
    locked = root / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions: nothing to test here
        pytest.skip("this user can write to a read-only folder")
    out = _medgan(root, "run", "10_good", "--profile", "smoke", "--out", str(locked))
    assert out.returncode == 2 and "cannot write there" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture
def study_for_out(tmp_path) -> Path:
    return make_study(tmp_path / "study")
