"""Reports in a real browser: formulas render as math offline, and the page fetches nothing.

Runs headless Debian Chromium on the smoke report of ``00_data_tour`` and on the index page.
Skipped (with the reason) where Chromium is absent, e.g. a laptop; CI sets
``MEDGAN_REQUIRE_BROWSER=1`` so that there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from browser import chromium_path, load_page, page_requests
from conftest import REPO
from medgan_core.report.html import render_report

ARTIFACTS = REPO / "test-artifacts" / "browser"
ACCEPTANCE_TEX = (r"L_D = \mathbb{E}[D(\tilde x)] - \mathbb{E}[D(x)] + "
                  r"\lambda\,\mathbb{E}[(\|\nabla D(\hat x)\|_2 - 1)^2]")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("MEDGAN_REQUIRE_BROWSER"):
            pytest.fail("MEDGAN_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium not installed (Debian: apt-get install chromium); browser test skipped")
    print(f"browser test running with {path}")
    return path


def visible_text(dom: str) -> str:
    """The DOM's text outside <math>, <style>, <script>, <pre> and <code> elements."""
    for tag in ("math", "style", "script", "pre", "code"):
        dom = re.sub(rf"<{tag}\b.*?</{tag}>", " ", dom, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", dom)


def assert_offline_math(dom: str, requests: list[str]) -> None:
    assert dom.count("<math") >= 1, "no MathML element in the rendered page"
    text = visible_text(dom)
    leftovers = re.findall(r"\$\$|\$[^$\s][^$]*\$|\\(?:mathbb|nabla|lambda|frac|tilde|hat|odot)\b", text)
    assert not leftovers, f"raw TeX left in the page text: {leftovers[:5]}"
    assert page_requests(requests) == [], f"the page made network requests: {page_requests(requests)}"


def test_detector_sees_a_remote_script(browser, tmp_path):
    """Positive control: a page that does load a CDN script is caught by the request log."""
    page = tmp_path / "remote.html"
    page.write_text('<html><head><script src="http://cdn.example.org/x.js"></script></head><body>x</body></html>')
    _, requests = load_page(page)
    assert any("cdn.example.org" in r for r in page_requests(requests))


def test_acceptance_formula_renders_as_math(browser, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Loss\n\nThe critic minimises ${ACCEPTANCE_TEX}$.\n\n"
                                              f"$$\\lambda_{{f}} \\odot \\hat x_{{i,j}}$$")]
    page = tmp_path / "formula.html"
    page.write_text(render_report(nb, header={"title": "Formula check"}))
    dom, requests = load_page(page, screenshot=ARTIFACTS / "formula.png", height=500)
    assert_offline_math(dom, requests)
    assert "<mover" in dom and "<msub" in dom  # \tilde / \hat accents and subscripts became MathML


@pytest.mark.slow
def test_data_tour_smoke_report_and_index_in_browser(browser, smoke_reports):
    folder = smoke_reports / "00_data_tour" / "smoke"
    t0 = time.perf_counter()
    for name in ("00_data_tour.html", "00_data_tour.reader.html"):
        page = folder / name
        assert page.is_file(), f"{page} was not rendered"
        dom, requests = load_page(page, screenshot=ARTIFACTS / name.replace(".html", ".png"))
        assert_offline_math(dom, requests)
        assert "medgan-header" in dom and "Reproduce" in dom
    index = smoke_reports / "index.html"
    dom, requests = load_page(index, screenshot=ARTIFACTS / "index.png", height=900)
    assert page_requests(requests) == [], requests
    assert "00_data_tour" in dom and "status-ok" in dom
    shutil.copy(folder / "00_data_tour.html", ARTIFACTS / "00_data_tour.html")
    print(f"browser checks took {time.perf_counter() - t0:.1f} s; screenshots in {ARTIFACTS}")
    assert (ARTIFACTS / "index.png").stat().st_size > 10_000
