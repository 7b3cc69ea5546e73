"""The ``medgan`` runner: execute experiment notebooks with papermill and publish reports.

Contract (STUDY.md section 2): parameters come from the notebook's ``parameters`` cell,
overridden by ``params/EXP/PROFILE.yaml``, overridden by ``-p name=value``; names and types are
checked before anything runs. Each run writes ``reports/EXP/PROFILE/`` with the executed
notebook, ``EXP.html`` (full) and ``EXP.reader.html`` (no code), ``metrics.json`` (written by
the notebook through :mod:`medgan_core.results`), ``params.json`` and ``run.json``; all
atomically. A failing notebook is saved with papermill's error banner, rendered anyway and
marked failed; a batch goes on and reports failure at the end. ``reports/index.html`` is
rebuilt after every run.

Provenance: ``run.json`` records whether ``notebooks/``, ``medgan_core/`` or ``params/`` had
uncommitted or untracked changes when the run started and when it ended (:func:`git_tree`).
Budget: each profile has a wall-clock limit per experiment (:data:`TIME_LIMIT_MIN`, cpu 40 min);
past it the running cell is interrupted, the report is published with the interruption's
banner and ``run.json`` says ``"status": "timed_out"``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from medgan_core.atomic import write_json_atomic, write_text_atomic
from medgan_core.params import ParameterError, load_params_file, parse_override, read_parameters
from medgan_core.results import EXPERIMENT_VAR, RUN_DIR_VAR
from medgan_core.run_state import FolderBusyError, FolderLock, clear_outputs, sigterm_as_interrupt, write_running

PROFILES = ("smoke", "cpu", "gpu")
# Wall-clock limit per experiment, in minutes, that the runner enforces (None: no limit). The cpu
# profile is the published teaching scale: 40 min per experiment on 2 cores. --time-limit-min overrides.
TIME_LIMIT_MIN: dict[str, float | None] = {"smoke": None, "cpu": 40.0, "gpu": None}
# The folders whose uncommitted changes make a report "built from uncommitted changes".
TRACKED_FOLDERS = ("notebooks", "medgan_core", "params")
MAX_DIRTY_PATHS = 20
PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "torchmetrics", "matplotlib",
            "seaborn", "pydicom", "papermill", "nbconvert", "latex2mathml")


@dataclass
class Experiment:
    """One experiment notebook and what is known about it.

    Args:
        name: the notebook's stem, e.g. ``"00_data_tour"``.
        notebook: path of the notebook.
        title: from the notebook metadata (``metadata.medgan.title``) or the name.
        profiles: profiles with a params file.
        expected_minutes: expected wall time per profile on 2 CPU cores.
        data_folders: data folders the notebook reads.
        aggregate: a notebook that reads other runs' reports (``metadata.medgan.aggregate``, the seed
            grid's ``90_seed_grid``) rather than data; ``all`` leaves it out.
    """

    name: str
    notebook: Path
    title: str
    profiles: list[str]
    expected_minutes: dict[str, float] = field(default_factory=dict)
    data_folders: list[str] = field(default_factory=list)
    aggregate: bool = False


def repo_root() -> Path:
    """The study's root folder: ``$MEDGAN_ROOT``, else the nearest parent of the current folder
    holding ``notebooks/`` and ``params/``, else the folder above the installed package."""
    if os.environ.get("MEDGAN_ROOT"):
        return Path(os.environ["MEDGAN_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "params").is_dir():
            return folder
    return Path(__file__).resolve().parent.parent


def list_experiments(root: Path | None = None) -> list[Experiment]:
    """Every ``notebooks/*.ipynb`` of the study, sorted by name.

    Args:
        root: the study root (default :func:`repo_root`).
    """
    root = root or repo_root()
    experiments = []
    for nb_path in sorted((root / "notebooks").glob("*.ipynb")):
        meta = nbformat.read(str(nb_path), as_version=4).metadata.get("medgan", {})
        params_dir = root / "params" / nb_path.stem
        profiles = [p for p in PROFILES if (params_dir / f"{p}.yaml").is_file()]
        experiments.append(Experiment(nb_path.stem, nb_path, meta.get("title", nb_path.stem), profiles,
                                      dict(meta.get("expected_minutes", {})), list(meta.get("data_folders", [])),
                                      bool(meta.get("aggregate", False))))
    return experiments


def get_experiments(names: list[str], root: Path | None = None) -> list[Experiment]:
    """Look up experiments by name (``all`` for every experiment, aggregates left out); unknown names list the valid ones.

    Args:
        names: experiment names or ``["all"]``.
        root: the study root.
    """
    available = list_experiments(root)
    if names == ["all"] or "all" in names:
        return [e for e in available if not e.aggregate]
    by_name = {e.name: e for e in available}
    # Allow a unique prefix such as "00" for "00_data_tour".
    chosen = []
    for name in names:
        matches = [e for n, e in by_name.items() if n == name] or [e for n, e in by_name.items() if n.startswith(name)]
        if len(matches) != 1:
            valid = ", ".join(by_name) or "(none: no notebooks/*.ipynb)"
            raise ParameterError(f"Unknown experiment {name!r}. Valid experiments: {valid}, or 'all'.")
        chosen.append(matches[0])
    return chosen


def resolve_parameters(exp: Experiment, profile: str, overrides: list[str], root: Path,
                       data_dir: str | None = None) -> dict[str, Any]:
    """Defaults, then ``params/EXP/PROFILE.yaml``, then ``-p`` overrides; all checked.

    Only the values that differ from the notebook's defaults are returned (what papermill
    injects), plus ``profile`` and ``data_dir`` when the notebook declares them.

    Args:
        exp: the experiment.
        profile: ``smoke``, ``cpu`` or ``gpu``.
        overrides: ``name=value`` strings.
        root: the study root.
        data_dir: the ``--data-dir`` option, if given.
    """
    if profile not in PROFILES:
        raise ParameterError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    params = read_parameters(exp.notebook)
    resolved: dict[str, Any] = {}
    params_file = root / "params" / exp.name / f"{profile}.yaml"
    if params_file.is_file():
        resolved.update(load_params_file(params_file, params))
    elif profile != "cpu":
        raise ParameterError(f"{exp.name} has no {profile} profile: {params_file} is missing.")
    for text in overrides:
        name, value = parse_override(text, params)
        resolved[name] = value
    if "profile" in params:
        resolved["profile"] = profile
    if data_dir is not None and "data_dir" in params:
        resolved["data_dir"] = str(Path(data_dir).resolve())
    return resolved


def _git(root: Path, *args: str) -> str:
    """Run ``git -C root ARGS`` and return its stdout (raises OSError or CalledProcessError)."""
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def git_tree(root: Path, checked_at: str) -> dict[str, Any]:
    """Whether ``notebooks/``, ``medgan_core/`` and ``params/`` match the commit: the one dirty check.

    Uses ``git status --porcelain --untracked-files=all -- notebooks medgan_core params``, so a
    modified, staged, deleted or untracked (not ignored) file in those folders makes the tree dirty.

    Args:
        root: the study root.
        checked_at: when the check is made, ``"start"`` or ``"end"`` of the run.

    Returns:
        ``{"checked_at", "clean", "n_dirty", "dirty_paths", "reason"}``: ``clean`` is ``None``
        (with the ``reason``) when git cannot tell, ``dirty_paths`` holds the first
        :data:`MAX_DIRTY_PATHS` paths.
    """
    state: dict[str, Any] = {"checked_at": checked_at, "clean": None, "n_dirty": None, "dirty_paths": [],
                             "reason": None}
    try:
        out = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *TRACKED_FOLDERS)
    except OSError as err:
        state["reason"] = f"git is not available: {err}"
        return state
    except subprocess.CalledProcessError as err:
        state["reason"] = f"git status failed: {(err.stderr or '').strip() or err}"
        return state
    paths = [line[3:].strip().strip('"') for line in out.splitlines() if line.strip()]
    state.update(clean=not paths, n_dirty=len(paths), dirty_paths=paths[:MAX_DIRTY_PATHS])
    return state


def git_commit(root: Path, tree: dict[str, Any] | None = None) -> str:
    """The current commit, with ``+dirty`` when :func:`git_tree` finds uncommitted changes.

    Args:
        root: the study root.
        tree: a :func:`git_tree` result to reuse (default: check now).
    """
    try:
        sha = _git(root, "rev-parse", "--short=12", "HEAD").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    tree = tree if tree is not None else git_tree(root, "now")
    return sha + ("+dirty" if tree["clean"] is False else "")


def tree_record(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    """``run.json``'s ``tree``: both checks and a summary (``clean`` only if clean at both ends).

    Args:
        start: :func:`git_tree` at the start of the run.
        end: :func:`git_tree` at its end.
    """
    states = (start, end)
    if any(t["clean"] is False for t in states):
        clean = False
    elif any(t["clean"] is None for t in states):
        clean = None
    else:
        clean = True
    paths = list(dict.fromkeys(start["dirty_paths"] + end["dirty_paths"]))
    n_dirty = max((t["n_dirty"] or 0) for t in states)
    reason = start["reason"] or end["reason"]
    return {"clean": clean, "n_dirty": max(n_dirty, len(paths)), "dirty_paths": paths[:MAX_DIRTY_PATHS],
            "reason": reason, "folders": list(TRACKED_FOLDERS), "start": start, "end": end}


def time_limit_for(profile: str, time_limit_min: float | None = None) -> float | None:
    """The wall-clock limit of one experiment in minutes (``None``: no limit).

    Args:
        profile: ``smoke``, ``cpu`` or ``gpu``.
        time_limit_min: ``--time-limit-min``; ``None`` takes :data:`TIME_LIMIT_MIN`'s value for
            the profile, ``0`` means no limit.
    """
    if time_limit_min is None:
        return TIME_LIMIT_MIN.get(profile)
    if time_limit_min < 0:
        raise ParameterError(f"--time-limit-min must be >= 0 (0: no limit), got {time_limit_min:g}.")
    return float(time_limit_min) or None


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the numbers."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _available_cores() -> int:
    """The cores the kernel may use (the notebooks' ``num_threads = 0`` takes them all)."""
    from medgan_core.train.device import available_cores  # torch loads only when a run is recorded

    return available_cores()


def device_description() -> str:
    """The compute device: the GPU's name if torch sees one, else the CPU and its core count."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


class KernelMemorySampler:
    """Samples the resident memory of this process's children (the notebook kernel) in a thread.

    This is the whole report's peak for ``run.json``, seen from outside the kernel; the memory of
    one model's training is measured inside the kernel by :class:`medgan_core.train.cost.PeakMemory`.
    """

    def __init__(self, interval: float = 0.5) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            total = 0
            for child in self._proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except Exception:  # the child ended between listing and reading
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> "KernelMemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the kernel (it inherits ours), restoring them afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def reproduce_command(exp: Experiment, profile: str, overrides: list[str], data_dir: str | None,
                      time_limit_min: float | None = None) -> str:
    """The shell command that reproduces a run.

    Args:
        exp: the experiment.
        profile: ``smoke``, ``cpu`` or ``gpu``.
        overrides: ``name=value`` strings.
        data_dir: the ``--data-dir`` option, if given.
        time_limit_min: the ``--time-limit-min`` option, if given.
    """
    parts = ["medgan", "run", exp.name, "--profile", profile]
    for text in overrides:
        parts += ["-p", text]
    if data_dir:
        parts += ["--data-dir", data_dir]
    if time_limit_min is not None:
        parts += ["--time-limit-min", f"{time_limit_min:g}"]
    return " ".join(shlex.quote(p) for p in parts)


def run_experiment(exp: Experiment, profile: str, overrides: list[str] | None = None, *,
                   data_dir: str | None = None, out_root: Path | None = None, root: Path | None = None,
                   progress: bool = True, time_limit_min: float | None = None) -> dict[str, Any]:
    """Execute one experiment at one profile and publish its report folder.

    Args:
        exp: the experiment.
        profile: ``smoke``, ``cpu`` or ``gpu``.
        overrides: ``name=value`` strings (already validated by the caller or validated here).
        data_dir: the data folder (else ``$MEDGAN_DATA``, else ``./data``).
        out_root: the reports folder (default ``<root>/reports``).
        root: the study root.
        progress: show papermill's cell progress bar.
        time_limit_min: wall-clock limit in minutes (default: the profile's, see
            :func:`time_limit_for`; 0: none). Past it the running cell is interrupted (the kernel
            raises ``KeyboardInterrupt`` there), the notebook stops, is saved and rendered with
            papermill's error banner, and the status is ``"timed_out"``.

    Returns:
        The ``run.json`` content.
    """
    from medgan_core.report.index import build_index

    overrides = overrides or []
    root = root or repo_root()
    out_root = Path(out_root) if out_root else root / "reports"
    params = resolve_parameters(exp, profile, overrides, root, data_dir)
    limit_min = time_limit_for(profile, time_limit_min)
    out_dir = out_root / exp.name / profile
    command = reproduce_command(exp, profile, overrides, data_dir, time_limit_min)
    with FolderLock(out_dir, command), sigterm_as_interrupt():
        record = _execute(exp, profile, overrides, params, out_dir, root, command, data_dir, progress, limit_min)
        build_index(out_root)
    if record["status"] == "interrupted":
        raise KeyboardInterrupt
    return record


def _execute(exp: Experiment, profile: str, overrides: list[str], params: dict[str, Any], out_dir: Path, root: Path,
             command: str, data_dir: str | None, progress: bool, limit_min: float | None) -> dict[str, Any]:
    """Run the notebook into ``out_dir`` (whose lock the caller holds) and publish it; returns ``run.json``.

    The earlier run's files are removed first and ``run.json`` says ``running`` until it is
    replaced by the final record, so the folder never shows an earlier run's status or numbers.
    """
    import papermill as pm

    from medgan_core.report.html import render_report
    from medgan_core.report.index import build_index

    tree_start = git_tree(root, "start")
    started = dt.datetime.now(dt.timezone.utc)
    clear_outputs(out_dir)
    write_json_atomic(out_dir / "params.json", params)
    base = {"experiment": exp.name, "title": exp.title, "profile": profile,
            "start": started.isoformat(timespec="seconds"), "time_limit_min": limit_min, "command": command,
            "overrides": overrides}
    write_running(out_dir, base)
    build_index(out_dir.parent.parent)  # the index says "running" from now on, never the earlier status

    env = {RUN_DIR_VAR: str(out_dir.resolve()), EXPERIMENT_VAR: exp.name, "MEDGAN_PROFILE": profile,
           "MEDGAN_ROOT": str(root.resolve())}
    if data_dir:
        env["MEDGAN_DATA"] = str(Path(data_dir).resolve())
    partial = out_dir / f".{exp.name}.partial.ipynb"
    t0 = time.perf_counter()
    guard: dict[str, Any] = {}
    if limit_min is not None:
        deadline = t0 + limit_min * 60

        def cell_timeout(cell: Any) -> int:
            # nbclient asks at the start of every cell; past the deadline every cell gets 1 s.
            return max(1, math.ceil(deadline - time.perf_counter()))

        guard = {"timeout_func": cell_timeout, "interrupt_on_timeout": True}
    status, error = "ok", None
    with _environment(env), KernelMemorySampler() as memory:
        try:
            pm.execute_notebook(str(exp.notebook), str(partial), parameters=params, kernel_name="python3",
                                progress_bar=progress, cwd=str(root), log_output=False, **guard)
        except pm.PapermillExecutionError as err:
            status, error = "failed", f"{err.ename}: {err.evalue}"
        except KeyboardInterrupt as err:
            status, error = "interrupted", f"KeyboardInterrupt{f' ({err})' if str(err) else ''}"
        except Exception as err:  # kernel death, missing kernel...: still publish what we have
            status, error = "failed", f"{type(err).__name__}: {err}"
    wall = time.perf_counter() - t0
    ended = dt.datetime.now(dt.timezone.utc)
    over_budget = limit_min is not None and wall > limit_min * 60
    if over_budget and status == "failed":
        status = "timed_out"
        error = (f"stopped after {wall / 60:.1f} min: past the {profile} profile's limit of {limit_min:g} min "
                 f"per experiment (raise it with --time-limit-min, 0 for none); last error: {error}")
    tree = tree_record(tree_start, git_tree(root, "end"))

    executed = out_dir / f"{exp.name}.ipynb"
    if partial.is_file():
        os.replace(partial, executed)
    if not (out_dir / "metrics.json").is_file():
        write_json_atomic(out_dir / "metrics.json", {"metrics": {}, "headline": [], "verdict": None,
                                                     "note": "the notebook logged no metrics"})
    rel = os.path.relpath
    record = {
        **base, "status": status, "error": error, "end": ended.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 2), "over_budget": over_budget,
        "peak_memory_mb": round(memory.peak_bytes / 2**20, 1),
        "git_commit": git_commit(root, tree["end"]), "tree": tree, "packages": package_versions(), "device": device_description(),
        "cpu_cores_available": _available_cores(), "data_folders": exp.data_folders,
        "notebook": rel(exp.notebook, out_dir), "params_file": rel(root / "params" / exp.name / f"{profile}.yaml", out_dir),
    }
    if executed.is_file():
        header = {"title": exp.title, "experiment": exp.name, "profile": profile, "status": status,
                  "date": started.strftime("%Y-%m-%d %H:%M UTC"), "data_folders": exp.data_folders,
                  "wall_seconds": wall, "peak_memory_mb": record["peak_memory_mb"], "device": record["device"],
                  "commit": record["git_commit"], "command": record["command"],
                  "notebook_link": record["notebook"], "params_link": record["params_file"]}
        full, reader = f"{exp.name}.html", f"{exp.name}.reader.html"
        write_text_atomic(out_dir / full, render_report(executed, header=header, other_version=reader))
        write_text_atomic(out_dir / reader, render_report(executed, reader=True, header=header, other_version=full))
    write_json_atomic(out_dir / "run.json", record)
    return record


def check_out_root(out_root: Path) -> None:
    """A clear error, before any work, when the reports folder cannot be written.

    Raises:
        ParameterError: ``out_root`` is a file, or a folder (or parent) this process cannot write to.
    """
    if out_root.exists() and not out_root.is_dir():
        raise ParameterError(f"--out {out_root}: is a file, not a folder; pass a folder for the reports.")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_root):
            pass
    except OSError as err:
        raise ParameterError(f"--out {out_root}: cannot write there ({err.strerror or err}); pass a folder you can "
                             "write to.") from err


def run_batch(names: list[str], profile: str, overrides: list[str] | None = None, *, data_dir: str | None = None,
              out_root: Path | None = None, root: Path | None = None, progress: bool = True,
              time_limit_min: float | None = None) -> int:
    """Run several experiments; every one is validated first, failures do not stop the batch.

    Args:
        names: experiment names or ``["all"]``.
        profile: ``smoke``, ``cpu`` or ``gpu``.
        overrides: ``name=value`` strings.
        data_dir: the data folder.
        out_root: the reports folder.
        root: the study root.
        progress: show papermill's cell progress bar.
        time_limit_min: wall-clock limit per experiment (see :func:`run_experiment`).

    Returns:
        The exit code: 0 if every run succeeded, 1 otherwise.
    """
    root = root or repo_root()
    experiments = get_experiments(names, root)
    time_limit_for(profile, time_limit_min)  # validate before running any
    check_out_root(Path(out_root) if out_root else root / "reports")
    for exp in experiments:  # validate all before running any
        resolve_parameters(exp, profile, overrides or [], root, data_dir)
    failed = []
    for exp in experiments:
        print(f"[medgan] {exp.name} ({profile}) ...", file=sys.stderr, flush=True)
        try:
            record = run_experiment(exp, profile, overrides, data_dir=data_dir, out_root=out_root, root=root,
                                    progress=progress, time_limit_min=time_limit_min)
        except FolderBusyError as err:  # another run writes this folder: leave it alone, go on with the batch
            print(f"[medgan] {exp.name}: not run: {err}", file=sys.stderr, flush=True)
            failed.append(exp.name)
            continue
        where = Path(out_root or root / "reports") / exp.name / profile
        print(f"[medgan] {exp.name}: {record['status']} in {record['wall_seconds']:.0f} s -> {where}/",
              file=sys.stderr, flush=True)
        if record["status"] != "ok":
            print(f"[medgan]   {record['error']}", file=sys.stderr)
            failed.append(exp.name)
        elif record["over_budget"]:
            print(f"[medgan]   over budget: {record['wall_seconds'] / 60:.1f} min > {record['time_limit_min']:g} min",
                  file=sys.stderr)
        if record["tree"]["clean"] is False:
            print(f"[medgan]   built from uncommitted changes ({record['tree']['n_dirty']} files in "
                  f"{', '.join(TRACKED_FOLDERS)}): not for publishing", file=sys.stderr)
    if failed:
        print(f"[medgan] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def load_run(folder: Path) -> dict[str, Any]:
    """Read ``run.json`` and ``metrics.json`` of one report folder."""
    run = json.loads((folder / "run.json").read_text())
    metrics_file = folder / "metrics.json"
    run["metrics_file"] = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return run
