"""Exploring a table, measured on real MiniLM vectors of the shipped Python documentation, on
Qdrant Edge, side by side in one run:

- duplicates: the paragraphs of the docs with 5% near-copies injected (a word changed,
  punctuation, case) and 1% exact copies; precision and recall of qinb.duplicates at its
  default threshold (targets >= 0.95 each) and its time against one query per row;
- clusters: the 79 topics clustered into their 4 sections: purity and NMI, the labels printed;
- diversity: distinct sections in the top 10 of the 34 shipped questions with and without
  diverse=0.5, and what it costs in nDCG@10 (qinb.evaluate).

    .venv/bin/python bench/explore.py
"""

from __future__ import annotations

import random
import re
import tempfile
import time

import numpy as np
import pandas as pd

import qinb
from qinb.store import Probe

VECTORS = {"text": qinb.Text("text")}


def paragraphs() -> pd.DataFrame:
    """The docs as passages of whole sentences, 30 words or more each (the texts have no
    paragraph breaks), exact repeats dropped."""
    topics = qinb.datasets.python_topics()
    rows = []
    for text, section in zip(topics["text"], topics["section"], strict=True):
        passage: list[str] = []
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            passage.append(sentence)
            if len(" ".join(passage).split()) >= 30:
                rows.append({"text": " ".join(passage), "section": section})
                passage = []
    df = pd.DataFrame(rows).drop_duplicates("text")
    return df.set_axis([f"p{i:05d}" for i in range(len(df))])


def near_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    edit = rng.choice(["word", "punctuation", "case"])
    if edit == "word":
        i = rng.randrange(len(words))
        words[i] = rng.choice(["the", "a", "this", "that", "its"])
        return " ".join(words)
    if edit == "punctuation":
        return text.rstrip(".") + "!" if text.endswith(".") else text + "."
    return text.upper()


def with_copies(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame and near/exact copies of 6% of its rows; copy label -> original label."""
    rng = random.Random(5)
    picked = rng.sample(list(df.index), len(df) * 6 // 100)
    near, exact = picked[: len(df) * 5 // 100], picked[len(df) * 5 // 100:]
    copies = {f"c{i:05d}": label for i, label in enumerate(picked)}
    texts = [near_copy(df.at[o, "text"], rng) if o in near else df.at[o, "text"]
             for o in copies.values()]
    added = pd.DataFrame({"text": texts, "section": df.loc[list(copies.values()), "section"].values},
                         index=list(copies))
    assert len(exact) and len(near)
    return pd.concat([df, added]), copies


def one_query_per_row(store: qinb.Store, collection: str, threshold: float) -> int:
    pairs = 0
    for records, _ in store.pages(collection, page=256, payload=False, vectors=["text"]):
        for r in records:
            hits = store.query(collection, [Probe("text", r.vectors["text"], graph=True)], limit=11)[0]
            pairs += sum(h.id != r.id and h.score >= threshold for h in hits)
    return pairs


def duplicates(store: qinb.Store) -> None:
    base = paragraphs()
    df, copies = with_copies(base)
    qinb.upsert(df, "dups", vectors=VECTORS, client=store, progress=False)
    t = time.perf_counter()
    found = qinb.duplicates("dups", client=store, progress=False)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    one_query_per_row(store, "dups", 0.95)
    by_row = time.perf_counter() - t
    group_of = found["group"].to_dict()
    truth = set(copies) | set(copies.values())
    flagged = set(found.index)
    precision = len(flagged & truth) / max(len(flagged), 1)
    recall = sum(c in group_of and group_of.get(c) == group_of.get(o) for c, o in copies.items()) / len(copies)
    print(f"duplicates: {len(base)} paragraphs + {len(copies)} copies ({len(base) * 5 // 100} near, "
          f"{len(copies) - len(base) * 5 // 100} exact), threshold 0.95: {len(flagged)} rows in "
          f"{found['group'].nunique()} groups; precision {precision:.3f} "
          f"[{'met' if precision >= 0.95 else 'MISSED'} >= 0.95], recall {recall:.3f} "
          f"[{'met' if recall >= 0.95 else 'MISSED'} >= 0.95]; {ours:.2f} s against {by_row:.2f} s "
          f"for one query per row = {by_row / ours:.1f}x")
    missed = [(c, o) for c, o in copies.items() if group_of.get(c) is None or group_of.get(c) != group_of.get(o)]
    for c, o in missed[:3]:
        print(f"  missed: {df.at[c, 'text'][:70]!r} <- {df.at[o, 'text'][:70]!r}")


def clusters(store: qinb.Store) -> None:
    from sklearn.metrics import normalized_mutual_info_score

    topics = qinb.datasets.python_topics()
    qinb.upsert(topics, "topics", vectors={"text": qinb.Text("text", chunk_size=256)},
                client=store, progress=False)
    found = qinb.clusters("topics", k=4, client=store)
    sections = topics.loc[found.index, "section"]
    table = pd.crosstab(found["cluster"], sections)
    purity = table.max(axis=1).sum() / len(found)
    nmi = normalized_mutual_info_score(sections, found["cluster"])
    print(f"clusters: 79 topics, k=4, against their 4 sections: purity {purity:.2f}, NMI {nmi:.2f}")
    for cluster, rows in found.groupby("cluster"):
        print(f"  {cluster}: {rows['cluster_label'].iloc[0]!r} ({len(rows)} topics; most from "
              f"{table.loc[cluster].idxmax()!r})")


def diversity(store: qinb.Store) -> None:
    topics = qinb.datasets.python_topics()
    queries, qrels = qinb.datasets.python_questions()
    qinb.upsert(topics, "docs", vectors={"text": qinb.Text("text", chunk_size=256),
                                         "bm25": qinb.Bm25("text")},
                client=store, progress=False)
    spread = {}
    for d in (None, 0.2, 0.5):
        spread[d] = np.mean([qinb.search("docs", q, using="text", limit=10, diverse=d,
                                         client=store)["section"].nunique() for q in queries])
    plain = qinb.evaluate("docs", queries, qrels, using=["text"], client=store, progress=False)
    ndcg = {d: qinb.evaluate("docs", queries, qrels, using=["text"], client=store, progress=False,
                             diverse=d)["ndcg@10"].iloc[0] for d in (0.2, 0.5)}
    for d in (0.2, 0.5):
        print(f"diverse={d} on {len(queries)} questions (dense text): distinct sections in the top "
              f"10 {spread[None]:.2f} -> {spread[d]:.2f}; nDCG@10 {plain['ndcg@10'].iloc[0]:.3f} -> "
              f"{ndcg[d]:.3f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = qinb.connect(tmp)
        duplicates(store)
        clusters(store)
        diversity(store)
        store.close()


if __name__ == "__main__":
    main()
