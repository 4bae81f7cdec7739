"""A Parquet file bigger than the memory it is given, into a collection, and back out.

Writes a Parquet file of N rows of short texts (made a batch at a time, never whole), then, each
in a fresh process with its own peak RSS: upserts it by path (dense + BM25) with the vectors in
RAM at full precision; with ``on_disk=True, quantization="int8"`` (and BM25 on disk); and into
a store that drops the points it is given (qinb's own memory, the engine holding nothing).
Reads the collection back to a Parquet file with ``qinb.read``, and scrolls it with the engine
alone. Then asks both collections the 34 bundled questions (recall@10 of the quantized search
against exact, hybrid p50 side by side). The dense vector comes from the STAND-IN CLIP text
model (512-d, tiny and fast, meaningless vectors through fastembed's real path): real inference
of a million rows would take hours here. BM25 is real.

    .venv/bin/python bench/parquet.py [200000 1000000]
    .venv/bin/python bench/parquet.py --limit-mb 1500 1000000    # on disk + int8 under 1.5 GB
      (a memory cgroup: needs root and cgroup v1's memory controller)
    .venv/bin/python bench/parquet.py --run 1000000 --what compact --limit-mb 1500 --graph-m 0
      (one variant: on disk + int8 with no graph, under 1.5 GB)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import AnonPeak, report, run

import qinb

WORK = Path(os.environ.get("QINB_BENCH_DIR") or tempfile.gettempdir()) / "qinb-bench-parquet"


def make_file(rows: int) -> Path:
    """The source file: text, a number and a topic per row, written 100k rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = WORK / f"rows-{rows}.parquet"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    schema = pa.schema([("text", pa.string()), ("n", pa.int64()), ("topic", pa.string())])
    with pq.ParquetWriter(str(path) + ".part", schema) as writer:
        for first in range(0, rows, 100_000):
            ids = range(first, min(rows, first + 100_000))
            at = [(i * 11) % (len(words) - 20) for i in ids]
            writer.write_table(pa.table({
                "text": [" ".join(words[a:a + 12]) + f" #{i}" for i, a in zip(ids, at, strict=True)],
                "n": list(ids), "topic": [f"topic{i % 20}" for i in ids]}, schema=schema),
                row_group_size=100_000)
    os.replace(str(path) + ".part", path)
    return path


def discarding(path: Path) -> qinb.Store:
    """An Edge store that makes the engine's points of each write and drops them: an upsert into
    it is qinb's own work (reading, objects, embedding, points), the engine holding nothing."""
    from qinb.store.edge import EdgeStore, edge_points

    class Discarding(EdgeStore):
        def upsert(self, collection: str, points: Any) -> None:
            edge_points(points)  # made as for a write, then dropped

        def count(self, collection: str) -> int:
            return 0

    return Discarding(path)


def upsert(rows: int, compact: bool, limit_mb: int, graph_m: int | None = None,
           engine: bool = True) -> dict[str, float]:
    import qinb.standin

    if limit_mb:
        limit(limit_mb)
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    qinb.standin.register_clip(tempfile.mkdtemp())
    where = WORK / f"store-{rows}-{'compact' if compact else 'ram' if engine else 'none'}"
    store = qinb.connect(where) if engine else discarding(where)
    store.delete("c") if store.exists("c") else None
    text = qinb.Text("text", model=qinb.models.CLIP_TEXT, on_disk=compact,
                     quantization="int8" if compact else None,
                     hnsw=None if graph_m is None else {"m": graph_m})
    anon = AnonPeak()
    start = time.perf_counter()
    done = qinb.upsert(make_file(rows), "c", client=store, progress=False,
                       vectors={"text": text, "bm25": qinb.Bm25("text", on_disk=compact)})
    seconds = time.perf_counter() - start
    assert done.upserted == rows and store.count("c") == (rows if engine else 0)
    store.close()
    return {"seconds": seconds, "anon_mb": anon.stop(), **(
        {"group_mb": peak_of_group()} if limit_mb else {})}


def limit(mb: int) -> None:
    """Move this process into a memory cgroup (v1) of ``mb`` MB: page cache counts against it
    and is taken back under pressure; past it, the kernel's OOM killer ends the process."""
    group = Path("/sys/fs/cgroup/memory/qinb-bench")
    group.mkdir(exist_ok=True)
    (group / "memory.limit_in_bytes").write_text(str(mb * 2**20))
    (group / "memory.max_usage_in_bytes").write_text("0")  # the peak of this run, not the last
    (group / "cgroup.procs").write_text(str(os.getpid()))


def peak_of_group() -> float:
    """The cgroup's own high-water mark in MB (RSS and page cache together)."""
    return int(Path("/sys/fs/cgroup/memory/qinb-bench/memory.max_usage_in_bytes").read_text()) / 2**20


def read_back(rows: int) -> dict[str, float]:
    store = qinb.connect(WORK / f"store-{rows}-compact")
    anon = AnonPeak()
    start = time.perf_counter()
    path = qinb.read("c", client=store, to=WORK / f"back-{rows}.parquet", progress=False)
    seconds = time.perf_counter() - start
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).metadata.num_rows == rows
    store.close()
    return {"seconds": seconds, "anon_mb": anon.stop()}


