"""Queries at 100k points, side by side in one run: qinb on Qdrant Edge (the embedded default),
qinb on qdrant-client's local mode, and raw ``qdrant_edge`` calls on the same data (qinb's own
overhead); and the time to reopen each store in a new process.

Store-side only: the dense vectors are random unit vectors (real inference of 100k rows would
take most of an hour here), the BM25 vectors are real, and queries are embedded by the real
all-MiniLM-L6-v2 and BM25 in every variant alike.

    .venv/bin/python bench/queries.py [--points 100000]     # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import qinb
from qinb.store import ROW_KEY, ClientStore, EdgeStore, Point, Store, ensure_collection

TOPICS = [f"topic{i}" for i in range(20)]
QUERIES = ["how do decorators work", "the with statement", "integer division", "class definitions",
           "exceptions and tracebacks", "string formatting", "import system", "lambda expressions",
           "comparison operators", "generator functions", "assignment statements", "the for loop",
           "boolean operations", "dictionary displays", "slicing sequences"]
SPECS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


def fill(store: Store, n: int) -> None:
    from qdrant_client import models
    from qdrant_edge import Bm25

    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    bm25 = Bm25()
    rng = np.random.default_rng(0)
    ensure_collection(store, "c", SPECS, None)
    for start in range(0, n, 2000):
        points = []
        for i in range(start, min(start + 2000, n)):
            text = " ".join(words[(i * 11) % (len(words) - 20):(i * 11) % (len(words) - 20) + 12])
            sparse = bm25.embed_document(text)
            dense = rng.standard_normal(384).astype(np.float32)
            points.append(Point(i, {"text": dense / np.linalg.norm(dense), "bm25": models.SparseVector(
                indices=list(sparse.indices), values=list(sparse.values))},
                {"text": text, "n": i, "topic": TOPICS[i % 20], ROW_KEY: i}))
        store.upsert("c", points)


def p50s(variants: dict[str, Any]) -> dict[str, float]:
    """Median ms per variant, each query run by every variant in turn (after one warm-up
    round), so that machine noise and warm caches fall on all alike. The order rotates from
    query to query, since a variant that follows a slow one pays for its garbage and cold caches;
    as in ``timeit``, garbage collection is done between calls, not inside the timed one."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i, q in enumerate([QUERIES[0], *QUERIES]):
        for name in names[i % len(names):] + names[:i % len(names)]:
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            variants[name](q)
            elapsed = time.perf_counter() - start
            gc.enable()
            if i:
                times[name].append(elapsed)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def qinb_kinds(store: Store) -> dict[str, Any]:
    return {
        "dense": lambda q: qinb.search("c", q, using="text", client=store),
        "bm25": lambda q: qinb.search("c", q, using="bm25", client=store),
        "hybrid": lambda q: qinb.search("c", q, client=store),
        "filtered": lambda q: qinb.search("c", q, client=store, filter={"topic": "topic3"}),
        "like": lambda q: qinb.search("c", like=QUERIES.index(q) * 331, client=store),
    }


def raw_kinds(store: EdgeStore) -> dict[str, Any]:
    """The same queries as plain qdrant_edge calls on the open shard, embedded the same way."""
    import qdrant_edge as E

    dense_model = qinb.models.text_model(qinb.models.MINILM)
    bm25 = E.Bm25()

    def dense(q: str) -> Any:
        return next(iter(dense_model.query_embed([q]))).tolist()

    def fused(q: str, flt: Any = None) -> Any:
        d, s = dense(q), bm25.embed_query(q)
        return E.QueryRequest(limit=10, query=E.Fusion.Rrf(k=2), filter=flt, with_payload=True, prefetches=[
            E.Prefetch(limit=50, query=E.Query.Nearest(d, using="text"), filter=flt),
            E.Prefetch(limit=50, query=E.Query.Nearest(s, using="bm25"), filter=flt)])

    def like(q: str) -> Any:
        rec = shard.retrieve([QUERIES.index(q) * 331], with_payload=False, with_vector=True)[0]
        itself = E.Filter(must_not=[E.HasIdCondition({QUERIES.index(q) * 331})])
        return E.QueryRequest(limit=10, query=E.Fusion.Rrf(k=2), filter=itself, with_payload=True, prefetches=[
            E.Prefetch(limit=50, query=E.Query.Nearest(v, using=n), filter=itself)
            for n, v in rec.vector.items()])

    topic = E.Filter(must=[E.FieldCondition(key="topic", match=E.MatchValue("topic3"))])
    with store._shard("c") as shard:  # held open, as qinb holds it between searches
        pass
    shard = store._handle("c").shard
    return {
        "dense": lambda q: shard.query(E.QueryRequest(limit=10, with_payload=True, query=E.Query.Nearest(
            dense(q), using="text"))),
        "bm25": lambda q: shard.query(E.QueryRequest(limit=10, with_payload=True, query=E.Query.Nearest(
            bm25.embed_query(q), using="bm25"))),
        "hybrid": lambda q: shard.query(fused(q)),
        "filtered": lambda q: shard.query(fused(q, topic)),
        "like": lambda q: shard.query(like(q)),
    }


def reopen(engine: str, path: str) -> float:
    """Seconds for a new process to open the store and count its points (imports excluded)."""
    code = (f"import time, qinb\nstart = time.perf_counter()\n"
            f"s = qinb.connect({path!r}, engine={engine!r})\nassert s.count('c') > 0\n"
            "print(time.perf_counter() - start)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    n = parser.parse_args().points
    root = Path(tempfile.mkdtemp())
    edge = EdgeStore(root / "edge", hold=60)
    from qdrant_client import QdrantClient

    local = ClientStore(QdrantClient(path=str(root / "local")))
    for name, store in (("edge", edge), ("local mode", local)):
        start = time.perf_counter()
        fill(store, n)
        store.finish("c", progress=False)
        print(f"{name}: {n} points written and indexed in {time.perf_counter() - start:.1f} s")
    qinb.search("c", "warm up", client=edge)  # models loaded before the clock
    gc.freeze()  # local mode's millions of stored objects: not walked by each collection
    kinds = {"qinb on Edge": qinb_kinds(edge), "raw qdrant_edge": raw_kinds(edge),
             "qinb on local mode": qinb_kinds(local)}
    results: dict[str, dict[str, float]] = {name: {} for name in kinds}
    for kind in kinds["qinb on Edge"]:
        for name, p50 in p50s({name: runs[kind] for name, runs in kinds.items()}).items():
            results[name][kind] = p50
    local.close()
    edge.close()
    print(f"\nquery p50 in ms at {n} points (query embedding included):")
    print(f"  {'':10s} {'qinb/Edge':>10s} {'raw Edge':>10s} {'local mode':>11s} {'vs local':>9s} {'vs raw':>7s}")
    for kind in results["qinb on Edge"]:
        a, b, c = (results[k][kind] for k in ("qinb on Edge", "raw qdrant_edge", "qinb on local mode"))
        print(f"  {kind:10s} {a:10.1f} {b:10.1f} {c:11.1f} {c / a:8.0f}x {a / b:6.2f}x")
    print("  (targets: hybrid and filtered >= 30x faster than local mode, within 2x of raw Edge)")
    e, lo = reopen("edge", str(root / "edge")), reopen("local", str(root / "local"))
    print(f"\nreopen in a new process: Edge {e:.2f} s, local mode {lo:.2f} s ({lo / e:.0f}x)  (target <= 1 s)")


if __name__ == "__main__":
    main()
