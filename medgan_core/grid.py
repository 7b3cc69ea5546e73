"""The seed grid: each experiment rerun with several seeds, and what holds across them.

GAN results vary widely with the training seed (Lucic et al. 2018, "Are GANs created equal?"),
so one run's verdict may be the luck of its seed. ``workflow/Snakefile`` (``medgan grid``, ``make
grid``) runs ``medgan run EXP --profile P -p seed=S --out GRID/seedS`` for every experiment,
profile and seed, then the aggregate notebook ``notebooks/90_seed_grid.ipynb`` reads them back
with this module. The layout of a grid folder::

    GRID/seed{S}/{EXP}/{P}/run.json, metrics.json, EXP.html, ...   one ordinary report folder per seed
    GRID/seed{S}/{EXP}/{P}/grid.done                                 written once the runner exited 0

``grid.done`` is the workflow's file target: a finished folder is not rerun, a folder whose run
died, failed or timed out has none and is run again (resuming from its checkpoints).

The seed of our notebooks seeds *everything*: the data split, the GAN's weights and batches, the
classifiers. So the spread across seeds is the spread a reader would see on rerunning the whole
study with another seed, GAN training and split together.

Across seeds, each headline number gets the t-interval of its mean over seeds
(:func:`~medgan_core.metrics.stats.t_interval`, at least 3 seeds). A headline that states the
value meaning "no effect" (``null``, e.g. 0 for a difference) also gets a verdict that accounts
for seed variance (:func:`seed_verdict`): withheld if any seed withheld its own verdict on it
(a generator below the quality floor, a baseline at the ceiling), else "helped"/"hurt" only when
the across-seed interval excludes the null.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from medgan_core.metrics import stats

DONE_NAME = "grid.done"  # the workflow's target in each finished seed folder


def seed_folder(grid_dir: str | Path, seed: int, experiment: str, profile: str) -> Path:
    """The report folder of one (experiment, profile, seed) in a grid: ``GRID/seed{S}/{EXP}/{P}``.

    Args:
        grid_dir: the grid's folder.
        seed: the run's seed.
        experiment: the experiment's name (``"01_bagan_blood_cells"``).
        profile: ``smoke``, ``cpu`` or ``gpu``.
    """
    return Path(grid_dir) / f"seed{int(seed)}" / experiment / profile


def load_seed_runs(grid_dir: str | Path, experiments: Sequence[str], profile: str,
                   seeds: Sequence[int]) -> pd.DataFrame:
    """One row per (experiment, seed): where its folder is, whether it finished, and its ``run.json``.

    Args:
        grid_dir: the grid's folder.
        experiments: experiment names.
        profile: the profile the grid ran.
        seeds: the seeds.

    Returns:
        Columns ``experiment, seed, folder, status`` (``"missing"`` without ``run.json``),
        ``finished`` (``grid.done`` present and status ``ok``), ``wall_seconds, start, end, commit,
        clean_tree, error`` and ``metrics`` (the parsed ``metrics.json``, ``{}`` when absent).

    Raises:
        ValueError: no experiments or seeds, or a seed repeated.
    """
    if not experiments or not seeds:
        raise ValueError(f"need at least one experiment and one seed, got {list(experiments)} and {list(seeds)}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {list(seeds)}; each seed is one run.")
    rows = []
    for exp in experiments:
        for seed in seeds:
            folder = seed_folder(grid_dir, seed, exp, profile)
            run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
            metrics_file = folder / "metrics.json"
            status = run.get("status", "missing")
            rows.append({"experiment": exp, "seed": int(seed), "folder": str(folder), "status": status,
                         "finished": status == "ok" and (folder / DONE_NAME).is_file(),
                         "wall_seconds": run.get("wall_seconds", np.nan), "start": run.get("start"), "end": run.get("end"),
                         "commit": run.get("git_commit", ""),
                         "clean_tree": bool(run.get("tree", {}).get("clean", False)), "error": run.get("error"),
                         "metrics": json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}})
    return pd.DataFrame(rows)


def headline_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every finished seed's headline numbers, one row per (experiment, seed, headline).

    Args:
        runs: the frame of :func:`load_seed_runs`.

    Returns:
        Columns ``experiment, seed, name, label, value, ci_low, ci_high, higher_is_better, null,
        withheld`` (``withheld``: why that run gave no verdict on the number, ``""`` if it gave one).
    """
    rows = []
    for r in runs[runs.finished].itertuples():
        for h in r.metrics.get("headline", []):
            low, high = h.get("ci") or (np.nan, np.nan)
            rows.append({"experiment": r.experiment, "seed": r.seed, "name": h["name"], "label": h.get("label", h["name"]),
                         "value": float(h["value"]) if h["value"] is not None else np.nan,
                         "ci_low": np.nan if low is None else float(low), "ci_high": np.nan if high is None else float(high),
                         "higher_is_better": h.get("higher_is_better"), "null": h.get("null"),
                         "withheld": _reason(h.get("withheld"))})
    columns = ["experiment", "seed", "name", "label", "value", "ci_low", "ci_high", "higher_is_better", "null", "withheld"]
    return pd.DataFrame(rows, columns=columns)


