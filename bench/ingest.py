"""Ingest, side by side in one run: qinb against its limit (raw fastembed on the unique texts)
and its peer (qdrant-client's ``upload_points`` with ``models.Document``), on short texts with
30% duplicates and on long texts; a warm re-run and a payload-only change; peak RSS.

Each variant runs in its own process (model loaded before the clock starts) so that its peak
RSS is its own. Dense text is the real all-MiniLM-L6-v2 from ``~/.qinb/models`` (``make models``).

    .venv/bin/python bench/ingest.py            # 8-12 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

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
    m = model()
    store = qinb.connect(tempfile.mkdtemp())  # a fresh Edge store and embedding cache
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
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
        df.qdrant.upsert("c", vectors={**dense, "bm25": qinb.Bm25("text")}, client=store, progress=False)
    elif name in ("short-qinb-warm", "short-qinb-payload"):
        df.qdrant.upsert("c", vectors=dense, client=store, progress=False)
        changed = df.assign(n=df["n"] + 1) if name.endswith("payload") else df
        start = time.perf_counter()
        r = changed.qdrant.upsert("c", vectors=dense, client=store, progress=False)
        assert r.embedded == 0, r
    seconds = time.perf_counter() - start
    store.close()
    return {"seconds": seconds}


def main() -> None:
    me = Path(__file__)
    short = ["short-fastembed-unique", "short-qinb", "short-qdrant-client", "short-qinb-hybrid",
             "short-qinb-warm", "short-qinb-payload"]
    rounds = [{n: run(me, n) for n in short} for _ in range(3)]  # interleaved: noise hits all alike
    got = {n: min((r[n] for r in rounds), key=lambda r: r["seconds"]) for n in short}
    got.update({n: run(me, n) for n in ["long-fastembed-64", "long-qinb"]})
    print("short texts: best of 3 interleaved rounds; long texts: one run each")
    for name, r in got.items():
        print(f"  {name:24s} {r['seconds']:7.2f} s   peak RSS {r['rss_mb']:6.0f} MB")
    s = {n: r["seconds"] for n, r in got.items()}
    print(f"\nshort texts, {SHORT_ROWS} rows, 30% duplicates, dense:")
    print(f"  qinb cold vs raw fastembed on the unique texts: {s['short-fastembed-unique'] / s['short-qinb']:.2f}x"
          "  (target >= 0.9x)")
    print(f"  qinb cold vs qdrant-client Documents path:      {s['short-qdrant-client'] / s['short-qinb']:.2f}x"
          "  (target >= 1.4x)")
    print(f"  warm re-run vs cold:                            {s['short-qinb'] / s['short-qinb-warm']:.0f}x faster")
    print(f"  payload-only change of every row vs cold:       {s['short-qinb'] / s['short-qinb-payload']:.0f}x faster"
          "  (target >= 20x)")
    print(f"long texts, {LONG_ROWS} passages of 150-500 words:")
    print(f"  qinb vs raw fastembed (64 per batch):           {s['long-fastembed-64'] / s['long-qinb']:.2f}x"
          "  (target >= 1.25x)")
    print(f"  peak RSS: qinb {got['long-qinb']['rss_mb']:.0f} MB, raw fastembed "
          f"{got['long-fastembed-64']['rss_mb']:.0f} MB  (target <= 2500 MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    args = parser.parse_args()
    if args.run:
        report(variant(args.run))
    else:
        main()
