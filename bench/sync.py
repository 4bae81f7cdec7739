"""A table cleaned and synced: ``upsert(..., delete_missing=True)`` after 1% of the rows changed
and 0.5% were dropped, against rebuilding the collection from the cleaned table, side by side in
one run, on real MiniLM + BM25, from a pandas frame, a Parquet file and a Dask frame on a
2-worker cluster.

Prints, per source: the texts embedded by the sync against the rows changed (target: equal),
the sync's wall time against the rebuild's (target: >= 20x), whether the ids equal the source's
exactly, and the Jaccard of the top-10 hybrid hits of 200 queries against the rebuild (target
1.0). The rebuild embeds every row: it runs with an empty embedding cache of its own.

``--memory`` measures the sync's peak memory at 100k and 1M ids, each in its own process, on
collections made with the STAND-IN CLIP text model (qinb.standin: fast, meaningless vectors;
real inference of a million rows would take hours here), BM25 real. Target: what qinb holds
beyond the engine's own memory and the frame, at 1M ids <= 1.2x that at 100k.

``--long`` re-runs the upsert of 1,000 unchanged rows of 20k words (chunk_size=256) with this
tree and with an older commit of qinb (``--against``, checked out beside it), side by side.
Target: >= 50x faster than before cells were hashed unsplit.

    .venv/bin/python bench/sync.py [--rows 100000] [--kinds pandas parquet dask]
    .venv/bin/python bench/sync.py --memory [100000 1000000]
    .venv/bin/python bench/sync.py --long [--long-rows 1000] [--flat] [--against c88bb25]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import pandas as pd

import qinb
from qinb import embed

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


def vocabulary() -> list[str]:
    words = " ".join(qinb.datasets.python_topics()["text"]).lower().split()
    return sorted({w.strip(".,:;()[]'\"`") for w in words if w.isalpha() and len(w) > 3})


def table(rows: int, words: list[str]) -> pd.DataFrame:
    rng = random.Random(7)
    return pd.DataFrame({"key": [f"r{i:07d}" for i in range(rows)],
                         "text": [" ".join(rng.choices(words, k=rng.randint(8, 14)))
                                  for _ in range(rows)],
                         "n": range(rows)})


def cleaned(df: pd.DataFrame, words: list[str]) -> tuple[pd.DataFrame, int]:
    rng = random.Random(8)
    keep = df.drop(index=rng.sample(range(len(df)), len(df) // 200)).copy()
    changed = rng.sample(list(keep.index), len(df) // 100)
    keep.loc[changed, "text"] = [" ".join(rng.choices(words, k=10)) + " revised" for _ in changed]
    return keep, len(changed)


def counting() -> list[int]:
    """Dense texts embedded from now on (queries not counted)."""
    count = [0]
    real = embed._embed_batch

    def wrapped(items, runtime, *, query):  # type: ignore[no-untyped-def]
        if not query:
            count[0] += sum(i.obj.model == qinb.models.MINILM for i in items)
        return real(items, runtime, query=query)

    embed._embed_batch = wrapped
    return count


def top10(store: qinb.Store, collection: str, queries: list[str]) -> list[set[str]]:
    return [set(qinb.search(collection, q, limit=10, client=store).index) for q in queries]


def run(kind: str, df: pd.DataFrame, new: pd.DataFrame, changed: int, work: Path,
        queries: list[str], count: list[int]) -> None:
    store = qinb.connect(work / f"store-{kind}")
    os.environ["QINB_CACHE"] = str(work / "cache-first")  # the first builds share their vectors
    qinb.upsert(df, "c", vectors=VECTORS, client=store, id_column="key", progress=False)
    source: object = new
    cluster = None
    if kind == "parquet":
        new.to_parquet(work / "cleaned.parquet", index=False)
        source = work / "cleaned.parquet"
    elif kind == "dask":
        import dask.dataframe as dd
        import distributed

        cluster = distributed.Client(distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None))
        source = dd.from_pandas(new, npartitions=16)
    os.environ["QINB_CACHE"] = str(work / f"cache-{kind}")
    count[0] = 0
    t = time.perf_counter()
    report = qinb.upsert(source, "c", vectors=VECTORS, client=store, id_column="key",
                         delete_missing=True, progress=False)
    sync_s = time.perf_counter() - t
    # what this process embedded, or, on Dask's workers, what the report says they did
    sync_embedded = count[0] if cluster is None else int(report.vectors.loc["text", "embedded"])
    # the rebuild: a new collection from the cleaned table, every row embedded (own cache)
    os.environ["QINB_CACHE"] = str(work / f"cache-rebuild-{kind}")
    t = time.perf_counter()
    qinb.upsert(source, "fresh", vectors=VECTORS, client=store, id_column="key", progress=False)
    rebuild_s = time.perf_counter() - t
    if cluster is not None:
        cluster.close()
    ids = set(qinb.read("c", client=store, columns=["n"], progress=False).index)
    mirrored, fresh = top10(store, "c", queries), top10(store, "fresh", queries)
    jaccard = sum(len(a & b) / len(a | b) for a, b in zip(mirrored, fresh, strict=True)) / len(queries)
    print(f"{kind:8s} rows {len(df):,} -> {len(new):,}: deleted {report.deleted} (dropped "
          f"{len(df) - len(new)}), embedded {sync_embedded} for {changed} changed rows "
          f"[{'met' if sync_embedded == changed else 'MISSED'}]; sync {sync_s:.1f} s vs rebuild "
          f"{rebuild_s:.1f} s = {rebuild_s / sync_s:.1f}x [{'met' if rebuild_s / sync_s >= 20 else 'MISSED'} >= 20x]; "
          f"ids equal the source's: {ids == set(new['key'])}; top-10 Jaccard vs rebuild over "
          f"{len(queries)} queries {jaccard:.3f} [{'met' if jaccard == 1.0 else 'MISSED'}]",
          flush=True)
    store.close()


# --- --memory: the sync's peak memory at 100k and 1M ids, each size in processes of its own

def stand_in_vectors() -> dict[str, qinb.Spec]:
    return {"text": qinb.Text("text", model=qinb.models.CLIP_TEXT, hnsw={"m": 0}),
            "bm25": qinb.Bm25("text")}


def build(rows: int, work: Path) -> dict[str, float]:
    import qinb.standin

    os.environ["QINB_CACHE"] = str(work / "cache")
    qinb.standin.register_clip(str(work / "models"))
    df = table(rows, vocabulary())
    df.to_parquet(work / "table.parquet", index=False)
    store = qinb.connect(work / "store")
    t = time.perf_counter()
    qinb.upsert(df, "c", vectors=stand_in_vectors(), client=store, id_column="key",
                progress=False)
    store.close()
    return {"seconds": time.perf_counter() - t}


def sync(rows: int, work: Path) -> dict[str, float]:
    from _child import AnonPeak

    import qinb.standin

    os.environ["QINB_CACHE"] = str(work / "cache")
    qinb.standin.register_clip(str(work / "models"))
    store = qinb.connect(work / "store")
    assert store.count("c") == rows
    opened = AnonPeak.now()  # the engine's own, with the shard open
    new, _ = cleaned(pd.read_parquet(work / "table.parquet"), vocabulary())
    frame_mb = new.memory_usage(deep=True).sum() / 2**20
    before = AnonPeak.now()
    peak = AnonPeak()
    t = time.perf_counter()
    report = qinb.upsert(new, "c", vectors=stand_in_vectors(), client=store, id_column="key",
                         delete_missing=True, progress=False)
    seconds = time.perf_counter() - t
    assert report.deleted == rows // 200 and store.count("c") == len(new)
    store.close()
    return {"seconds": seconds, "opened_mb": opened, "frame_mb": frame_mb,
            "before_mb": before, "anon_mb": peak.stop()}


def memory(sizes: list[int]) -> None:
    from _child import run as child

    got = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            built = child(Path(__file__), str(n), "--build", tmp)
            got[n] = child(Path(__file__), str(n), "--sync", tmp)
            got[n]["build_s"] = built["seconds"]
    print("ids         build s   sync s   peak RSS MB   anon with the shard open MB   anon with "
          "the frame MB   anon peak MB   qinb's own MB (peak - frame - open shard)")
    own = {n: r["anon_mb"] - r["before_mb"] for n, r in got.items()}
    for n, r in got.items():
        print(f"{n:>9,d}  {r['build_s']:8.0f}  {r['seconds']:7.1f}  {r['rss_mb']:12.0f}  "
              f"{r['opened_mb']:28.0f}  {r['before_mb']:22.0f}  {r['anon_mb']:13.0f}  "
              f"{own[n]:10.0f}")
    first, last = sizes[0], sizes[-1]
    ratio = own[last] / own[first]
    print(f"{last // first}x the ids: qinb's own memory in the sync x{ratio:.2f} "
          f"[{'met' if ratio <= 1.2 else 'MISSED'} <= 1.2x]; the STAND-IN CLIP text model made "
          "the dense vectors (meaningless; memory is what is measured)")


# --- --long: a re-run of 1,000 unchanged rows of 20k words, this tree against an older one

LONG_CHILD = """
import os, sys, time, json
import pandas as pd
import qinb
df = pd.read_parquet(sys.argv[1])
store = qinb.connect(sys.argv[2])
vectors = {"text": qinb.Text("text", chunk_size=256)}
t = time.perf_counter()
report = qinb.upsert(df, "long", vectors=vectors, client=store, id_column="key", progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "upserted": report.upserted,
                  "unchanged": report.unchanged, "embedded": report.embedded}))
