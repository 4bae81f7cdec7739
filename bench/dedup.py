"""Upserting a frame with repeated texts: qinb (dedup) against embedding every row, side by side.

Prints the ratio of wall times measured in one run. The baseline is what a user writes by hand:
fastembed embeds every row's text, then qdrant-client upserts the vectors.
"""

from __future__ import annotations

import time

import pandas as pd
from qdrant_client import QdrantClient, models

import qinb

ROWS, DISTINCT, ROUNDS = 2000, 200, 3


def frame() -> pd.DataFrame:
    topics = qinb.datasets.python_topics()["text"].str.slice(0, 400).tolist()
    texts = [f"{topics[i % len(topics)]} ({i})" for i in range(DISTINCT)]
    return pd.DataFrame({"text": [texts[i % DISTINCT] for i in range(ROWS)]})


def by_hand(df: pd.DataFrame) -> None:
    model = qinb.models.text_model(qinb.models.MINILM)  # the same loaded model, no load time
    client = QdrantClient(":memory:")
    client.create_collection("c", {"text": models.VectorParams(size=384, distance=models.Distance.COSINE)})
    vectors = [v.tolist() for v in model.embed(df["text"].tolist())]
    client.upsert("c", [models.PointStruct(id=i, vector={"text": v}) for i, v in enumerate(vectors)])


def with_qinb(df: pd.DataFrame) -> None:
    df.qdrant.upsert("c", vectors={"text": qinb.Text("text")}, client=QdrantClient(":memory:"),
                     progress=False)


def main() -> None:
    df = frame()
    qinb.models.text_model(qinb.models.MINILM)  # load once, outside the timings
    times: dict[str, list[float]] = {"by hand": [], "qinb": []}
    for _ in range(ROUNDS):  # interleaved, so that machine noise hits both alike
        for name, run in (("by hand", by_hand), ("qinb", with_qinb)):
            start = time.perf_counter()
            run(df)
            times[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(f"{ROWS} rows over {DISTINCT} distinct texts, best of {ROUNDS}:")
    for name, t in best.items():
        print(f"  {name:8s} {t:6.2f} s")
    print(f"qinb is {best['by hand'] / best['qinb']:.1f}x faster than embedding every row")


if __name__ == "__main__":
    main()
