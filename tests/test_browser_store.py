"""Two notebooks in one JupyterLab on one embedded store, side by side: each kernel writes its
own collection and searches the other's, with no kernel shut down by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_browser import CHROMIUM, FLAGS, _run_all_cells, require_chromium, running_lab

pytestmark = pytest.mark.browser
TESTS = Path(__file__).resolve().parent


def _cells(mine: str, theirs: str, text: str) -> list[str]:
    return [
        "import pandas as pd, qinb, time\n"
        f"df = pd.DataFrame({{'text': [{text!r}, 'a note about something else']}})\n"
        f"print(df.qdrant.upsert({mine!r}, vectors={{'text': qinb.Text('text'), 'bm25': qinb.Bm25('text')}},"
        " progress=False))",
        # wait until the other notebook's points are written, then search them
        f"for _ in range(240):\n    if {theirs!r} in qinb.connect().collections():\n"
        f"        hits = qinb.search({theirs!r}, 'planets', limit=1)\n"
        "        if len(hits): break\n    time.sleep(0.5)\n"
        f"print('FOUND', {theirs!r}, hits['text'].iloc[0])",
        f"print('AGAIN', qinb.search({mine!r}, 'planets', limit=1)['text'].iloc[0])",
    ]


def _notebook(path: Path, cells: list[str]) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {}, "source": src, "outputs": [],
                   "execution_count": None} for src in cells],
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    }))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("lab2")
    store = tmp_path_factory.mktemp("shared-store")
    _notebook(root / "first.ipynb", _cells("first", "second", "Jupiter is the largest of the planets"))
    _notebook(root / "second.ipynb", _cells("second", "first", "Mars is a small red one of the planets"))
    with running_lab(root, QINB_STORE=str(store)) as lab:
        yield lab


def test_two_notebooks_share_the_default_store_side_by_side(lab, artifacts):
    from playwright.sync_api import sync_playwright

    base, token = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        pages = []
        try:
            for name in ("first", "second"):
                # a workspace per tab, so that neither tab restores the other's notebook
                page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
                page.goto(f"{base}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                       timeout=120_000)
                pages.append(page)
            for page in pages:  # both run at once: each waits for the other's collection
                _run_all_cells(page)
            others = {"second": "Mars is a small red", "first": "Jupiter is the largest"}
            for page, theirs in zip(pages, ("second", "first"), strict=True):
                # the outputs, not the sources (which hold the same words)
                page.wait_for_function(
                    "[...document.querySelectorAll('.jp-OutputArea-output')]"
                    ".some(e => /AGAIN|Error/.test(e.innerText))", timeout=240_000)
                text = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
                page.screenshot(path=str(artifacts / f"browser_two_notebooks_{theirs}.png"))
                assert "Error" not in text, text[-2000:]
                assert f"FOUND {theirs} {others[theirs]}" in text
        except Exception:
            for i, page in enumerate(pages):
                page.screenshot(path=str(artifacts / f"browser_two_notebooks_failure{i}.png"))
            raise
        finally:
            browser.close()
