"""Dense queries on the HNSW graph an upsert now builds, against brute force on the same shard:
p50 and recall@10 at several ``hnsw_ef``.

Real all-MiniLM-L6-v2 vectors by default: 40-word windows (half overlapping) of the standard
library's docstrings (as ``docstrings.py`` collects them), upserted by qinb (which builds the
graph as an upsert ends), queried by the 34 bundled questions and by 50 windows left out of
the collection; and the same vectors kept ``on_disk=True, quantization="int8"``, searched as
qinb searches them (rescored), against exact full-precision search. ``--random`` uses STAND-IN random unit
vectors instead, written through the store: a pathological case for any graph (no structure,
all distances alike), shown for contrast.

    .venv/bin/python bench/dense_index.py [--points 30000] [--random]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
from qdrant_client import models

import qinb
from qinb.store import Point


def real(points: int) -> tuple[qinb.Store, list[list[float]]]:
    """A store of ``points`` windows embedded by MiniLM, and the query vectors."""
    import pandas as pd
    from docstrings import docstrings

    from qinb.query import resolve_queries
    from qinb.store import saved_specs

    words = " ".join(docstrings()["doc"]).split()
    windows = list(dict.fromkeys(" ".join(words[i:i + 40]) for i in range(0, len(words) - 40, 20)))
    if len(windows) < points + 100:
        raise SystemExit(f"only {len(windows)} windows: ask for fewer --points")
    held_out = windows[points:points + 100:2]  # windows after the stored ones: never stored
    store = qinb.connect(tempfile.mkdtemp())
    frame = pd.DataFrame({"text": windows[:points]})
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
                ("graph, ef=256", E.SearchParams(hnsw_ef=256))]
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
        times[label], recalls[label] = [], []
        for q in queries:
            with store._shard("c") as shard:
                truth = {int(h.id) for h in shard.query(E.QueryRequest(
                    query=E.Query.Nearest(q, using="text"), limit=10, params=exact,
                    with_payload=False))}
            t = time.perf_counter()
            found = {int(h.id) for h in store.query("q", [Probe("text", q, quantized=True)],
                                                    limit=10, payload=False)}
            times[label].append((time.perf_counter() - t) * 1000)
            recalls[label].append(len(found & truth) / 10)
    print("search                   p50 ms   recall@10   speed-up over brute force")
    brute = statistics.median(times["brute force"])
    for label in times:
        p50 = statistics.median(times[label])
        print(f"{label:<24} {p50:7.2f}   {statistics.mean(recalls[label]):9.3f}   {brute / p50:6.1f}x")
    store.close()


if __name__ == "__main__":
    main()