def _reason(value: Any) -> str:
    """A withheld reason as text, ``""`` for none (``None`` or NaN, as pandas may turn it)."""
    return value.strip() if isinstance(value, str) else ""


def _null(value: Any) -> float | None:
    """A headline's "no effect" value as a float, ``None`` for none (``None`` or NaN, as pandas may turn it)."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _call(value: float, low: float, high: float, null: float, higher_is_better: bool | None) -> str:
    """``"helped"``/``"hurt"`` (or ``"higher"``/``"lower"`` without a direction) when ``[low, high]`` excludes ``null``."""
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return "no interval"
    if low <= null <= high:
        return "no measurable effect"
    up = value > null
    if higher_is_better is None:
        return "higher" if up else "lower"
    return "helped" if up == bool(higher_is_better) else "hurt"


def per_seed_calls(headlines: pd.DataFrame) -> pd.Series:
    """Each seed's own call on a headline with a ``null``, from its within-run interval (``""`` without a null).

    Args:
        headlines: the frame of :func:`headline_table`.

    Returns:
        One string per row: ``"withheld"``, ``"helped"``, ``"hurt"``, ``"higher"``, ``"lower"``,
        ``"no measurable effect"``, ``"no interval"`` or ``""``.
    """
    def call(r: pd.Series) -> str:
        null = _null(r["null"])
        if null is None:
            return ""
        if _reason(r["withheld"]):
            return "withheld"
        return _call(r["value"], r["ci_low"], r["ci_high"], null, r["higher_is_better"])
    return headlines.apply(call, axis=1) if len(headlines) else pd.Series([], dtype=str)


def across_seeds(headlines: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Each headline over seeds: the mean, its across-seed t-interval, the spread and the verdict.

    Args:
        headlines: the frame of :func:`headline_table`.
        level: coverage of the across-seed interval.

    Returns:
        One row per (experiment, name): ``label`` (each label with its seeds where seeds differ, as
        when each picks its own best model), ``n_seeds`` (seeds that gave the number), ``n_runs``
        (seeds of the experiment that gave any headline), ``mean, low, high`` (NaN with fewer than 3
        seeds or no spread), ``sd, min, max, higher_is_better, null, seed_calls`` (each seed's own
        call, in seed order), ``n_withheld``, ``interval`` (the printed interval or why there is
        none) and ``verdict`` (:func:`seed_verdict`).
    """
    calls = per_seed_calls(headlines)
    rows = []
    for (exp, name), g in headlines.assign(call=calls).groupby(["experiment", "name"], sort=False):
        g = g.sort_values("seed")
        v = g["value"].to_numpy(float)
        mean, low, high = stats.t_interval(v, level)
        row = {"experiment": exp, "name": name, "label": _label(g), "n_seeds": int(np.isfinite(v).sum()),
               "n_runs": int(headlines.loc[headlines.experiment == exp, "seed"].nunique()),
               "mean": mean, "low": low, "high": high, "sd": float(np.nanstd(v, ddof=1)) if len(v) > 1 else np.nan,
               "min": float(np.nanmin(v)), "max": float(np.nanmax(v)), "higher_is_better": g["higher_is_better"].iloc[0],
               "null": _null(g["null"].iloc[0]),
               "seed_calls": list(g["call"]), "n_withheld": int(sum(bool(_reason(w)) for w in g["withheld"])),
               "first_withheld": next((_reason(w) for w in g["withheld"] if _reason(w)), None),
               "interval": stats.format_ci(mean, low, high, values=v, unit="seeds")}
        row["verdict"] = seed_verdict(row)
        rows.append(row)
    return pd.DataFrame(rows)


