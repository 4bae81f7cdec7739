"""Ingest, side by side in one run: qinb against its limit (raw fastembed on the unique texts)
and its peer (qdrant-client's ``upload_points`` with ``models.Document``), on short texts with
30% duplicates and on long texts; a warm re-run, a payload-only change, and the same texts
(dense + BM25) into a second collection from a fresh process whose cache another process
filled; peak RSS. The short-text variants run in interleaved rounds, and every round's ratios
are printed (a target holds when it holds in each).

Each variant runs in its own process (model loaded before the clock starts, except for the
second collection, which should not need it) so that its peak RSS is its own. Dense text is
the real all-MiniLM-L6-v2 from ``~/.qinb/models`` (``make models``).

    .venv/bin/python bench/ingest.py [--rounds 5]      # 10-15 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import report, run

import qinb

SHORT_ROWS, LONG_ROWS = 1500, 512


def short_texts() -> list[str]:
    """1,500 sentences from the Python reference, 30% of them repeats of others."""
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    unique = int(SHORT_ROWS * 0.7)
    texts = [" ".join(words[i * 13:i * 13 + 12]) + f" ({i})" for i in range(unique)]
    return texts + [texts[(i * 7) % unique] for i in range(SHORT_ROWS - unique)]


def long_texts() -> list[str]:
    """512 passages of 150-500 words (mostly over the model's 256-token window), as abstracts are."""
    words = " ".join(qinb.datasets.python_topics()["text"]).split()
    out, at = [], 0
    for i in range(LONG_ROWS):
        n = 150 + (i * 97) % 350
        out.append(" ".join(words[at:at + n]))
        at = (at + n) % (len(words) - 600)
    return out


def model():  # type: ignore[no-untyped-def]
    m = qinb.models.text_model(qinb.models.MINILM)
    list(m.embed(["warm up"]))
    return m


def variant(name: str) -> dict[str, float]:
    texts = long_texts() if name.startswith("long") else short_texts()
    df = pd.DataFrame({"text": texts, "n": range(len(texts))})
    dense = {"text": qinb.Text("text")}
    hybrid = {**dense, "bm25": qinb.Bm25("text")}
    store = qinb.connect(tempfile.mkdtemp())  # a fresh Edge store and embedding cache
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    result: dict[str, float] = {}
    if name == "short-qinb-second":  # another process fills the cache with the same texts
        subprocess.run([sys.executable, __file__, "--fill"], check=True, env=os.environ)
    else:
        m = model()
    start = time.perf_counter()
    if name == "short-fastembed-unique":
        list(m.embed(list(dict.fromkeys(texts))))
    elif name == "long-fastembed-64":
        list(m.embed(texts, batch_size=64))
    elif name == "short-qdrant-client":
        from qdrant_client import QdrantClient, models

        client = QdrantClient(":memory:")
        client.create_collection("c", {"text": models.VectorParams(size=384, distance=models.Distance.COSINE)})
        path = str(qinb.models.local_path(qinb.models.MINILM))
        client.upload_points("c", [models.PointStruct(id=i, payload={"text": t}, vector={
            "text": models.Document(text=t, model=qinb.models.MINILM, options={"specific_model_path": path})})
            for i, t in enumerate(texts)])
    elif name in ("short-qinb", "long-qinb"):
        df.qdrant.upsert("c", vectors=dense, client=store, progress=False)
    elif name == "short-qinb-hybrid":
        df.qdrant.upsert("c", vectors=hybrid, client=store, progress=False)
    elif name == "short-qinb-second":
        r = df.qdrant.upsert("c", vectors=hybrid, client=store, progress=False)
        result = {f"{k}_{v}": float(r.vectors.loc[v, k]) for v in hybrid
                  for k in ("embedded", "cached")}
    elif name in ("short-qinb-warm", "short-qinb-payload"):
        df.qdrant.upsert("c", vectors=dense, client=store, progress=False)
        changed = df.assign(n=df["n"] + 1) if name.endswith("payload") else df
        start = time.perf_counter()
        r = changed.qdrant.upsert("c", vectors=dense, client=store, progress=False)
        assert r.embedded == 0, r
    seconds = time.perf_counter() - start
    store.close()
    return {"seconds": seconds, **result}


def fill() -> None:
    """The cache of QINB_CACHE filled by an upsert of the short texts into a store of its own."""
    df = pd.DataFrame({"text": short_texts(), "n": range(SHORT_ROWS)})
    df.qdrant.upsert("c", vectors={"text": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                     client=qinb.connect(tempfile.mkdtemp()), progress=False)


def bm25_against_the_cache() -> tuple[float, float]:
    """Seconds to compute BM25 for the short texts, and to read as many vectors back from the
    persistent cache: why BM25 is computed again rather than cached."""
    from qinb import cache
    from qinb.embed import digest

    texts = list(dict.fromkeys(short_texts()))  # the distinct ones, as an upsert computes
    bm25 = qinb.models.bm25_model(())
    bm25.embed_document("warm up")
    start = time.perf_counter()
    for text in texts:
        bm25.embed_document(text)
    compute = time.perf_counter() - start
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    keys = [digest(("bm25", t, "")) for t in texts]
    cache.put_many({k: np.arange(24, dtype=np.float32) for k in keys})  # 12 indices, 12 weights
    cache.close()
    start = time.perf_counter()
    assert len(cache.get_many(keys)) == len(keys)
    return compute, time.perf_counter() - start


def main(rounds: int) -> None:
    me = Path(__file__)
    short = ["short-fastembed-unique", "short-qinb", "short-qdrant-client", "short-qinb-hybrid",
             "short-qinb-warm", "short-qinb-payload", "short-qinb-second"]
    every = [{n: run(me, n) for n in short} for _ in range(rounds)]  # interleaved: noise hits all
    got = {n: min((r[n] for r in every), key=lambda r: r["seconds"]) for n in short}
    got.update({n: run(me, n) for n in ["long-fastembed-64", "long-qinb"]})
    print(f"short texts: best of {rounds} interleaved rounds; long texts: one run each")
    for name, r in got.items():
        print(f"  {name:24s} {r['seconds']:7.2f} s   peak RSS {r['rss_mb']:6.0f} MB")

    def ratios(label: str, over: str, under: str, target: float) -> None:
        each = [r[over]["seconds"] / r[under]["seconds"] for r in every]
        held = sum(x >= target for x in each)
        print(f"  {label:<50} {' '.join(f'{x:5.2f}x' for x in each)}  (target >= {target}x: "
              f"{held} of {rounds} rounds)")

    print(f"\nshort texts, {SHORT_ROWS} rows, 30% duplicates, dense; each round's ratio:")
    ratios("qinb cold vs raw fastembed on the unique texts", "short-fastembed-unique",
           "short-qinb", 0.95)
    ratios("qinb cold vs qdrant-client Documents path", "short-qdrant-client", "short-qinb", 1.4)
    ratios("warm re-run vs cold", "short-qinb", "short-qinb-warm", 20)
    ratios("payload-only change of every row vs cold", "short-qinb", "short-qinb-payload", 20)
    ratios("dense + BM25 into a 2nd collection, warm cache, fresh process, vs cold",
           "short-qinb-hybrid", "short-qinb-second", 20)
    second = got["short-qinb-second"]
    compute, read = bm25_against_the_cache()
    print(f"  the 2nd collection: dense {second['embedded_text']:.0f} embedded, "
          f"{second['cached_text']:.0f} from the cache; BM25 {second['embedded_bm25']:.0f} "
          f"computed again: {compute * 1000:.0f} ms for them, against "
          f"{read * 1000:.0f} ms to read as many vectors from the cache")
    print(f"long texts, {LONG_ROWS} passages of 150-500 words:")
    print(f"  qinb vs raw fastembed (64 per batch):           {got['long-fastembed-64']['seconds'] / got['long-qinb']['seconds']:.2f}x"
          "  (target >= 1.25x)")
    print(f"  peak RSS: qinb {got['long-qinb']['rss_mb']:.0f} MB, raw fastembed "
          f"{got['long-fastembed-64']['rss_mb']:.0f} MB  (target <= 2500 MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    parser.add_argument("--fill", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.fill:
        fill()
    elif args.run:
        report(variant(args.run))
    else:
        main(args.rounds)
