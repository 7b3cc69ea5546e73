"""Render an executed notebook to a self-contained, offline HTML report.

Two versions per report: ``EXP.html`` (full, with code) and ``EXP.reader.html`` (code inputs
hidden, outputs and text only). Both use the ``medgan`` template (nbconvert's lab template with
every network fetch removed), MathML formulas (see :mod:`medgan_core.report.mathml`), and a
header injected at the top: title, profile, date, data folders, wall time, commit, the command
that reproduces the run, links to the notebook and params file, and a table of contents.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from medgan_core.report.mathml import protect_math, restore_math

TEMPLATES = Path(__file__).parent / "templates"

CSS = """
.medgan-header { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 18px; margin: 12px 0 20px;
  background: #f6f8fa; max-width: 1100px; }
.medgan-header h1 { margin: 0 0 6px; font-size: 1.6em; }
.medgan-header table { border-collapse: collapse; font-size: 0.92em; }
.medgan-header td { padding: 2px 10px 2px 0; vertical-align: top; }
.medgan-header td:first-child { color: #57606a; white-space: nowrap; }
.medgan-header code { background: #eaeef2; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
.medgan-status-ok { color: #1a7f37; font-weight: bold; }
.medgan-status-failed { color: #cf222e; font-weight: bold; }
.medgan-toc { font-size: 0.92em; margin-top: 8px; }
.medgan-toc ul { margin: 2px 0; padding-left: 18px; }
.math-display { text-align: center; margin: 0.6em 0; overflow-x: auto; }
math[display="block"] { font-size: 1.1em; }
code.tex-error { color: #cf222e; }
@media print { .medgan-header { background: none; } }
"""

_HEADING = re.compile(r'<h([1-3]) id="([^"]+)"[^>]*>(.*?)(?:<a class="anchor-link"[^>]*>.*?</a>)?</h\1>', re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_TAG = re.compile(r"<[^>]+>")


def _strip_remote_comments(text: str) -> str:
    """Drop CSS comments that mention web addresses (the lab theme's credits)."""
    return _CSS_COMMENT.sub(lambda m: "" if "://" in m.group(0) else m.group(0), text)


def table_of_contents(body: str) -> list[tuple[int, str, str]]:
    """Headings of a rendered report as ``(level, anchor id, text)``.

    Args:
        body: rendered HTML.
    """
    toc = []
    for level, anchor, inner in _HEADING.findall(body):
        text = html.unescape(_TAG.sub("", inner)).strip().rstrip("¶").strip()
        if text:
            toc.append((int(level), anchor, text))
    return toc


def header_html(header: dict, toc: list[tuple[int, str, str]], other_version: str | None) -> str:
    """The block injected at the top of a report.

    Args:
        header: facts about the run: ``title``, ``experiment``, ``profile``, ``status``, ``date``,
            ``data_folders``, ``wall_seconds``, ``commit``, ``command``, ``notebook_link``,
            ``params_link``, ``peak_memory_mb`` (missing keys are left out).
        toc: the table of contents (see :func:`table_of_contents`).
        other_version: file name of the other version (full <-> reader), linked from the header.
    """
    e = html.escape
    rows = []
    status = header.get("status", "")
    if status:
        rows.append(("Status", f'<span class="medgan-status-{e(status)}">{e(status)}</span>'))
    for key, label in (("experiment", "Experiment"), ("profile", "Profile"), ("date", "Date")):
        if header.get(key):
            rows.append((label, e(str(header[key]))))
    if header.get("data_folders"):
        rows.append(("Data", ", ".join(f"<code>{e(d)}</code>" for d in header["data_folders"])))
    if header.get("wall_seconds") is not None:
        mem = header.get("peak_memory_mb")
        extra = f", peak memory {mem:,.0f} MB" if mem else ""
        device = f" on {e(header['device'])}" if header.get("device") else ""
        rows.append(("Wall time", f"{header['wall_seconds'] / 60:.1f} min{device}{extra}"))
    if header.get("commit"):
        rows.append(("Git commit", f"<code>{e(header['commit'])}</code>"))
    if header.get("command"):
        rows.append(("Reproduce", f"<code>{e(header['command'])}</code>"))
    links = []
    for key, label in (("notebook_link", "notebook"), ("params_link", "params file")):
        if header.get(key):
            links.append(f'<a href="{e(header[key])}">{label}</a>')
    if other_version:
        label = "reader version (no code)" if not other_version.endswith(".reader.html") else "reader version (no code)"
        label = "full version (with code)" if not other_version.endswith(".reader.html") else label
        links.append(f'<a href="{e(other_version)}">{label}</a>')
    links.append('<a href="../../index.html">all reports</a>')
    rows.append(("Links", " · ".join(links)))
    table = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    toc_html = ""
    if toc:
        items, depth = [], 0
        base = min(level for level, _, _ in toc)
        for level, anchor, text in toc:
            level = level - base + 1
            while depth < level:
                items.append("<ul>")
                depth += 1
            while depth > level:
                items.append("</ul>")
                depth -= 1
            items.append(f'<li><a href="#{e(anchor)}">{e(text)}</a></li>')
        items.append("</ul>" * depth)
        toc_html = f'<details class="medgan-toc" open><summary>Contents</summary>{"".join(items)}</details>'
    title = e(header.get("title") or header.get("experiment") or "medgan report")
    return f'<header class="medgan-header"><h1 id="report-title">{title}</h1><table>{table}</table>{toc_html}</header>'


def render_report(notebook: nbformat.NotebookNode | str | Path, *, reader: bool = False,
                  header: dict | None = None, other_version: str | None = None) -> str:
    """Render an executed notebook to offline HTML and return it as a string.

    Args:
        notebook: an executed notebook or its path.
        reader: hide code inputs (and stderr streams such as progress bars).
        header: run facts for the injected header (see :func:`header_html`); ``None`` for none.
        other_version: file name of the other version, linked from the header.
    """
    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, Path)) else copy.deepcopy(notebook)
    store: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = protect_math(cell.source, store)
        elif reader and cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(template_name="medgan", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = reader
    exporter.exclude_input_prompt = reader
    exporter.exclude_output_prompt = reader
    body, _ = exporter.from_notebook_node(nb, resources={"medgan_css": CSS})
    body = restore_math(_strip_remote_comments(body), store)
    if header is not None:
        block = header_html(header, table_of_contents(body), other_version)
        body = body.replace("<main>", "<main>\n" + block, 1)
    return body
