"""Exploring a collection rather than querying it: near-duplicate rows and clusters with names,
as DataFrames indexed by the source rows' labels (what hits and ``qinb.read`` are indexed by)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from qdrant_client import QdrantClient

from qinb.errors import MissingDependencyError, QueryError
from qinb.spec import Spec, Text
from qinb.store import PointId, Probe, Store, as_store, dense_vectors, saved_specs, split_row

__all__ = ["clusters", "duplicates"]

NEIGHBOURS = 10  # nearest points each row's query reads to find its near-copies
PAGE = 256  # rows whose near-copies one engine call looks for
CLUSTER_TERMS = 3  # words in a cluster's label


def _dense(specs: Mapping[str, Spec], using: str | None, collection: str, what: str,
           chunked_ok: bool) -> str:
    if using is not None:
        if using not in specs:
            raise QueryError(f"collection {collection!r} has no vector {using!r}; its vectors: "
                             f"{', '.join(specs)}")
        if specs[using].kind == "bm25":
            raise QueryError(f"{what} compares dense vectors, and {using!r} is BM25 (sparse); "
                             "pass using= a text or image vector")
        names = [using]
    else:
        names = [n for n, s in specs.items() if s.kind != "bm25"]
    if not names:
        raise QueryError(f"{what} compares dense vectors, and collection {collection!r} has none "
                         f"(its vectors: {', '.join(specs)})")
    name = names[0]
    spec = specs[name]
    if not chunked_ok and isinstance(spec, Text) and spec.chunked:
        raise QueryError(f"{what}: vector {name!r} is chunked (a vector per passage), so two rows "
                         "sharing one passage would look alike; pass using= a vector of whole "
                         "rows")
    return name


def _labels(store: Store, collection: str, ids: Sequence[PointId], column: str | None
            ) -> tuple[list[Any], list[Any]]:
    """The row labels of these points, and their ``column`` values (None without one)."""
    found = {r.id: r.payload for r in store.retrieve(collection, list(ids))}
    labels, texts = [], []
    for point in ids:
        label, fields = split_row(found.get(point, {}), point)
        labels.append(label)
        texts.append(fields.get(column) if column else None)
    return labels, texts


def duplicates(collection: str, *, using: str | None = None, threshold: float = 0.95,
               client: Store | QdrantClient | None = None, progress: bool = True
               ) -> pd.DataFrame:
    """Groups of rows whose vectors are near-copies: cosine similarity ``threshold`` or more.

    Each row's nearest neighbours come from the engine's index, a page of rows per call
    (batched queries, the same on Qdrant Edge and a server); rows alike through a chain of
    near-copies form one group.

    Parameters
    ----------
    collection : str
    using : str, optional
        A dense vector of whole rows. Default: the collection's first dense vector.
    threshold : float
        The least cosine similarity of two near-copies, above 0 and at most 1. At 0.95
        all-MiniLM-L6-v2 joins texts that differ by a word, punctuation or case.
    client : store or QdrantClient, optional
    progress : bool

    Returns
    -------
    DataFrame
        One row per member of a group, indexed by row label: ``group`` (0, 1, ... largest
        first), ``dup_of`` (the row kept: the group's first by row label; empty for that
        row itself), ``similarity`` (to its closest member) and the source text where there is one.
        ``df.drop(d.index[d["dup_of"].notna()])`` keeps one row of each group.
        The first row of a group is the first by row label.

    Examples
    --------
    >>> d = qinb.duplicates("docs", threshold=0.95)
    >>> clean = df.drop(d.index[d["dup_of"].notna()])
    >>> clean.qdrant.upsert("docs", vectors=..., delete_missing=True)
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 < threshold <= 1.0:
        raise QueryError(f"threshold is a cosine similarity above 0 and at most 1, not "
                         f"{threshold!r}")
    store = as_store(client)
    specs, _ = saved_specs(store, collection)
    name = _dense(specs, using, collection, "duplicates", chunked_ok=False)
    quantized = specs[name].quantization is not None
    parent: dict[PointId, PointId] = {}
    best: dict[PointId, float] = {}

    def root(p: PointId) -> PointId:
        while parent.get(p, p) != p:
            parent[p] = parent.get(parent[p], parent[p])
            p = parent[p]
        return p

    from qinb.progress import progress_bar

    with progress_bar(total=store.count(collection), desc=f"near-copies in {collection!r}",
                      unit="row", disable=not progress) as shown:
        for records, _ in store.pages(collection, page=PAGE, payload=False, vectors=[name]):
            rows = [r for r in records if isinstance(r.vectors.get(name), np.ndarray)]
            probes = [Probe(name, r.vectors[name], quantized=quantized, graph=True) for r in rows]
            answers = store.query(collection, probes, limit=NEIGHBOURS + 1) if probes else []
            for record, hits in zip(rows, answers, strict=True):
                for hit in hits:
                    if hit.id == record.id or hit.score < threshold:
                        continue
                    for p in (record.id, hit.id):
                        best[p] = max(best.get(p, -1.0), hit.score)
                    a, b = root(record.id), root(hit.id)
                    if a != b:
                        parent[a] = b
            shown.update(len(records))
    members: dict[PointId, list[PointId]] = {}
    for p in best:
        members.setdefault(root(p), []).append(p)
    ids = list(best)
    column = specs[name].column if specs[name].kind == "text" else None
    labels, texts = _labels(store, collection, ids, column)
    label_of = dict(zip(ids, labels, strict=True))
    text_of = dict(zip(ids, texts, strict=True))
    # each group in its rows' label order, the first kept; the largest groups first
    groups = sorted((sorted(m, key=lambda p: _order(label_of[p])) for m in members.values()),
                    key=lambda m: (-len(m), _order(label_of[m[0]])))
    ids = [p for m in groups for p in m]
    labels, texts = [label_of[p] for p in ids], [text_of[p] for p in ids]
    frame = pd.DataFrame({
        "group": [g for g, m in enumerate(groups) for _ in m],
        "dup_of": [None if p == m[0] else label_of[m[0]] for m in groups for p in m],
        "similarity": [best[p] for p in ids],
        **({column: texts} if column else {}),
    }, index=pd.Index(labels, tupleize_cols=False))
    frame["dup_of"] = frame["dup_of"].astype(object)
    return frame


