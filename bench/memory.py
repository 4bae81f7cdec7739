"""Peak RSS of an upsert against the number of rows: it should stay flat, since the frame is
read, embedded and written in chunks.

Real inference of a million rows would take hours here, so the dense vector comes from the
STAND-IN CLIP text model (qinb.standin: tiny, fast, meaningless vectors through fastembed's real
path); BM25 is real. Each size runs in its own process, on a fresh Edge store and cache.

    .venv/bin/python bench/memory.py [50000 200000 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import AnonPeak, report, run

import qinb


def engine_only(rows: int) -> dict[str, float]:
    """What the engine alone takes: the same number of points (512-d vectors, BM25 of the same
    texts, a payload of the same shape) written straight into a Qdrant Edge shard."""
    import numpy as np
    import qdrant_edge as E

    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    shard = E.EdgeShard.create(tempfile.mkdtemp(), E.EdgeConfig(
        vectors={"text": E.EdgeVectorParams(size=512, distance=E.Distance.Cosine)},
        sparse_vectors={"bm25": E.EdgeSparseVectorParams(modifier=E.Modifier.Idf)}))
    bm25, rng = E.Bm25(), np.random.default_rng(0)
    anon = AnonPeak()
    start = time.perf_counter()
    for first in range(0, rows, 2048):
        n = min(2048, rows - first)
        dense = rng.standard_normal((n, 512)).astype(np.float32)
        points = []
        for j in range(n):
            i = first + j
            a = (i * 11) % (len(words) - 20)
            text = " ".join(words[a:a + 12]) + f" #{i}"
            points.append(E.Point(i, {"text": dense[j], "bm25": bm25.embed_document(text)},
                                  {"text": text, "n": i, "topic": f"topic{i % 20}", "_qinb_row": i}))
        shard.update(E.UpdateOperation.upsert_points(points))
    shard.flush()
    shard.close()
    return {"seconds": time.perf_counter() - start, "frame_mb": 0.0, "anon_mb": anon.stop()}


def variant(rows: int) -> dict[str, float]:
    import qinb.standin

    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    qinb.standin.register_clip(tempfile.mkdtemp())
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    at = [(i * 11) % (len(words) - 20) for i in range(rows)]
    df = pd.DataFrame({"text": [" ".join(words[a:a + 12]) + f" #{i}" for i, a in enumerate(at)],
                       "n": range(rows), "topic": [f"topic{i % 20}" for i in range(rows)]})
    store = qinb.connect(tempfile.mkdtemp())
    anon = AnonPeak()
    start = time.perf_counter()
    report_ = df.qdrant.upsert("c", client=store, progress=False, vectors={
        "text": qinb.Text("text", model=qinb.models.CLIP_TEXT), "bm25": qinb.Bm25("text")})
    seconds = time.perf_counter() - start
    assert store.count("c") == rows and report_.upserted == rows
    store.close()
    return {"seconds": seconds, "frame_mb": df.memory_usage(deep=True).sum() / 2**20,
            "anon_mb": anon.stop()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int)
    parser.add_argument("--engine-only", action="store_true")
    parser.add_argument("rows", nargs="*", type=int, default=[50_000, 200_000, 1_000_000])
    args = parser.parse_args()
    if args.run:
        report(engine_only(args.run) if args.engine_only else variant(args.run))
        return
    got = {n: run(Path(__file__), str(n)) for n in args.rows}
    engine = {n: run(Path(__file__), str(n), "--engine-only") for n in args.rows}
    print("rows       upsert s   frame MB   peak RSS MB   engine alone MB   peak anonymous MB"
          "   engine alone   qinb beyond frame and engine")
    for n, r in got.items():
        print(f"{n:>9,d}  {r['seconds']:8.0f}  {r['frame_mb']:9.0f}  {r['rss_mb']:12.0f}"
              f"  {engine[n]['rss_mb']:16.0f}  {r['anon_mb']:18.0f}  {engine[n]['anon_mb']:13.0f}"
              f"  {own(got[n], engine[n]):28.0f}")
    first, last = args.rows[0], args.rows[-1]
    print(f"{last // first}x the rows: peak RSS x{got[last]['rss_mb'] / got[first]['rss_mb']:.2f}; "
          f"qinb's own part x{own(got[last], engine[last]) / own(got[first], engine[first]):.2f}"
          "  (target: 1M rows <= 3000 MB)")
    print("Anonymous memory is the process's heap. The rest of RSS is the engine's memory-mapped "
          "files it touched (page cache the kernel can take back). qinb's own part is the "
          "anonymous peak less the frame's size and the engine's own anonymous peak.")


def own(qinb_run: dict[str, float], engine_run: dict[str, float]) -> float:
    """Heap beyond the frame and what the engine alone needs for the same points."""
    return qinb_run["anon_mb"] - qinb_run["frame_mb"] - engine_run["anon_mb"]


if __name__ == "__main__":
    main()