def _label(g: pd.DataFrame) -> str:
    """One headline's label over its seeds; where seeds differ (a best model chosen per seed), each with its seeds."""
    labels = dict.fromkeys(g["label"])
    if len(labels) == 1:
        return next(iter(labels))
    return " | ".join(f"{lab} (seed{'s' * (n > 1)} {', '.join(map(str, seeds))})" for lab in labels
                      for seeds in [list(g.loc[g["label"] == lab, "seed"])] for n in [len(seeds)])


def seed_verdict(row: dict[str, Any]) -> str:
    """The verdict on one headline across seeds (``""`` for a headline without a ``null``).

    In order: fewer than 3 seeds, or no spread to build an interval from: no verdict, and why;
    any seed that withheld its own verdict: withheld (the grid cannot speak for a seed whose
    generator fell below the floor or whose baseline sat at the ceiling); otherwise the
    across-seed interval against the null, with how many single seeds would have said the same.

    Args:
        row: a row of :func:`across_seeds` (``label, n_seeds, mean, low, high, higher_is_better,
            null, seed_calls, n_withheld, first_withheld, interval``).
    """
    if row["null"] is None:
        return ""
    n, label = row["n_seeds"], row["label"]
    if n == 0:
        return f"{label}: no verdict across seeds; no finished seed gave a number."
    if row["n_withheld"]:
        return (f"{label}: withheld, because {row['n_withheld']} of {n} seeds withheld their own verdict on it "
                f"(first reason: {row['first_withheld']}).")
    if not (np.isfinite(row["low"]) and np.isfinite(row["high"])) or row["high"] <= row["low"]:
        missing = row.get("n_runs", n) - n
        return (f"{label}: no verdict across seeds, {row['interval']}"
                + (f"; {missing} of the {row['n_runs']} seeds gave no number." if missing > 0 else "."))
    call = _call(row["mean"], row["low"], row["high"], row["null"], row["higher_is_better"])
    same = sum(c == call for c in row["seed_calls"])
    words = {"helped": "helped", "hurt": "hurt", "higher": "is higher than no effect",
             "lower": "is lower than no effect", "no measurable effect": "no measurable effect"}[call]
    tail = ("every single seed said the same" if same == n else
            f"{same} of {n} single seeds said the same; a one-seed verdict depends on the seed")
    return (f"{label}: {row['interval']} across {n} seeds (no effect = {row['null']:g}): **{words}**; {tail} "
            f"(single seeds: {', '.join(row['seed_calls'])}).")


