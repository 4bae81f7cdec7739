"""A table cleaned and synced: ``upsert(..., delete_missing=True)`` after 1% of the rows changed
and 0.5% were dropped, against rebuilding the collection from the cleaned table, side by side in
one run, on real MiniLM + BM25, from a pandas frame and from a Parquet file.

Prints, per source: the texts embedded by the sync against the rows changed (target: equal),
the sync's wall time against the rebuild's (target: >= 20x), whether the ids equal the source's
exactly, and the Jaccard of the top-10 hybrid hits of 200 queries against the rebuild (target
1.0). The rebuild embeds every row: it runs with an empty embedding cache of its own.

    .venv/bin/python bench/sync.py [--rows 20000]
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
    os.environ["QINB_CACHE"] = str(work / f"cache-{kind}")
    qinb.upsert(df, "c", vectors=VECTORS, client=store, id_column="key", progress=False)
    source: object = new
    if kind == "parquet":
        new.to_parquet(work / "cleaned.parquet", index=False)
        source = work / "cleaned.parquet"
    count[0] = 0
    t = time.perf_counter()
    report = qinb.upsert(source, "c", vectors=VECTORS, client=store, id_column="key",
                         delete_missing=True, progress=False)
    sync_s, sync_embedded = time.perf_counter() - t, count[0]
    # the rebuild: a new collection from the cleaned table, every row embedded (own cache)
    os.environ["QINB_CACHE"] = str(work / f"cache-rebuild-{kind}")
    t = time.perf_counter()
    qinb.upsert(source, "fresh", vectors=VECTORS, client=store, id_column="key", progress=False)
    rebuild_s = time.perf_counter() - t
    ids = set(qinb.read("c", client=store, columns=["n"], progress=False).index)
    mirrored, fresh = top10(store, "c", queries), top10(store, "fresh", queries)
    jaccard = sum(len(a & b) / len(a | b) for a, b in zip(mirrored, fresh, strict=True)) / len(queries)
    print(f"{kind:8s} rows {len(df):,} -> {len(new):,}: deleted {report.deleted} (dropped "
          f"{len(df) - len(new)}), embedded {sync_embedded} for {changed} changed rows "
          f"[{'met' if sync_embedded == changed else 'MISSED'}]; sync {sync_s:.1f} s vs rebuild "
          f"{rebuild_s:.1f} s = {rebuild_s / sync_s:.1f}x [{'met' if rebuild_s / sync_s >= 20 else 'MISSED'} >= 20x]; "
          f"ids equal the source's: {ids == set(new['key'])}; top-10 Jaccard vs rebuild over "
          f"{len(queries)} queries {jaccard:.3f} [{'met' if jaccard == 1.0 else 'MISSED'}]")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    words = vocabulary()
    df = table(args.rows, words)
    new, changed = cleaned(df, words)
    rng = random.Random(9)
    queries = [" ".join(rng.choices(words, k=3)) for _ in range(200)]
    qinb.models.text_model(qinb.models.MINILM)  # loaded once, outside the timings
    count = counting()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("pandas", "parquet"):
            run(kind, df, new, changed, Path(tmp), queries, count)


if __name__ == "__main__":
    main()
