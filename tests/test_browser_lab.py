"""The shipped notebooks as a person runs them after ``make lab``: opened in real JupyterLab in
Chromium, Run > Run All Cells, one after another on one default store, with nothing set by hand
(the notebooks decide on the stand-in CLIP models themselves)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from test_browser import CHROMIUM, FLAGS, _run_all_cells, require_chromium, running_lab

from qinb.cli import SHIPPED

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# every code cell shows an execution count: Run All has reached the end
ALL_RAN = ("[...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
           ".every(e => /\\[\\d+\\]/.test(e.textContent))")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, warm_cache):
    require_chromium()
    root = tmp_path_factory.mktemp("make-lab")
    for name in SHIPPED:
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", root)
    with running_lab(root, QINB_CACHE=warm_cache) as (base, token):
        yield base, token, root


def saved_code_cells(page, path: Path) -> list[dict]:
    """Save the notebook from Lab and read its code cells back: the outputs as the kernel gave
    them, with their types (an error is an "error" output, whatever its text)."""
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    for _ in range(60):
        if path.stat().st_mtime_ns != before:
            time.sleep(0.5)  # written whole
            return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not save {path.name}")


def test_the_shipped_notebooks_run_all_in_jupyterlab_one_after_another(lab, artifacts):
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            for name in SHIPPED:
                page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
                page.goto(f"{base}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=120_000)
                try:
                    _run_all_cells(page)
                    page.wait_for_function(ALL_RAN, timeout=300_000)
                    page.wait_for_selector(
                        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
                finally:
                    page.screenshot(path=str(artifacts / f"make_lab_{name}.png"), full_page=True)
                cells = saved_code_cells(page, root / f"{name}.ipynb")
                errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
                assert not errors, (name, errors)
                assert all(c["execution_count"] for c in cells), name  # every cell ran
                assert sum(len(c["outputs"]) for c in cells) >= len(cells) // 2, name
                if name == "01-quickstart":
                    passage_cards(page, artifacts)
                    weak_notice(page, artifacts)
                page.close()
        finally:
            browser.close()


def passage_cards(page, artifacts: Path) -> None:
    """01-quickstart's widget searches chunked topics: each card shows the passage that
    matched, with the query's words marked, not the start of the topic."""
    cards = page.locator(".qinb-card")
    cards.first.scroll_into_view_if_needed()
    assert cards.count() == 6
    texts = cards.all_inner_texts()
    assert all("best passage" in t for t in texts), texts
    marked = [m.lower() for m in page.locator(".qinb-card .qinb-snippet mark").all_inner_texts()]
    assert {"loop", "list", "items"} & set(marked), marked
    page.screenshot(path=str(artifacts / "browser_passage_cards.png"), full_page=False)


def weak_notice(page, artifacts: Path) -> None:
    """A nonsense query typed into 01-quickstart's widget: the status line says the hits are
    probably unrelated (issue 18, item 1), where a real question's says nothing of the kind."""
    box = page.locator("input[placeholder='search…  (Enter)']").first
    box.fill("xqzv blorf wug")
    box.press("Enter")
    notice = page.locator(".qinb-weak")
    notice.wait_for(timeout=60_000)
    assert "probably unrelated" in notice.inner_text()
    notice.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "browser_weak_match.png"), full_page=False)