def floor_across_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """Each generator's quality floor over the finished seeds.

    Args:
        runs: the frame of :func:`load_seed_runs`.

    Returns:
        One row per (experiment, model): ``n_seeds, n_passed``, ``passed_every_seed`` and
        ``reasons`` (each seed's reason, ``"seed S: ..."``).
    """
    rows = []
    for r in runs[runs.finished].itertuples():
        for model, entry in r.metrics.get("quality_floor", {}).items():
            rows.append({"experiment": r.experiment, "model": model, "seed": r.seed, "passed": bool(entry["passed"]),
                         "reason": entry.get("reason", "")})
    if not rows:
        return pd.DataFrame(columns=["experiment", "model", "n_seeds", "n_passed", "passed_every_seed", "reasons"])
    table = pd.DataFrame(rows)
    out = table.groupby(["experiment", "model"], sort=False).agg(
        n_seeds=("seed", "size"), n_passed=("passed", "sum"),
        reasons=("reason", lambda s: "; ".join(f"seed {table.seed[i]}: {t}" for i, t in s.items()))).reset_index()
    out["passed_every_seed"] = out.n_passed == out.n_seeds
    return out


def grid_wall_seconds(runs: pd.DataFrame) -> float:
    """Seconds from the first finished run's start to the last one's end (NaN without timestamps).

    Args:
        runs: the frame of :func:`load_seed_runs`.
    """
    done = runs[runs.finished & runs.start.notna() & runs.end.notna()]
    if done.empty:
        return float("nan")
    start, end = pd.to_datetime(done.start, utc=True), pd.to_datetime(done.end, utc=True)
    return float((end.max() - start.min()).total_seconds())


def snakemake_command(root: str | Path, experiments: Sequence[str], profile: str, seeds: Sequence[int], *,
                      grid_dir: str = "grid", cores: int | None = 0, aggregate_out: str = "", data_dir: str = "",
                      dry_run: bool = False, extra: Sequence[str] = ()) -> tuple[list[str], Path]:
    """Write the grid's config (``GRID/grid.yaml``) and return the Snakemake command that runs it on local cores.

    The config keeps ``workflow/config.yaml``'s resources and replaces what to run; the command runs
    Snakemake with the Python of this process, from the study root, rerunning incomplete jobs.

    Args:
        root: the study root (holding ``workflow/Snakefile``).
        experiments: experiment names (not the aggregate).
        profile: ``smoke``, ``cpu`` or ``gpu``.
        seeds: distinct seeds >= 0.
        grid_dir: the grid's folder, relative to ``root`` or absolute.
        cores: cores Snakemake may use at once (0: every core of this machine; ``None``: leave it to a
            Snakemake profile, as a cluster's, which sizes each job by ``workflow/config.yaml``).
        aggregate_out: where the aggregate report goes (``""``: ``GRID/aggregate``).
        data_dir: the data folder (``""``: ``$MEDGAN_DATA``, then ``./data``).
        dry_run: only list the jobs (``snakemake -n``); nothing is written but the config.
        extra: further Snakemake arguments, passed as they are.

    Returns:
        ``(command, config_path)``.
    """
    root = Path(root)
    snakefile = root / "workflow" / "Snakefile"
    if not snakefile.is_file():
        raise FileNotFoundError(f"{snakefile} is missing: run medgan grid from a checkout of the study.")
    if cores is not None and int(cores) < 0:
        raise ValueError(f"--cores must be >= 0 (0: every core), got {cores}.")
    config = yaml.safe_load((root / "workflow" / "config.yaml").read_text())
    config.update(grid_dir=str(grid_dir), experiments=list(experiments), profiles=[profile],
                  seeds=[int(s) for s in seeds], aggregate_out=str(aggregate_out), data_dir=str(data_dir))
    grid_path = Path(grid_dir) if Path(grid_dir).is_absolute() else root / grid_dir
    grid_path.mkdir(parents=True, exist_ok=True)
    config_path = grid_path / "grid.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(root),
               "--configfile", str(config_path),
               *(["--cores", str(int(cores) or os.cpu_count() or 1)] if cores is not None else []), "--rerun-incomplete", "--printshellcmds", *(["--dry-run"] if dry_run else []), *extra]
    return command, config_path