def scroll_alone(rows: int) -> dict[str, float]:
    """The engine alone reading what ``qinb.read`` reads (every point's payload, 4,096 at a
    time), with nothing kept: what reading costs the shard itself, qinb apart."""
    import qdrant_edge as E

    from qinb._read import PAGE

    store = qinb.connect(WORK / f"store-{rows}-compact")
    anon = AnonPeak()
    start = time.perf_counter()
    seen, after = 0, None
    with store._shard("c") as shard:
        while True:
            page, after = shard.scroll(E.ScrollRequest(offset=after, limit=PAGE, with_payload=True,
                                                       with_vector=False))
            seen += len(page)
            if after is None:
                break
    seconds = time.perf_counter() - start
    assert seen == rows
    store.close()
    return {"seconds": seconds, "anon_mb": anon.stop()}


def queries(rows: int) -> dict[str, float]:
    """The 34 bundled questions against the two collections of ``rows`` (in RAM at full
    precision; on disk + int8): recall@10 of the quantized search qinb runs (rescored) against
    exact full-precision search on the same shard, and hybrid p50 through ``qinb.search`` on
    each, taking turns query by query (three rounds)."""
    import statistics

    import qdrant_edge as E

    import qinb.standin
    from qinb.store import Probe

    qinb.standin.register_clip(tempfile.mkdtemp())
    ram, compact = (qinb.connect(WORK / f"store-{rows}-{kind}") for kind in ("ram", "compact"))
    questions = list(qinb.datasets.python_questions()[0])
    model = qinb.models.text_model(qinb.models.CLIP_TEXT)
    exact = E.SearchParams(exact=True, quantization=E.QuantizationSearchParams(ignore=True))
    recall, tied = [], []
    for vector in model.query_embed(questions):
        q = [float(x) for x in vector]
        with compact._shard("c") as shard:
            ranked = shard.query(E.QueryRequest(query=E.Query.Nearest(q, using="text"),
                                                limit=200, params=exact, with_payload=False))
        truth = {int(h.id) for h in ranked[:10]}
        scores = {int(h.id): h.score for h in ranked}
        found = {int(h.id) for h in compact.query("c", [Probe("text", q, quantized=True)],
                                                  limit=10)[0]}
        recall.append(len(found & truth) / 10)
        # the file's rows repeat their words (a 12-word window of one text, and a number), so
        # many score alike: a hit as good as the exact 10th (to float32 noise) is one of its ties
        tenth = ranked[9].score - 1e-4
        tied.append(sum(scores.get(f, -1.0) >= tenth for f in found) / 10)
    times: dict[str, list[float]] = {"ram": [], "compact": []}
    for _ in range(3):
        for question in questions:
            for kind, store in (("ram", ram), ("compact", compact)):
                start = time.perf_counter()
                qinb.search("c", question, client=store)
                times[kind].append(time.perf_counter() - start)
    return {"recall": statistics.mean(recall), "recall_ties": statistics.mean(tied),
            **{f"{k}_ms": statistics.median(v) * 1000 for k, v in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int)
    parser.add_argument("--what", choices=["ram", "compact", "none", "read", "scroll", "queries"],
                        default="compact")
    parser.add_argument("--limit-mb", type=int, default=0)
    parser.add_argument("--graph-m", type=int, help="the dense graph's m (0: none)")
    parser.add_argument("rows", nargs="*", type=int, default=[200_000, 1_000_000])
    args = parser.parse_args()
    if args.run:
        report(read_back(args.run) if args.what == "read" else scroll_alone(args.run)
               if args.what == "scroll" else queries(args.run)
               if args.what == "queries" else upsert(args.run, args.what == "compact",
                                                       args.limit_mb, args.graph_m,
                                                       engine=args.what != "none"))
        return
    for n in args.rows:
        make_file(n)
    print("rows       file MB   what                  seconds   peak RSS MB   peak anonymous MB")
    got: dict[tuple[int, str], dict[str, float]] = {}
    for n in args.rows:
        size = (WORK / f"rows-{n}.parquet").stat().st_size / 2**20
        for what in ("ram", "compact", "none", "read", "scroll"):
            extra = ["--what", what] + (["--limit-mb", str(args.limit_mb)] if what == "compact"
                                        and args.limit_mb else [])
            r = got[n, what] = run(Path(__file__), str(n), *extra)
            label = {"ram": "upsert, in RAM", "compact": "upsert, on disk + int8",
                     "none": "upsert, points dropped", "read": "qinb.read to Parquet",
                     "scroll": "the engine's scroll alone"}[what]
            print(f"{n:>9,d}  {size:8.0f}   {label:<22} {r['seconds']:7.0f}  {r['rss_mb']:12.0f}"
                  f"  {r['anon_mb']:18.0f}", flush=True)
    for n in args.rows:
        r = run(Path(__file__), str(n), "--what", "queries")
        print(f"{n:>9,d}  on disk + int8 (rescored) against exact full precision: recall@10 "
              f"{r['recall']:.3f}, counting a hit that scores as the exact 10th does "
              f"{r['recall_ties']:.3f} (target >= 0.98); hybrid p50 {r['compact_ms']:.1f} ms against "
              f"{r['ram_ms']:.1f} ms in RAM: {r['compact_ms'] / r['ram_ms']:.2f}x (target <= 2x)",
              flush=True)
    first, last = args.rows[0], args.rows[-1]
    for what in ("ram", "compact", "none", "read", "scroll"):
        print(f"{what}: {last // first}x the rows, peak RSS x"
              f"{got[last, what]['rss_mb'] / got[first, what]['rss_mb']:.2f}, anonymous x"
              f"{got[last, what]['anon_mb'] / got[first, what]['anon_mb']:.2f}")


if __name__ == "__main__":
    main()