def _order(label: Any) -> tuple[int, Any]:
    """Row labels in order: numbers first, then the rest by their text."""
    if isinstance(label, (int, float, np.integer, np.floating)) and not isinstance(label, bool):
        return (0, float(label))
    return (1, str(label))


def clusters(collection: str, *, using: str | None = None, k: int | None = None,
             client: Store | QdrantClient | None = None, seed: int = 0,
             sample: int = 200_000) -> pd.DataFrame:
    """Each row's cluster of the stored vectors (k-means, scikit-learn), named by the words
    most distinctive of the cluster's texts (c-TF-IDF: a word's count in the cluster against
    its spread over all clusters), no language model needed.

    Parameters
    ----------
    collection : str
    using : str, optional
        A dense vector; a chunked row counts as the mean of its passages. Default: the
        collection's first dense vector.
    k : int, optional
        The number of clusters. Default: about the square root of half the rows, 2 to 30.
    client : store or QdrantClient, optional
    seed : int
        k-means' random start: the same seed gives the same clusters.
    sample : int
        Above this many rows, a random sample of them is clustered.

    Returns
    -------
    DataFrame
        Indexed by row label: ``cluster`` (0 is the largest) and ``cluster_label`` (its
        words, such as "planet, moons, sun"; empty for a collection of images only).

    Examples
    --------
    >>> c = qinb.clusters("docs")
    >>> c.groupby("cluster_label").size()
    """
    try:
        from sklearn.cluster import KMeans
        from sklearn.feature_extraction.text import CountVectorizer
    except ImportError:
        raise MissingDependencyError("qinb.clusters needs scikit-learn: "
                                     "pip install 'qinb[explore]'") from None
    store = as_store(client)
    specs, _ = saved_specs(store, collection)
    name = _dense(specs, using, collection, "clusters", chunked_ok=True)
    ids, matrix = dense_vectors(store, collection, name, sample=sample, seed=seed)
    n = len(ids)
    k = k if k is not None else int(np.clip(round((n / 2) ** 0.5), 2, 30))
    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k > n:
        raise QueryError(f"k={k!r}: {collection!r} has {n} rows with vector {name!r}, so k is a "
                         f"whole number from 2 to {n}")
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    found = KMeans(n_clusters=k, n_init="auto", random_state=seed).fit_predict(matrix)
    # cluster 0 the largest; equal sizes by their first row
    sizes = np.bincount(found, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], int(np.argmax(found == c))))
    renumber = np.empty(k, dtype=int)
    renumber[order] = np.arange(k)
    found = renumber[found]
    column = next((s.column for s in specs.values() if s.kind != "image"), None)
    labels, texts = _labels(store, collection, ids, column)
    names = _names(found, k, texts, CountVectorizer) if column else [""] * k
    return pd.DataFrame({"cluster": found, "cluster_label": [names[c] for c in found]},
                        index=pd.Index(labels, tupleize_cols=False))


def _names(found: np.ndarray, k: int, texts: Sequence[Any], vectorizer: Any) -> list[str]:
    """Each cluster's most distinctive words by c-TF-IDF (BERTopic's class-based TF-IDF):
    ``tf(word, cluster) * log(1 + mean words per cluster / count of the word overall)``."""
    docs = [" ".join(str(t) for t, c in zip(texts, found, strict=True)
                     if c == cluster and isinstance(t, str)) for cluster in range(k)]
    try:
        counts = vectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b"
                            ).fit(docs)
    except ValueError:  # no words at all
        return [""] * k
    tf = counts.transform(docs).toarray().astype(np.float64)
    words = counts.get_feature_names_out()
    weight = tf / np.maximum(tf.sum(axis=1, keepdims=True), 1) * np.log(
        1 + tf.sum(axis=1).mean() / np.maximum(tf.sum(axis=0), 1))
    return [", ".join(words[i] for i in np.argsort(-row, kind="stable")[:CLUSTER_TERMS]
                      if row[i] > 0) for row in weight]
