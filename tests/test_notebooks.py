"""The notebooks, executed by the demo command as a newcomer runs it, and their committed form."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01-quickstart", "02-images", "03-hybrid-and-filters", "04-qdrant-cloud", "05-evaluate"]


def test_the_five_notebooks_are_the_ones_the_demo_runs():
    from qinb.cli import SHIPPED

    assert list(SHIPPED) == NAMES
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} >= set(NAMES)


def _committed(name: str) -> str:
    """The notebook as committed (a Lab session may have saved outputs into the file)."""
    shown = subprocess.run(["git", "show", f"HEAD:notebooks/{name}.ipynb"], cwd=NOTEBOOKS,
                           capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else (NOTEBOOKS / f"{name}.ipynb").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_carry_no_outputs_and_a_kernelspec(name):
    notebook = json.loads(_committed(name))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.fixture(scope="module")
def demo(tmp_path_factory, warm_cache):
    """`qinb demo` with the notebooks, on its own embedded store, without a Qdrant server.
    It runs from a copy of notebooks/ where a Lab session saved outputs into one notebook and
    a user saved a notebook of their own: the demo runs the shipped five, from clean copies."""
    root = tmp_path_factory.mktemp("demo")
    shipped = root / "notebooks"
    shutil.copytree(NOTEBOOKS, shipped, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    saved = json.loads((shipped / "01-quickstart.ipynb").read_text())
    saved["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "stale"}]
    (shipped / "01-quickstart.ipynb").write_text(json.dumps(saved))
    (shipped / "mine.ipynb").write_text("not a notebook")  # would fail if it were run
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "QDRANT_API_KEY")}
    env.update(QINB_STORE=str(root / "store"), QINB_CACHE=warm_cache)
    run = subprocess.run(
        [sys.executable, "-m", "qinb.cli", "demo", "--quiet", "--notebooks", str(shipped),
         "--reports", str(root / "reports")],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    return run, root / "reports"


def _outputs(reports: Path, name: str) -> list[dict]:
    """The outputs of the executed notebook the demo wrote beside its HTML report."""
    notebook = json.loads((reports / f"{name}.ipynb").read_text())
    return [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]


def _text(outputs: list[dict]) -> str:
    parts = []
    for o in outputs:
        parts.append("".join(o.get("text", "")))
        parts.append("".join(o.get("data", {}).get("text/plain", "")))
        parts.append("".join(o.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts)


def test_demo_executes_every_notebook_into_a_named_report(demo):
    run, reports = demo
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in NAMES:
        assert f"{name}.ipynb: ok" in run.stdout
        assert (reports / f"{name}.html").is_file()
    assert "5 reports in" in run.stdout and "mine.ipynb" not in run.stdout
    assert "stale" not in _text(_outputs(reports, "01-quickstart"))  # run from a clean copy
    assert "stale" in (reports.parent / "notebooks" / "01-quickstart.ipynb").read_text()
    assert "created collection 'photos': 6 rows, 6 upserted" in run.stdout


def test_reports_hold_no_errors(demo):
    _, reports = demo
    for name in NAMES:
        outputs = _outputs(reports, name)
        assert outputs, name
        assert [o for o in outputs if o["output_type"] == "error"] == [], name
        assert "Traceback" not in _text(outputs), name
        assert "<html" in (reports / f"{name}.html").read_text()[:2000].lower()


def test_quickstart_shows_the_rerun_and_the_widget(demo):
    outputs = _outputs(demo[1], "01-quickstart")
    text = _text(outputs)
    assert "79 unchanged" in text and "0 embedded" in text
    assert "The \"raise\" statement" in text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    widget_results = _text(outputs[-1:])  # the last cell shows w.results, readable without JS
    assert widget_results.splitlines()[3].split()[0] == "for"  # header, index name, rank 1
    # its own story on its own store: the first upsert creates, the re-run skips
    assert "rows=79, upserted=79, unchanged=0" in text
    # the report draws the widget from its saved state: cards and all, with no network
    page = (demo[1] / "01-quickstart.html").read_text()
    static = next(part for part in page.split('class="qinb-static"')[1:] if "hits ·" in part)
    assert static.count('<div class="qinb-card') == 6
    assert "6 hits · text query · by text, bm25" in static and "<b>#1</b>" in static


def test_images_notebook_says_it_uses_stand_in_models(demo):
    run, reports = demo
    outputs = _outputs(reports, "02-images")
    assert "Note: stand-in CLIP models." in _text(outputs)  # this machine has no CLIP weights
    assert "STAND-IN CLIP" in run.stdout
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 1  # plot_hits


def test_hybrid_notebook_plots_the_map_and_scores(demo):
    outputs = _outputs(demo[1], "03-hybrid-and-filters")
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 2


def test_evaluation_notebook_shows_the_table_and_the_plot(demo):
    outputs = _outputs(demo[1], "05-evaluate")
    text = _text(outputs)
    table = next(o["data"]["text/plain"] for o in outputs
                 if "ndcg@10" in "".join(o.get("data", {}).get("text/plain", "")))
    rows = "".join(table).splitlines()[1:]
    ndcg = {(r.split()[1], r.split()[2]): float(r.split()[3]) for r in rows}
    assert len(ndcg) == 7 and all("34" in r.split() for r in rows)
    # what the notebook says: passages beat whole topics cut at the window; a hybrid comes first
    assert ndcg["passages", "-"] > ndcg["text", "-"]
    assert "+" in rows[0].split()[1]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 1
    assert "run cleanup code" in text or "hexadecimal" in text  # the worst questions, shown
    assert "'avg_len': 492.65" in text and "bm25_fit" in text  # BM25 fitted, and measured


def test_cloud_notebook_stops_cleanly_without_a_server(demo):
    text = _text(_outputs(demo[1], "04-qdrant-cloud"))
    assert "QDRANT_URL is not set" in text
    assert "connected to" not in text


def test_two_shipped_notebooks_run_side_by_side_on_one_store(tmp_path, warm_cache):
    """01 and 03 executed at the same time, in two kernels, on one embedded store (as two
    notebooks open in one JupyterLab): neither fails on the other's hold on the store."""
    env = {k: v for k, v in os.environ.items() if k not in ("QDRANT_URL", "QDRANT_API_KEY")}
    env.update(QINB_STORE=str(tmp_path / "store"), QINB_CACHE=warm_cache)
    runs = []
    for name in ("01-quickstart", "03-hybrid-and-filters"):
        copy = tmp_path / f"{name}.ipynb"  # executed from a copy: the shipped file stays clean
        copy.write_text((NOTEBOOKS / f"{name}.ipynb").read_text())
        runs.append((copy, subprocess.Popen(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--inplace", "--ExecutePreprocessor.timeout=600", str(copy)],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for copy, run in runs:
        _, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
        outputs = [o for c in json.loads(copy.read_text())["cells"] if c["cell_type"] == "code"
                   for o in c["outputs"]]
        assert [o for o in outputs if o["output_type"] == "error"] == [], copy.name
        assert "StoreLockedError" not in _text(outputs)


@pytest.mark.skipif(shutil.which("git") is None or not (NOTEBOOKS.parent / ".git").exists(),
                    reason="needs the git checkout")
def test_jupyters_checkpoints_are_not_new_files_to_git():
    # opening the notebooks in `make lab` writes notebooks/.ipynb_checkpoints/ (issue 18, item 2)
    for path in ("notebooks/.ipynb_checkpoints/01-quickstart-checkpoint.ipynb",
                 ".ipynb_checkpoints/x.ipynb"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=NOTEBOOKS.parent)
        assert ignored.returncode == 0, path
