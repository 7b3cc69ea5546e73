"""``reports/index.html``: one row per experiment and profile, rebuilt after every run.

Each row shows the status (colour and word; ``running`` while a run writes the folder, ``died``
when that run's process is gone, see :mod:`medgan_core.run_state`), date, wall time, the one or two headline
metrics with their CIs and the report's computed verdict sentence (all read from
``metrics.json`` and ``run.json``), and links to the full and reader versions. The page is a
single offline file that reads well on a laptop screen and on paper.

Marks under the status, from ``run.json``: "built from uncommitted changes: N files" when
``notebooks/``, ``medgan_core/`` or ``params/`` differed from the commit at the start or end of
the run (``tree``; published reports come from a clean tree), and "over budget" when the wall
time passed the profile's limit (``over_budget``). Under the verdict, from ``metrics.json``:
"floor: 2/4 passed" (``quality_floor``: ``{model: {"passed", "reason", ...}}``; the failing
models and their reasons in small text and in the tooltip) and "N verdicts withheld"
(``withheld``: a list of sentences, in the tooltip). Absent keys show nothing.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from medgan_core.atomic import write_text_atomic
from medgan_core.run_state import effective_status

STATUS_NOTES = {
    "running": "running now: the earlier run's report was removed when this one started",
    "died": "the run's process is gone (killed, or the machine stopped) before it finished; "
            "what it wrote is incomplete: run it again",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
  max-width: 1200px; padding: 0 16px; color: #1f2328; }
h1 { font-size: 1.7em; margin-bottom: 4px; }
p.lead { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.93em; }
th, td { border-bottom: 1px solid #d0d7de; padding: 8px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
.status { font-weight: bold; padding: 2px 8px; border-radius: 10px; white-space: nowrap; }
.status-ok { background: #dafbe1; color: #1a7f37; }
.status-failed, .status-interrupted, .status-timed_out, .status-died { background: #ffebe9; color: #cf222e; }
.status-running { background: #fff8c5; color: #7d4e00; }
.mark { font-size: 0.85em; margin-top: 4px; }
.mark-warn { color: #9a6700; }
.mark-info { color: #57606a; }
.mark-detail { font-size: 0.8em; color: #57606a; }
[title] { cursor: help; }
.metric { white-space: nowrap; }
.ci { color: #57606a; }
.verdict { max-width: 420px; }
.nowrap { white-space: nowrap; }
@media print { th { position: static; } a { color: inherit; } body { margin: 0; } }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


def _mark(text: str, tooltip: str = "", kind: str = "warn", detail: str = "") -> str:
    """One small note under a cell: ``text``, its ``tooltip`` on hover and optional ``detail`` below."""
    e = html.escape
    title = f' title="{e(tooltip)}"' if tooltip else ""
    extra = f'<div class="mark-detail">{e(detail)}</div>' if detail else ""
    return f'<div class="mark mark-{kind}"{title}>{e(text)}{extra}</div>'


def _lookup(metrics: dict, key: str) -> Any:
    """A top-level key of ``metrics.json``, else the same key inside its ``metrics`` section."""
    if key in metrics:
        return metrics[key]
    section = metrics.get("metrics")
    return section.get(key) if isinstance(section, dict) else None


def provenance_marks(run: dict) -> list[str]:
    """The dirty-tree and over-budget marks of one ``run.json`` (HTML snippets, possibly none).

    Args:
        run: the content of ``run.json``.
    """
    marks = []
    tree = run.get("tree")
    if isinstance(tree, dict):
        if tree.get("clean") is False:
            n = tree.get("n_dirty") or len(tree.get("dirty_paths") or [])
            paths = "\n".join(tree.get("dirty_paths") or [])
            marks.append(_mark(f"built from uncommitted changes: {n} file{'s' if n != 1 else ''}",
                               f"uncommitted or untracked in {', '.join(tree.get('folders') or [])}:\n{paths}"))
        elif tree.get("clean") is None:
            marks.append(_mark("tree state unknown", tree.get("reason") or "git could not tell", kind="info"))
    elif str(run.get("git_commit", "")).endswith("+dirty"):  # run.json written before the tree record
        marks.append(_mark("built from uncommitted changes", "the commit was recorded as +dirty"))
    if run.get("over_budget"):
        wall, limit = run.get("wall_seconds") or 0, run.get("time_limit_min")
        marks.append(_mark(f"over budget: {wall / 60:.1f} min > {limit:g} min",
                           "the wall time passed the profile's limit per experiment"))
    return marks


def check_marks(metrics: dict) -> list[str]:
    """The quality-floor and withheld-verdict marks of one ``metrics.json`` (possibly none).

    Args:
        metrics: the content of ``metrics.json``.
    """
    marks = []
    floor = _lookup(metrics, "quality_floor")
    if isinstance(floor, dict) and floor:
        failing = {name: (v.get("reason") if isinstance(v, dict) else None) or "no reason given"
                   for name, v in floor.items() if not (isinstance(v, dict) and v.get("passed") is True)}
        passed = len(floor) - len(failing)
        tip = "\n".join(f"{name}: {reason}" for name, reason in failing.items())
        detail = ("below the floor: " + ", ".join(failing)) if failing else ""
        marks.append(_mark(f"floor: {passed}/{len(floor)} passed", tip, "warn" if failing else "info", detail))
    withheld = _lookup(metrics, "withheld")
    if isinstance(withheld, list) and withheld:
        n = len(withheld)
        marks.append(_mark(f"{n} verdict{'s' if n != 1 else ''} withheld", "\n".join(map(str, withheld))))
    return marks


def _row(folder: Path, root: Path) -> tuple[tuple[str, str], str] | None:
    try:
        run = json.loads((folder / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        metrics = {}
    if not isinstance(metrics, dict):
        metrics = {}
    e = html.escape
    status = effective_status(run)
    heads = []
    for item in (metrics.get("headline") or [])[:2]:
        ci = item.get("ci")
        ci_text = f' <span class="ci">[{_fmt(ci[0])}, {_fmt(ci[1])}]</span>' if ci and None not in ci else ""
        held = f' <span class="ci" title="{e(str(item["withheld"]))}">(verdict withheld)</span>' if item.get("withheld") else ""
        heads.append(f'<div class="metric">{e(str(item.get("label", item.get("name"))))}: '
                     f'<b>{_fmt(item.get("value"))}</b>{ci_text}{held}</div>')
    verdict = metrics.get("verdict") or ("" if status == "ok" else run.get("error") or STATUS_NOTES.get(status, ""))
    rel = folder.relative_to(root).as_posix()
    exp = run.get("experiment", folder.parent.name)
    links = []
    for name, label in ((f"{exp}.html", "full"), (f"{exp}.reader.html", "reader")):
        if (folder / name).is_file():
            links.append(f'<a href="{e(rel)}/{e(name)}">{label}</a>')
    wall = run.get("wall_seconds")
    cells = [
        f'<b>{e(run.get("title", exp))}</b><br><span class="ci">{e(exp)}</span>',
        e(run.get("profile", folder.name)),
        f'<span class="status status-{e(status)}">{e(status)}</span>' + "".join(provenance_marks(run)),
        f'<span class="nowrap">{e((run.get("start") or "")[:16].replace("T", " "))}</span>',
        f"{wall / 60:.1f} min" if isinstance(wall, (int, float)) else "",
        "".join(heads),
        f'<div class="verdict">{e(verdict)}</div>' + "".join(check_marks(metrics)),
        " · ".join(links),
    ]
    return (exp, run.get("profile", folder.name)), "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def build_index(reports_root: Path | str) -> Path:
    """Rebuild ``reports_root/index.html`` from every ``*/*/run.json`` under it.

    Args:
        reports_root: the reports folder.

    Returns:
        The path of the written index.
    """
    root = Path(reports_root)
    order = {"smoke": 0, "cpu": 1, "gpu": 2}
    rows = [r for r in (_row(f.parent, root) for f in root.glob("*/*/run.json")) if r]
    rows.sort(key=lambda r: (r[0][0], order.get(r[0][1], 9)))
    body = "\n".join(r[1] for r in rows) or '<tr><td colspan="8">No reports yet: run <code>make reports</code>.</td></tr>'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>medgan reports</title><style>{CSS}</style></head>
<body><h1>medgan: GANs for medical imaging, reproduced</h1>
<p class="lead">One row per experiment and profile. Headline numbers show the mean and its 95% CI in brackets;
the verdict is the sentence each report computed from its own numbers. Open the <em>reader</em> version to read
without code, the <em>full</em> version to see how every number was made. Published reports come from a clean
tree; a report marked <em>built from uncommitted changes</em> does not match any commit. Hover over a mark for
its details (the changed files, the models below the quality floor, the withheld verdicts).</p>
<table><thead><tr><th>Experiment</th><th>Profile</th><th>Status</th><th>Date (UTC)</th><th>Wall time</th>
<th>Headline metrics</th><th>Verdict</th><th>Report</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
    return write_text_atomic(root / "index.html", page)
