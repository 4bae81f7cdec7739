"""Dense queries on the HNSW graph an upsert now builds, against brute force on the same shard:
p50 and recall@10 at several ``hnsw_ef``.

Real all-MiniLM-L6-v2 vectors by default: 40-word windows (half overlapping) of the docstrings
in the source files of the standard library and the installed packages (read with ``ast``, never
imported; 5.4M words, 270k windows here, kept in a file after the first run), upserted by qinb
(which builds the graph as an upsert ends), queried by the 34 bundled questions and by 50 windows left out of
the collection; and the same vectors kept ``on_disk=True, quantization="int8"``, searched as
qinb searches them (rescored), against exact full-precision search. ``--random`` uses STAND-IN random unit
vectors instead, written through the store: a pathological case for any graph (no structure,
all distances alike), shown for contrast.

    .venv/bin/python bench/dense_index.py [--points 30000] [--random]
    .venv/bin/python bench/dense_index.py --points 100000     # about 45 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from qdrant_client import models

import qinb
from qinb.store import Point


def windows() -> list[str]:
    """Distinct 40-word windows, half overlapping, of every docstring longer than 40 characters
    in the source files of the standard library and of the installed packages (tests left out)."""
    kept = Path(tempfile.gettempdir()) / "qinb-bench-windows.txt"
    if kept.exists():
        return kept.read_text().splitlines()
    paths = sysconfig.get_paths()
    docs: dict[str, None] = {}
    for path in sorted(p for root in {paths["stdlib"], paths["purelib"]} for p in Path(root).rglob("*.py")):
        if {"test", "tests"} & set(path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    docs.setdefault(doc)
    words = " ".join(docs).split()
    found = list(dict.fromkeys(" ".join(words[i:i + 40]) for i in range(0, len(words) - 40, 20)))
    kept.write_text("\n".join(found))
    return found


def real(points: int) -> tuple[qinb.Store, list[list[float]]]:
    """A store of ``points`` windows embedded by MiniLM, and the query vectors."""
    import pandas as pd

    from qinb.query import resolve_queries
    from qinb.store import saved_specs

    texts = windows()
    if len(texts) < points + 100:
        raise SystemExit(f"only {len(texts)} windows: ask for fewer --points")
    held_out = texts[points:points + 100:2]  # windows after the stored ones: never stored
    store = qinb.connect(tempfile.mkdtemp())
    frame = pd.DataFrame({"text": texts[:points]})
    frame.qdrant.upsert("c", vectors={"text": qinb.Text("text")}, client=store)
    # the same vectors (from the embedding cache) kept on disk with an int8 copy in RAM
    frame.qdrant.upsert("q", vectors={"text": qinb.Text("text", on_disk=True, quantization="int8")},
                        client=store, progress=False)
    questions, _ = qinb.datasets.python_questions()
    specs, _ = saved_specs(store, "c")
    asked = [*questions.tolist(), *held_out]
    return store, [resolve_queries(specs, ["text"], q, False)["text"].tolist() for q in asked]


def stand_in(points: int) -> tuple[qinb.Store, list[list[float]]]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((points, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = qinb.connect(tempfile.mkdtemp())
    store.create("c", {"text": 384}, ["bm25"], {})
    for start in range(0, points, 2048):
        store.upsert("c", [Point(id=i, payload={}, vectors={
            "text": vectors[i], "bm25": models.SparseVector(indices=[i % 97], values=[1.0])})
            for i in range(start, min(points, start + 2048))])
    store.finish("c", progress=False)
    return store, rng.standard_normal((84, 384)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=30_000)
    parser.add_argument("--random", action="store_true")
    args = parser.parse_args()
    import qdrant_edge as E

    started = time.perf_counter()
    store, queries = stand_in(args.points) if args.random else real(args.points)
    print(f"{args.points:,} points ({'random stand-in' if args.random else 'MiniLM'} vectors), "
          f"upserted and indexed in {time.perf_counter() - started:.0f} s")
    exact = E.SearchParams(exact=True)
    settings = [("brute force", exact), ("graph, default ef", None),
                ("graph, ef=64", E.SearchParams(hnsw_ef=64)),
                ("graph, ef=128", E.SearchParams(hnsw_ef=128)),
                ("graph, ef=256 (as qinb asks)", E.SearchParams(hnsw_ef=256))]
    times: dict[str, list[float]] = {label: [] for label, _ in settings}
    recalls: dict[str, list[float]] = {label: [] for label, _ in settings}
    with store._shard("c") as shard:
        for q in queries:
            truth = None
            for label, params in settings:  # side by side, query by query
                request = E.QueryRequest(query=E.Query.Nearest(q, using="text"), limit=10,
                                         params=params, with_payload=False)
                t = time.perf_counter()
                found = {int(h.id) for h in shard.query(request)}
                times[label].append((time.perf_counter() - t) * 1000)
                truth = found if truth is None else truth
                recalls[label].append(len(found & truth) / 10)
    if not args.random:  # the int8 copy, searched as qinb searches it, against full precision
        from qinb.store import Probe

        label = "int8 on disk, rescored"
        more = {f"{label}, oversampling {k}": E.SearchParams(quantization=E.QuantizationSearchParams(
            rescore=True, oversampling=k)) for k in (3.0, 4.0)}
        for name in (label, *more):
            times[name], recalls[name] = [], []
        for q in queries:
            with store._shard("c") as shard:
                truth = {int(h.id) for h in shard.query(E.QueryRequest(
                    query=E.Query.Nearest(q, using="text"), limit=10, params=exact,
                    with_payload=False))}
            t = time.perf_counter()
            found = {int(h.id) for h in store.query("q", [Probe("text", q, quantized=True)],
                                                    limit=10)[0]}
            times[label].append((time.perf_counter() - t) * 1000)
            recalls[label].append(len(found & truth) / 10)
            with store._shard("q") as shard:
                for name, params in more.items():
                    request = E.QueryRequest(query=E.Query.Nearest(q, using="text"), limit=10,
                                             params=params, with_payload=False)
                    t = time.perf_counter()
                    found = {int(h.id) for h in shard.query(request)}
                    times[name].append((time.perf_counter() - t) * 1000)
                    recalls[name].append(len(found & truth) / 10)
    print(f"{'search':<42} p50 ms   recall@10   speed-up over brute force")
    brute = statistics.median(times["brute force"])
    for label in times:
        p50 = statistics.median(times[label])
        print(f"{label:<42} {p50:7.2f}   {statistics.mean(recalls[label]):9.3f}   {brute / p50:6.1f}x")
    store.close()


if __name__ == "__main__":
    main()