"""


def long_rows(rows: int, words: list[str], flat: bool = False) -> pd.DataFrame:
    """Rows of about 20k words: a header of their own, then paragraphs of 150 words drawn from
    a pool of 300 (so that the first build embeds few distinct passages); ``flat``: the
    paragraphs run on without breaks, as in a text extracted from a PDF (the splitter then
    looks for sentence ends, which takes it far longer)."""
    rng = random.Random(11)
    pool = [" ".join(rng.choices(words, k=150)) + "." for _ in range(300)]
    gap = " " if flat else "\n\n"
    texts = [f"Document {i}. " + " ".join(rng.choices(words, k=140)) + "." + gap
             + gap.join(rng.choices(pool, k=133)) for i in range(rows)]
    return pd.DataFrame({"key": [f"d{i:05d}" for i in range(rows)], "text": texts})


def long(rows: int, against: str, flat: bool) -> None:
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        df = long_rows(rows, vocabulary(), flat)
        df.to_parquet(work / "long.parquet", index=False)
        words = df["text"].str.split().str.len()
        old = work / "old"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(old), against],
                       check=True, capture_output=True)
        env = {**os.environ, "QINB_CACHE": str(work / "cache")}
        try:
            def upsert(tree: Path, store: str) -> dict[str, float]:
                out = subprocess.run([sys.executable, "-c", LONG_CHILD, str(work / "long.parquet"),
                                      str(work / store)], check=True, capture_output=True,
                                     text=True, env={**env, "PYTHONPATH": str(tree)})
                return json.loads(out.stdout.strip().splitlines()[-1])

            first_new, first_old = upsert(repo, "new"), upsert(old, "old")
            again_new, again_old = upsert(repo, "new"), upsert(old, "old")
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)
    assert again_new["unchanged"] == again_old["unchanged"] == rows
    ratio = again_old["seconds"] / again_new["seconds"]
    print(f"{rows:,} rows of {words.mean():,.0f} words{' without paragraph breaks' if flat else ''}"
          f" (chunk_size=256): first upsert "
          f"{first_new['seconds']:.0f} s here, {first_old['seconds']:.0f} s at {against}; "
          f"re-run of the unchanged rows {again_new['seconds']:.2f} s here against "
          f"{again_old['seconds']:.1f} s at {against} = {ratio:.0f}x "
          f"[{'met' if ratio >= 50 else 'MISSED'} >= 50x]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kinds", nargs="*", default=["pandas", "parquet", "dask"])
    parser.add_argument("--memory", type=int, nargs="*")
    parser.add_argument("--long", action="store_true")
    parser.add_argument("--long-rows", type=int, default=1000)
    parser.add_argument("--flat", action="store_true", help="--long rows without paragraphs")
    parser.add_argument("--against", default="c88bb25")
    parser.add_argument("--run", type=int)
    parser.add_argument("--build")
    parser.add_argument("--sync")
    args = parser.parse_args()
    if args.run:
        from _child import report

        report(build(args.run, Path(args.build)) if args.build else sync(args.run, Path(args.sync)))
        return
    if args.memory is not None:
        memory(args.memory or [100_000, 1_000_000])
        return
    if args.long:
        long(args.long_rows, args.against, args.flat)
        return
    words = vocabulary()
    df = table(args.rows, words)
    new, changed = cleaned(df, words)
    rng = random.Random(9)
    queries = [" ".join(rng.choices(words, k=3)) for _ in range(200)]
    qinb.models.text_model(qinb.models.MINILM)  # loaded once, outside the timings
    count = counting()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            run(kind, df, new, changed, Path(tmp), queries, count)


if __name__ == "__main__":
    main()
