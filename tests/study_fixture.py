"""A tiny throwaway study (notebooks/ + params/) for testing the runner end to end."""

from __future__ import annotations

from pathlib import Path

import nbformat

PARAMS = '''seed = 0  # random seed
scale = 1.5  # a float parameter
label = "demo"  # a string parameter
fail = False  # raise an error on purpose
profile = "cpu"  # set by the runner
data_dir = ""  # set by the runner
'''

BODY = '''import os
from medgan_core import results
if fail:
    raise RuntimeError("planted failure for the test")
value = scale * (seed + 1)
results.log_metrics(value=value, nested={"label": label})
results.log_headline("value", value, ci=(value - 1, value + 1), label="Demo value")
results.log_verdict(f"The value is {value:.2f} for {label}.")
print("PROFILE", profile, "RUN_DIR", os.environ.get("MEDGAN_RUN_DIR"))
'''


def make_notebook(path: Path, title: str, body: str = BODY) -> Path:
    """Write a small experiment notebook with a parameters cell, math and metrics."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\n## Method\n\nThe critic loss is "
                                      "$L_D = \\mathbb{E}[D(\\tilde x)] - \\mathbb{E}[D(x)] + "
                                      "\\lambda\\,\\mathbb{E}[(\\|\\nabla D(\\hat x)\\|_2 - 1)^2]$.\n\n"
                                      "$$\\lambda_{f} \\odot x_{i,j}$$"),
        params,
        nbformat.v4.new_code_cell(body),
        nbformat.v4.new_markdown_cell("## Results\n\nDone."),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["medgan"] = {"title": title, "expected_minutes": {"smoke": 0.1, "cpu": 0.1},
                             "data_folders": ["demo_folder"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def make_study(root: Path) -> Path:
    """Two experiments, ``10_good`` and ``11_bad`` (fails in smoke), with params files."""
    make_notebook(root / "notebooks" / "10_good.ipynb", "A good experiment")
    make_notebook(root / "notebooks" / "11_bad.ipynb", "A failing experiment")
    for name, smoke in (("10_good", "seed: 1\nscale: 2\n"), ("11_bad", "fail: true\n")):
        folder = root / "params" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "smoke.yaml").write_text(smoke)
        (folder / "cpu.yaml").write_text("")
    return root
