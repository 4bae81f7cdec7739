"""What a Dask upsert costs and where it would stop scaling, measured on a LocalCluster here
(2 cores: this shows overhead and the rates to project from, not a speed-up).

Each variant runs in a fresh process with its own store and embedding cache, MiniLM (real) and
BM25 on short texts, worker processes of one thread, the cluster started before the clock:

- in-process: an upsert of the pandas frame;
- Dask, 1 worker: the embedding rate of one worker (one core);
- Dask, 2 workers, 4 and 64 partitions: against in-process (the overhead), and what a
  partition costs (the difference between 64 and 4, over 60 partitions);
- warm, to the embedded store: the cache already holds every vector, so the run is what is
  left (the workers reading the cache, the points sent back, the client writing them): the
  rate one client can write at, which is where the embedded store stops scaling;
- warm, to the fake server over HTTP (the wire tests' one, in a process of its own, one
  request at a time), 64 partitions: the workers' own writes, and the client and scheduler's
  CPU time a partition (this process holds LocalCluster's scheduler), which sets how many
  partitions a second one client can hand out.

    .venv/bin/python bench/dask_scaling.py [rows]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
from _child import report, run

import qinb

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "qdrant-openapi.json"


def frame(rows: int) -> pd.DataFrame:
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    return pd.DataFrame({"doc_id": range(rows),
                         "text": [" ".join(words[(i * 13) % (len(words) - 16):][:14])
                                  for i in range(rows)]})


def upsert(rows: int, workers: int, partitions: int, warm: bool, fake: bool) -> dict[str, float]:
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    store = qinb.connect(tempfile.mkdtemp())
    vectors = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}
    df = frame(rows)
    if warm:  # every vector in the cache before the clock
        qinb.upsert(df, "warm", vectors=vectors, client=store, id_column="doc_id", progress=False)
    if not workers:
        start = time.perf_counter()
        done = qinb.upsert(df, "c", vectors=vectors, client=store, id_column="doc_id",
                           progress=False)
        return {"seconds": time.perf_counter() - start, "embedded": done.embedded}
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster), \
            _fake_server(fake) as url:
        target = qinb.connect(url=url, check_compatibility=False) if url else store
        ddf = dd.from_pandas(df, npartitions=partitions)
        cpu, start = time.process_time(), time.perf_counter()
        done = qinb.upsert(ddf, "c", vectors=vectors, client=target, id_column="doc_id",
                           progress=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert done.upserted == rows, done
    return {"seconds": seconds, "client_cpu": cpu, "embedded": done.embedded}


def _serve(urls: Any) -> None:  # the fake server's own process
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakeserver import FakeServer, serve_http

    with serve_http(FakeServer(json.loads(SCHEMA.read_text()))) as url:
        urls.put(url)
        threading.Event().wait()


@contextlib.contextmanager
def _fake_server(wanted: bool) -> Iterator[str | None]:
    """The fake server in a process of its own, so that this one's CPU time is the client's
    and the scheduler's only."""
    if not wanted:
        yield None
        return
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    server = context.Process(target=_serve, args=(urls,), daemon=True)
    server.start()
    try:
        yield urls.get(timeout=60)
    finally:
        server.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--fake", action="store_true")
    parser.add_argument("rows", nargs="?", type=int, default=2000)
    args = parser.parse_args()
    if args.run:
        report(upsert(args.run, args.workers, args.partitions, args.warm, args.fake))
        return
    here, rows = Path(__file__), args.rows
    variants = {
        "inproc": ("in-process, pandas", []),
        "one": ("Dask, 1 worker, 4 partitions", ["--workers", "1"]),
        "two": ("Dask, 2 workers, 4 partitions", ["--workers", "2"]),
        "many": ("Dask, 2 workers, 64 partitions", ["--workers", "2", "--partitions", "64"]),
        "edge": ("warm, 2 workers, to the embedded store", ["--workers", "2", "--warm"]),
        "fake": ("warm, 2 workers, 64 partitions, to the fake server",
                 ["--workers", "2", "--partitions", "64", "--warm", "--fake"]),
    }
    print(f"{rows} short texts; variant                             seconds    rows/s  "
          "client peak RSS MB")
    got = {}
    for key, (label, extra) in variants.items():
        r = got[key] = run(here, str(rows), *extra)
        print(f"{label:<52} {r['seconds']:7.1f}  {rows / r['seconds']:8.0f}  {r['rss_mb']:10.0f}",
              flush=True)
    rate = {key: rows / r["seconds"] for key, r in got.items()}
    partition = (got["many"]["seconds"] - got["two"]["seconds"]) / 60
    client = got["fake"]["client_cpu"] / 64
    print(f"Dask (2 workers, 4 partitions) against in-process: {rate['two'] / rate['inproc']:.2f}x "
          "the speed (target >= 0.9x on 2 cores)")
    print(f"2 workers against 1 on 2 cores: {rate['two'] / rate['one']:.2f}x")
    print(f"a partition costs {partition * 1000:.0f} ms of wall time here (64 against 4); "
          f"the client and scheduler spend {client * 1000:.0f} ms of CPU on one")
    print("\nprojected rows per hour, from one worker's rate (one core each) and the limits above;"
          "\n500-row partitions, as measured; arithmetic, not a measurement past 2 workers")
    per_worker = rate["one"]
    scheduler = 500 / client  # rows a second one client and scheduler can hand out
    print("workers   embedded store (client writes)   server (workers write)")
    for n in (1, 2, 4, 8, 16, 32, 64):
        embedded = min(n * per_worker, rate["edge"], scheduler)
        server = min(n * per_worker, scheduler)
        print(f"{n:>7}   {embedded * 3600 / 1e6:>10.2f} M{'  (client)' if embedded < n * per_worker else '':<12}"
              f"         {server * 3600 / 1e6:>8.2f} M{'  (scheduler)' if server < n * per_worker else ''}")
    print(f"limits: one client writes {rate['edge']:.0f} rows/s to the embedded store; one "
          f"client and scheduler hand out {scheduler:.0f} rows/s in 500-row partitions; the "
          f"fake server took {rate['fake']:.0f} rows/s (one Python thread, not a Qdrant figure)")


if __name__ == "__main__":
    main()
