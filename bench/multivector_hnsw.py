"""Qdrant Edge's HNSW index over multivectors (one row of passages per point, MaxSim), which
chunked text vectors use: recall@10 against exact search, index build time, query p50.

Qdrant builds its graph on row-to-row MaxSim; how well that serves a one-passage query, and
what it costs with many passages per row, is measured here on STAND-IN vectors: each row a
random "document" direction, its 10-30 passages that direction plus noise (384-d, as
all-MiniLM-L6-v2), queries a random passage plus noise. No qinb code runs.

    .venv/bin/python bench/multivector_hnsw.py [rows]     # default 20,000 rows, ~10 minutes
    .venv/bin/python bench/multivector_hnsw.py --variant plain

The ``plain`` variant is what qinb makes for a chunked vector: HNSW switched off for the
multivector (``m=0``), so a query scans every row exactly.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import qdrant_edge as E

DIM = 384


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def build(rows: int, rng: np.random.Generator, graph: bool) -> tuple[E.EdgeShard, list[np.ndarray], int]:
    hnsw = None if graph else E.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)
    shard = E.EdgeShard.create(tempfile.mkdtemp(), E.EdgeConfig(vectors={"text": E.EdgeVectorParams(
        size=DIM, distance=E.Distance.Cosine, hnsw_config=hnsw,
        multivector_config=E.MultiVectorConfig(E.MultiVectorComparator.MaxSim))}))
    kept: list[np.ndarray] = []
    passages = 0
    for first in range(0, rows, 1000):
        points = []
        for i in range(first, min(first + 1000, rows)):
            n = int(rng.integers(10, 31))
            matrix = unit(rng.standard_normal(DIM) + 1.2 * rng.standard_normal((n, DIM)))
            passages += n
            if i % 50 == 0:
                kept.append(matrix)
            points.append(E.Point(i, {"text": matrix}, {}))
        shard.update(E.UpdateOperation.upsert_points(points))
    return shard, kept, passages


def ids(shard: E.EdgeShard, query: np.ndarray, exact: bool, ef: int | None = None) -> tuple[list[int], float]:
    started = time.perf_counter()
    found = shard.query(E.QueryRequest(limit=10, query=E.Query.Nearest(query[np.newaxis, :], using="text"),
                                       params=E.SearchParams(exact=exact, hnsw_ef=ef)))
    return [p.id for p in found], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="?", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--variant", choices=["hnsw", "plain", "both"], default="both")
    args = parser.parse_args()
    for graph in {"hnsw": [True], "plain": [False], "both": [True, False]}[args.variant]:
        measure(args.rows, args.queries, graph)


def measure(rows: int, count: int, graph: bool) -> None:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    shard, kept, passages = build(rows, rng, graph)
    written = time.perf_counter() - started
    queries = [unit(m[rng.integers(len(m))] + 0.8 * unit(rng.standard_normal(DIM)))
               for m in (kept[rng.integers(len(kept))] for _ in range(count))]
    exact = [ids(shard, q, True) for q in queries]
    started = time.perf_counter()
    shard.optimize()
    built = time.perf_counter() - started
    info = shard.info()
    print(f"\n{'HNSW (Qdrant default m=16)' if graph else 'no graph (m=0), what qinb makes'}: "
          f"{rows:,d} rows, {passages:,d} passages ({passages / rows:.1f} per row, {DIM}-d); "
          f"written in {written:.0f} s; optimize() took {built:.0f} s "
          f"({info.segments_count} segments, {info.indexed_vectors_count:,d} indexed vectors)")
    print("search            recall@10 vs exact   p50 ms")
    print(f"exact                        1.000   {statistics.median(t for _, t in exact) * 1000:7.1f}")
    for ef in (None, 128, 256, 512) if graph else (None,):
        got = [ids(shard, q, False, ef) for q in queries]
        recall = statistics.mean(len(set(g) & set(e)) / 10 for (g, _), (e, _) in zip(got, exact, strict=True))
        name = "hnsw (default ef)" if ef is None else f"hnsw ef={ef}"
        print(f"{name:<22s}       {recall:.3f}   {statistics.median(t for _, t in got) * 1000:7.1f}")
    shard.close()


if __name__ == "__main__":
    main()
