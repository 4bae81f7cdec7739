"""A Dask upsert against the same rows in-process, on a 2-process LocalCluster here (2 cores:
this shows overhead, not speed-up).

Each variant runs in a fresh process with a fresh embedding cache and its own store: an
in-process upsert of a pandas frame; the same rows as a Dask frame of 4 partitions on 2
worker processes of one thread (the cluster started before the clock); the same with 64
partitions, whose difference from 4 is the cost of a partition (scheduling, sending the
rows to the workers and the vectors back). MiniLM (real) and BM25.

    .venv/bin/python bench/dask_scaling.py [rows]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
from _child import report, run

import qinb


def frame(rows: int) -> pd.DataFrame:
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    return pd.DataFrame({"doc_id": range(rows),
                         "text": [" ".join(words[(i * 13) % (len(words) - 16):][:14])
                                  for i in range(rows)]})


def upsert(rows: int, partitions: int) -> dict[str, float]:
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    store = qinb.connect(tempfile.mkdtemp())
    vectors = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}
    df = frame(rows)
    if not partitions:
        start = time.perf_counter()
        done = qinb.upsert(df, "c", vectors=vectors, client=store, id_column="doc_id",
                           progress=False)
        return {"seconds": time.perf_counter() - start, "embedded": done.embedded}
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        ddf = dd.from_pandas(df, npartitions=partitions)
        start = time.perf_counter()
        done = qinb.upsert(ddf, "c", vectors=vectors, client=store, id_column="doc_id",
                           progress=False)
        seconds = time.perf_counter() - start
    assert store.count("c") == rows
    return {"seconds": seconds, "embedded": done.embedded}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int)
    parser.add_argument("--partitions", type=int, default=0)
    parser.add_argument("rows", nargs="?", type=int, default=3000)
    args = parser.parse_args()
    if args.run:
        report(upsert(args.run, args.partitions))
        return
    here = Path(__file__)
    print("variant                                    seconds   rows/s   peak RSS MB (client)")
    got = {}
    for label, parts in (("in-process, pandas", 0), ("Dask, 2 workers, 4 partitions", 4),
                         ("Dask, 2 workers, 64 partitions", 64)):
        r = got[parts] = run(here, str(args.rows), "--partitions", str(parts))
        print(f"{label:<42} {r['seconds']:7.1f}  {args.rows / r['seconds']:7.0f}  "
              f"{r['rss_mb']:10.0f}", flush=True)
    print(f"Dask (4 partitions) against in-process: {got[0]['seconds'] / got[4]['seconds']:.2f}x "
          "the speed (target >= 0.9x on 2 cores)")
    print(f"cost of a partition: {(got[64]['seconds'] - got[4]['seconds']) / 60 * 1000:.0f} ms "
          f"(64 against 4 partitions)")


if __name__ == "__main__":
    main()
