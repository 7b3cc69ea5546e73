"""The one helper notebooks use to publish their numbers into ``metrics.json``.

Notebooks never edit JSON by hand. They call::

    from medgan_core import results
    results.log_metrics(fid={"WBC": 12.3}, kid=...)          # any nested numbers
    results.log_headline("balanced_accuracy", 0.81, ci=(0.78, 0.84), label="Balanced accuracy (real+gan)")
    results.log_verdict(sentence_computed_from_the_numbers)
    results.log_quality_floor(floor.floor_table(fid, floor.QualityFloor(), c2st))  # who passed, and why
    results.log_withheld(withheld_sentences)                  # verdicts withheld below the floor

Every notebook starts with ``params = results.start_run(NOTEBOOK, globals())`` (after its
imports): it checks the parameters papermill injected (:func:`medgan_core.params.check_injected`:
unknown names and wrong types stop the run before any work, as ``medgan run`` does) and fixes
where this run's file goes.

Where the file goes: ``$MEDGAN_RUN_DIR/metrics.json`` when the ``medgan`` runner executes the
notebook (it sets that variable), else ``./runs/<notebook>/<UTC timestamp>/metrics.json``, a new
folder for every plain papermill or interactive run (never merged with another run's numbers);
the notebook prints where. Every call rewrites the file atomically, so a crash keeps what was
logged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from medgan_core.atomic import to_jsonable, write_json_atomic

RUN_DIR_VAR = "MEDGAN_RUN_DIR"
EXPERIMENT_VAR = "MEDGAN_EXPERIMENT"


def metrics_path() -> Path:
    """Where this run's ``metrics.json`` lives (see the module docstring).

    Outside the runner the first call picks ``runs/<experiment>/<UTC timestamp>/`` and keeps it
    for the rest of the process (it sets ``$MEDGAN_RUN_DIR``), so one kernel's numbers stay
    together and two runs never share a file.
    """
    run_dir = os.environ.get(RUN_DIR_VAR)
    if not run_dir:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        run_dir = str((Path("runs") / os.environ.get(EXPERIMENT_VAR, "interactive") / stamp).resolve())
        os.environ[RUN_DIR_VAR] = run_dir
    return Path(run_dir) / "metrics.json"


def start_run(notebook: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Check papermill's parameters, say where the metrics go, and return the resolved parameters.

    Args:
        notebook: the notebook's name in ``notebooks/`` (``"01_bagan_blood_cells"``).
        namespace: the notebook's ``globals()``; injected numbers given as text are converted in it.

    Returns:
        ``{name: value}`` of the notebook's parameters (part of every run folder's identity).

    Raises:
        medgan_core.params.ParameterError: an unknown or wrongly typed injected parameter.
    """
    from medgan_core.params import check_injected
    from medgan_core.train.identity import PACKAGE_DIR, notebook_parameters

    check_injected(PACKAGE_DIR.parent / "notebooks" / f"{notebook}.ipynb", namespace)
    if not os.environ.get(RUN_DIR_VAR):
        os.environ.setdefault(EXPERIMENT_VAR, notebook)
        print(f"Not run by `medgan run`: this run's metrics go to {metrics_path()}")
    return notebook_parameters(notebook, namespace)


def load_metrics(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read a ``metrics.json`` (empty structure if absent).

    Args:
        path: the file; default :func:`metrics_path`.
    """
    path = Path(path) if path else metrics_path()
    if path.is_file():
        return json.loads(path.read_text())
    return {"metrics": {}, "headline": [], "verdict": None}


def _merge(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def log_metrics(values: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Merge numbers into the ``metrics`` section (nested dicts are merged, not replaced).

    Args:
        values: a dict of metrics (may be nested).
        **kwargs: more metrics by name.

    """
    data = load_metrics()
    _merge(data.setdefault("metrics", {}), to_jsonable({**(values or {}), **kwargs}))
    write_json_atomic(metrics_path(), data)


def log_headline(name: str, value: float, ci: tuple[float, float] | None = None,
                 label: str | None = None, higher_is_better: bool | None = None, null: float | None = None,
                 withheld: str | None = None) -> None:
    """Record one headline number, shown on the index page (replaces one of the same name).

    Args:
        name: machine name, e.g. ``"balanced_accuracy_best_gan"``.
        value: the number.
        ci: its 95% confidence interval ``(low, high)``, if any.
        label: a human label for the index page.
        higher_is_better: direction, for readers.
        null: the value meaning "no effect" (0 for a difference), for an effect the seed grid
            judges across seeds (:func:`medgan_core.grid.seed_verdict`); ``None``: a plain number.
        withheld: why this run gives no verdict on the number (a generator below the quality floor,
            a baseline at the ceiling), or ``None`` when it gives one.
    """
    if withheld is not None and not str(withheld).strip():
        raise ValueError(f"log_headline({name!r}): withheld must be a reason or None, got an empty string.")
    data = load_metrics()
    entry = to_jsonable({"name": name, "value": value, "ci": list(ci) if ci is not None else None,
                         "label": label or name, "higher_is_better": higher_is_better, "null": null,
                         "withheld": withheld})
    data["headline"] = [h for h in data.get("headline", []) if h.get("name") != name] + [entry]
    write_json_atomic(metrics_path(), data)


def log_verdict(sentence: str) -> None:
    """Record the report's verdict sentence (it must be computed from the numbers of this run).

    Args:
        sentence: the generated verdict.
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError("log_verdict needs a non-empty sentence computed from this run's numbers.")
    data = load_metrics()
    data["verdict"] = sentence.strip()
    write_json_atomic(metrics_path(), data)


FLOOR_KEYS = ("passed", "reason", "precision", "recall", "c2st_auc")  # per generator under "quality_floor"


def log_quality_floor(table: Any) -> None:
    """Record the quality floor's verdict per generator under ``"quality_floor"`` (replaces the key).

    Writes ``{"quality_floor": {model: {"passed", "reason", "precision", "recall", "c2st_auc"}}}``;
    NaN numbers become ``null``.

    Args:
        table: the frame of :func:`medgan_core.metrics.floor.floor_table` (or a list of row dicts)
            with the columns ``model`` and those keys.
    """
    records = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    entries = {}
    for row in records:
        missing = [k for k in ("model", *FLOOR_KEYS) if k not in row]
        if missing:
            raise ValueError(f"log_quality_floor: a row lacks {missing}; pass the frame returned by floor_table.")
        entries[str(row["model"])] = {"passed": bool(row["passed"]), "reason": str(row["reason"]),
                                      **{k: row[k] for k in ("precision", "recall", "c2st_auc")}}
    data = load_metrics()
    data["quality_floor"] = to_jsonable(entries)
    write_json_atomic(metrics_path(), data)


def log_withheld(sentences: list[str]) -> None:
    """Record the withheld-verdict sentences under ``"withheld"`` (replaces the key; ``[]``: none withheld).

    Args:
        sentences: the sentences of :func:`medgan_core.metrics.floor.gate_verdicts`, one per
            generator below the quality floor.
    """
    if isinstance(sentences, str):
        raise ValueError("log_withheld takes a list of sentences; wrap a single sentence in a list.")
    sentences = list(sentences)
    bad = [s for s in sentences if not isinstance(s, str) or not s.strip()]
    if bad:
        raise ValueError(f"log_withheld needs non-empty sentences; got {bad[:3]}.")
    data = load_metrics()
    data["withheld"] = [s.strip() for s in sentences]
    write_json_atomic(metrics_path(), data)
