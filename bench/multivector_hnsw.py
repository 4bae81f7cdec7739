"""Qdrant Edge's HNSW index over multivectors (one row of passages per point, MaxSim), which
chunked text vectors use: recall@10 against exact search, index build time, query p50.

Qdrant builds its graph on row-to-row MaxSim; how well that serves a one-passage query, and
what it costs with many passages per row, is measured here on STAND-IN vectors: each row a
random "document" direction, its 10-30 passages that direction plus noise (384-d, as
all-MiniLM-L6-v2), queries a random passage plus noise. No qinb code runs.

    .venv/bin/python bench/multivector_hnsw.py [rows]     # default 20,000 rows
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


def build(rows: int, rng: np.random.Generator) -> tuple[E.EdgeShard, list[np.ndarray], int]:
    shard = E.EdgeShard.create(tempfile.mkdtemp(), E.EdgeConfig(vectors={"text": E.EdgeVectorParams(
        size=DIM, distance=E.Distance.Cosine,
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
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    shard, kept, passages = build(args.rows, rng)
    written = time.perf_counter() - started
    queries = [unit(m[rng.integers(len(m))] + 0.8 * unit(rng.standard_normal(DIM)))
               for m in (kept[rng.integers(len(kept))] for _ in range(args.queries))]
    exact = [ids(shard, q, True) for q in queries]
    started = time.perf_counter()
    shard.optimize()
    built = time.perf_counter() - started
    info = shard.info()
    print(f"{args.rows:,d} rows, {passages:,d} passages ({passages / args.rows:.1f} per row, {DIM}-d); "
          f"written in {written:.0f} s; optimize() built the index in {built:.0f} s "
          f"({info.segments_count} segments, {info.indexed_vectors_count:,d} indexed vectors)")
    print("search            recall@10 vs exact   p50 ms")
    print(f"exact                        1.000   {statistics.median(t for _, t in exact) * 1000:7.1f}")
    for ef in (None, 128, 256, 512):
        got = [ids(shard, q, False, ef) for q in queries]
        recall = statistics.mean(len(set(g) & set(e)) / 10 for (g, _), (e, _) in zip(got, exact, strict=True))
        name = "hnsw (default ef)" if ef is None else f"hnsw ef={ef}"
        print(f"{name:<22s}       {recall:.3f}   {statistics.median(t for _, t in got) * 1000:7.1f}")
    shard.close()


if __name__ == "__main__":
    main()
