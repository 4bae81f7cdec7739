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

os.environ.setdefault("QINB_MODELS", str(Path(__file__).resolve().parents[1] / ".models"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import report, run


def variant(rows: int) -> dict[str, float]:
    import qinb.standin

    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    qinb.standin.register_clip(tempfile.mkdtemp())
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    at = [(i * 11) % (len(words) - 20) for i in range(rows)]
    df = pd.DataFrame({"text": [" ".join(words[a:a + 12]) + f" #{i}" for i, a in enumerate(at)],
                       "n": range(rows), "topic": [f"topic{i % 20}" for i in range(rows)]})
    store = qinb.connect(tempfile.mkdtemp())
    start = time.perf_counter()
    report_ = df.qdrant.upsert("c", client=store, progress=False, vectors={
        "text": qinb.Text("text", model=qinb.models.CLIP_TEXT), "bm25": qinb.Bm25("text")})
    seconds = time.perf_counter() - start
    assert store.count("c") == rows and report_.upserted == rows
    store.close()
    return {"seconds": seconds, "frame_mb": df.memory_usage(deep=True).sum() / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int)
    parser.add_argument("rows", nargs="*", type=int, default=[50_000, 200_000, 1_000_000])
    args = parser.parse_args()
    if args.run:
        report(variant(args.run))
        return
    got = {n: run(Path(__file__), str(n)) for n in args.rows}
    print("rows       upsert s   frame MB   peak RSS MB   RSS beyond the frame")
    for n, r in got.items():
        print(f"{n:>9,d}  {r['seconds']:8.0f}  {r['frame_mb']:9.0f}  {r['rss_mb']:12.0f}"
              f"  {r['rss_mb'] - r['frame_mb']:12.0f}")
    first, last = got[args.rows[0]], got[args.rows[-1]]
    print(f"{args.rows[-1] // args.rows[0]}x the rows: peak RSS x{last['rss_mb'] / first['rss_mb']:.2f} "
          f"(RSS beyond the frame x{(last['rss_mb'] - last['frame_mb']) / (first['rss_mb'] - first['frame_mb']):.2f})"
          "  (target: 1M rows <= 3000 MB)")


if __name__ == "__main__":
    main()
