"""The index page's marks: dirty tree, over budget, quality floor and withheld verdicts."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from medgan_core.report.index import build_index

CLEAN = {"clean": True, "n_dirty": 0, "dirty_paths": [], "reason": None, "folders": ["notebooks", "medgan_core", "params"]}
DIRTY = {**CLEAN, "clean": False, "n_dirty": 3,
         "dirty_paths": ["medgan_core/losses.py", "notebooks/01_x.ipynb", "params/01_x/cpu.yaml"]}
FLOOR = {"dcgan": {"passed": True, "reason": "FID 2.1x the reference"},
         "cwgan_gp": {"passed": False, "reason": "FID 310x the real-vs-real reference", "fid_ratio": 310.0},
         "bagan": {"passed": True, "reason": "ok"},
         "bagan_gp": {"passed": False, "reason": "mode collapse: MS-SSIM 0.97"}}
WITHHELD = ["The utility verdict for cwgan_gp is withheld: below the floor.",
            "The utility verdict for bagan_gp is withheld: below the floor."]


def plant(root: Path, exp: str, run: dict, metrics: dict | None) -> None:
    folder = root / exp / "cpu"
    folder.mkdir(parents=True)
    base = {"experiment": exp, "title": exp, "profile": "cpu", "status": "ok", "wall_seconds": 600.0,
            "start": "2026-01-01T10:00:00+00:00"}
    (folder / "run.json").write_text(json.dumps({**base, **run}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))


def row_of(page: str, exp: str) -> str:
    rows = [r for r in page.split("<tr>") if f">{exp}</span>" in r]
    assert len(rows) == 1, f"no single row for {exp}"
    return html.unescape(rows[0])


@pytest.fixture
def page(tmp_path) -> str:
    plant(tmp_path, "01_dirty", {"tree": DIRTY, "git_commit": "abc+dirty"},
          {"metrics": {}, "headline": [], "verdict": "A verdict.", "quality_floor": FLOOR, "withheld": WITHHELD})
    plant(tmp_path, "02_clean", {"tree": CLEAN, "git_commit": "abc", "time_limit_min": 40.0, "over_budget": False},
          {"metrics": {}, "headline": [], "verdict": "Another verdict."})
    plant(tmp_path, "03_slow", {"tree": CLEAN, "status": "timed_out", "wall_seconds": 2460.0,
                                "time_limit_min": 40.0, "over_budget": True, "error": "stopped after 41.0 min"}, None)
    plant(tmp_path, "04_old", {"git_commit": "abc+dirty"}, {"metrics": {}, "headline": [], "verdict": None,
                                                           "quality_floor": {"dcgan": {"passed": True, "reason": "ok"}},
                                                           "withheld": ["One sentence."]})
    plant(tmp_path, "05_nogit", {"tree": {**CLEAN, "clean": None, "n_dirty": None, "reason": "git is not available"}},
          {"metrics": {"quality_floor": {"dcgan": {"passed": False, "reason": "nested"}}}, "headline": []})
    return build_index(tmp_path).read_text()


def test_dirty_tree_is_marked_with_its_paths(page):
    row = row_of(page, "01_dirty")
    assert "built from uncommitted changes: 3 files" in row
    assert "medgan_core/losses.py" in row and "params/01_x/cpu.yaml" in row  # in the tooltip
    assert "uncommitted" not in row_of(page, "02_clean")
    assert "built from uncommitted changes" in row_of(page, "04_old")  # run.json before the tree record
    assert "tree state unknown" in row_of(page, "05_nogit") and "git is not available" in row_of(page, "05_nogit")


def test_floor_and_withheld_counts(page):
    row = row_of(page, "01_dirty")
    assert "floor: 2/4 passed" in row and "2 verdicts withheld" in row
    assert "below the floor: cwgan_gp, bagan_gp" in row
    assert "cwgan_gp: FID 310x the real-vs-real reference" in row and "bagan_gp: mode collapse" in row
    assert WITHHELD[0] in row  # the sentences, in the tooltip
    old = row_of(page, "04_old")
    assert "floor: 1/1 passed" in old and "1 verdict withheld" in old and "below the floor" not in old
    assert "floor: 0/1 passed" in row_of(page, "05_nogit")  # read from the metrics section too


def test_absent_keys_show_nothing(page):
    row = row_of(page, "02_clean")
    for text in ("floor:", "withheld", "over budget", "uncommitted", "unknown"):
        assert text not in row


def test_over_budget_and_timed_out(page):
    row = row_of(page, "03_slow")
    assert "status-timed_out" in row and "over budget: 41.0 min > 40 min" in row
    assert "stopped after 41.0 min" in row  # the error stands in for the missing verdict
