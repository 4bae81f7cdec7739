"""The one query path: what search, more like this, evaluate, the widget and the plots all
build their queries with. Query objects (one per named vector, embedded once), probes, the
prefetch depth, fusion and filters are decided here, so that what ``qinb.evaluate`` measures is
what ``qinb.search`` returns."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from qinb import models as registry
from qinb.embed import Embedder, Item, document_item
from qinb.errors import QueryError, warn
from qinb.images import ImageCellError, is_pil, load
from qinb.objects import MAX_POINT_ID, cell_item, point_id
from qinb.payload import check_text
from qinb.selection import Selection, select
from qinb.spec import Bm25, Image, Spec, Text, missing_secrets
from qinb.store import Hit, Probe, Store, as_store, saved_specs

__all__ = ["DEPTH", "FUSIONS", "example_queries", "is_image_query", "like_id", "nearest", "probes",
           "query_vector", "resolve_queries", "to_filter", "vector_names"]

RANGE_KEYS = {"gt", "gte", "lt", "lte"}
FUSIONS = ("rrf", "dbsf")
# candidates each vector of a fused query fetches: fixed, so that the first k hits do not
# change with how many are asked for (up to DEPTH)
DEPTH = 100
PLAIN = Selection()
TIE_MARGIN = 10  # candidates past the cut a single-vector query fetches, to see a tie there whole


def to_filter(where: models.Filter | Mapping[str, Any] | None) -> models.Filter | None:
    """A ``models.Filter`` from a plain dict: values match, lists match any, dicts are ranges.

    Examples
    --------
    >>> to_filter({"category": "shoes", "price": {"lt": 50}, "size": [41, 42]})
    """
    if where is None or isinstance(where, models.Filter):
        return where
    if not isinstance(where, Mapping):
        raise QueryError(f"filter must be a dict or a models.Filter, not {type(where).__name__}")
    must: list[models.Condition] = []
    for key, value in where.items():
        if isinstance(value, Mapping):
            unknown = set(value) - RANGE_KEYS
            if unknown or not value:
                raise QueryError(
                    f"filter on {key!r}: a dict value is a range with keys gt, gte, lt, lte; "
                    f"got {sorted(map(str, value))}. Use a models.Filter for anything else"
                )
            must.append(models.FieldCondition(key=key, range=models.Range(**value)))
        elif isinstance(value, (list, tuple, set)):
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(value))))
        elif isinstance(value, (str, int, bool)):
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
        else:
            raise QueryError(
                f"filter on {key!r}: cannot match a {type(value).__name__}; use text, an int, "
                "a bool, a list of those, or a range dict such as {'lt': 50}"
            )
    return models.Filter(must=must)


def vector_names(specs: Mapping[str, Spec], using: str | Sequence[str] | None,
                  collection: str) -> list[str]:
    names = list(specs) if using is None else [using] if isinstance(using, str) else list(using)
    if not names:
        raise QueryError("using= is empty: name at least one vector")
    for name in names:
        if name not in specs:
            raise QueryError(
                f"collection {collection!r} has no vector {name!r}; its vectors: "
                f"{', '.join(specs)}"
            )
    return names


def is_image_query(query: Any) -> bool:
    """Whether a query is a picture: a Path, PIL image, bytes or models.Image (never a str)."""
    return isinstance(query, (PurePath, bytes, bytearray, models.Image)) or is_pil(query)


def _query_item(spec: Spec, name: str, query: Any, cloud: bool) -> Item:
    if is_image_query(query):
        if not isinstance(spec, Image):
            raise QueryError(
                f"an image query needs an image vector, but {name!r} is a {spec.kind} vector; "
                "pass using= an image vector")
        if isinstance(query, models.Image) and query.model.lower() != spec.model.lower():
            raise QueryError(f"the query Image uses model {query.model!r}, but vector {name!r} was "
                             f"embedded with {spec.model!r}")
        try:
            cell = load(query)
        except ImageCellError as exc:
            raise QueryError(f"the query image cannot be used: {exc}") from None
        return cell_item(spec, cell, wire=cloud)
    if isinstance(query, str):
        if not query.strip():
            raise QueryError("the query is empty: type some words")
        if reason := check_text(query):
            raise QueryError(f"the query cannot be used: {reason}")
        return document_item(spec.document(query, query=True))
    if not isinstance(query, models.Document):
        raise QueryError(
            f"a query is text, a models.Document, or an image (Path, PIL image, bytes, "
            f"models.Image), not {type(query).__name__}")
    models_ok = {m.lower() for m in (spec.model, spec.query_model) if m}
    if query.model.lower() not in models_ok:
        raise QueryError(
            f"the query Document uses model {query.model!r}, but vector {name!r} was embedded "
            f"with {spec.model!r}; use that model, or using= another vector"
        )
    return document_item(query)


def resolve_queries(specs: Mapping[str, Spec], names: Sequence[str], query: Any,
                    cloud: bool) -> dict[str, Any]:
    """Per vector name: the query vector (embedded here) or inference object (the server
    embeds it). Chunked vectors were embedded here, so their queries are too."""
    items = {n: _query_item(specs[n], n, query, cloud) for n in names}
    here = {n: i for n, i in items.items() if not cloud or (
        isinstance(specs[n], Text) and specs[n].chunked)}
    for n in names:
        if n in here:
            continue
        for key in missing_secrets(specs[n]):
            raise QueryError(
                f"vector {n!r} is embedded by the server with a {key!r} option, which qinb "
                f"never saves: pass secrets={{{key!r}: ...}}, or set the environment "
                f"variable {registry.secret_variable(key)}")
    _warn_long(specs, here)
    embedder = Embedder(progress=False)
    return {n: (embedder.resolve([here[n]], runtime=specs[n].runtime_options, query=True)[0][0]
                if n in here else i.obj) for n, i in items.items()}


def _warn_long(specs: Mapping[str, Spec], items: Mapping[str, Item]) -> None:
    """Warn when a query text is longer than a dense model's window (the model cuts it)."""
    from qinb.passages import cut

    for name, item in items.items():
        spec = specs[name]
        if spec.kind != "text" or not isinstance(item.data, str):
            continue
        model = spec.query_model or spec.model
        tokens, lengths = cut(model, [item.data], spec.runtime_options)
        for n in lengths:
            warn(f"the query is {n} tokens long, and {model} reads only its first "
                 f"{tokens} for vector {name!r}; shorten it to search with all of it")


def query_vector(collection: str, query: Any, *, using: str,
                 client: Store | QdrantClient | None = None) -> Any:
    """The vector a query becomes for the vector ``using``, embedded here (for plots)."""
    specs, _ = saved_specs(as_store(client), collection)
    names = vector_names(specs, using, collection)
    return resolve_queries(specs, names, query, cloud=False)[using]


def like_id(like: Hashable) -> int | str:
    """The point id of a row label: an id column's value, or an index label where the
    collection has no id column (both are what hits and ``qinb.read`` are indexed by)."""
    try:
        found = point_id(like)
    except TypeError:
        raise QueryError(f"like={like!r} is no row label: labels are ids, texts, numbers or "
                         "tuples of those") from None
    if isinstance(found, int) and found >= MAX_POINT_ID:
        raise QueryError(f"like={like!r} is no point id: ids are below 2**64, or UUIDs")
    return found


def _examples(value: Any, name: str) -> list[Hashable]:
    """The row labels of like= or unlike=: a list (or set) of labels, or one label (a tuple is
    one label: MultiIndex rows are labelled by tuples)."""
    if value is None:
        return []
    labels = list(value) if isinstance(value, (list, set, frozenset, range)) else [value]
    if not labels:
        raise QueryError(f"{name}= is empty: name at least one row")
    return labels


def example_queries(store: Store, collection: str, names: Sequence[str], like: Any,
                    unlike: Any, df: Any = None) -> tuple[dict[str, Any], list[int | str]]:
    """Per vector name, the query of "more like these, less like those", made of the stored
    vectors of the example rows as Qdrant's recommend does with its average-vector strategy:
    the mean of the liked rows, moved away from the mean of the disliked ones (``2 * like -
    unlike``; only the mean where nothing is disliked, so one liked row is its own vector). A
    chunked vector's query is the liked rows' passages, or their mean moved away as above;
    BM25's keeps the words left with weight. Also the ids of every example, which are no hit."""
    liked, disliked = _examples(like, "like"), _examples(unlike, "unlike")
    if not liked:
        raise QueryError("unlike= needs like= too: the rows to look for, then those to avoid")
    targets = {label: like_id(label) for label in liked + disliked}
    found = {r.id: r for r in store.retrieve(collection, list(dict.fromkeys(targets.values())),
                                             payload=False, vectors=list(names))}
    for label, target in targets.items():
        if target in found:
            continue
        which = "like" if label in liked else "unlike"
        if target == label:
            raise QueryError(f"{which}={label!r}: no point with id {label!r} in {collection!r}")
        what = ("the DataFrame's row labelled {0!r} was not stored in {1!r}"
                if df is not None and label in df.index else
                "no row labelled {0!r} is in {1!r}").format(label, collection)
        raise QueryError(
            f"{which}={label!r}: {what} (the point id it maps to, {target!r}, is absent); pass "
            "the label of a row that was upserted"
            + ("" if df is not None else ", and df= to look labels up in your frame"))
    queries = {}
    for name in names:
        pos = [found[targets[x]].vectors.get(name) for x in liked]
        neg = [found[targets[x]].vectors.get(name) for x in disliked]
        pos, neg = [v for v in pos if v is not None], [v for v in neg if v is not None]
        if pos:
            queries[name] = _moved(pos, neg)
    if not queries:
        raise QueryError(f"like={like!r}: the rows have none of the vectors {list(names)}")
    return queries, list(dict.fromkeys(targets.values()))


def _moved(pos: Sequence[Any], neg: Sequence[Any]) -> Any:
    """The mean of ``pos``, moved away from the mean of ``neg`` (see example_queries)."""
    if isinstance(pos[0], models.SparseVector):
        weights: dict[int, float] = {}
        for vectors, sign in ((pos, 2.0 if neg else 1.0), (neg, -1.0)):
            for v in vectors:
                for i, w in zip(v.indices, v.values, strict=True):
                    weights[i] = weights.get(i, 0.0) + sign * w / len(vectors)
        kept = sorted((i, w) for i, w in weights.items() if w > 0)
        return models.SparseVector(indices=[i for i, _ in kept], values=[w for _, w in kept])
    arrays = [np.asarray(v, dtype=np.float32) for v in pos]
    if arrays[0].ndim == 2 and not neg:
        return np.vstack(arrays)  # MaxSim of every liked passage
    def mean(vectors: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(np.mean([v.mean(axis=0) if v.ndim == 2 else v for v in vectors], axis=0))

    vector = mean(arrays) if not neg else 2 * mean(arrays) - mean(
        [np.asarray(v, dtype=np.float32) for v in neg])
    return vector[np.newaxis, :] if arrays[0].ndim == 2 else vector


def probes(specs: Mapping[str, Spec], vectors: Mapping[str, Any]) -> list[Probe]:
    """One probe per named vector. A plain query vector against a chunked vector becomes a
    one-row matrix: MaxSim of one row is the score of the row's best passage (qdrant-client's
    local mode takes nothing else, Qdrant Edge and a server take it too). A chunked vector is
    searched exactly: an HNSW graph on row-to-row MaxSim finds a third of the true top ten
    (bench/multivector_hnsw.py), and a collection may have one (a vector added later, or a
    server collection made elsewhere)."""
    out = []
    for name, vector in vectors.items():
        spec = specs[name]
        chunked = isinstance(spec, Text) and spec.chunked
        if chunked and isinstance(vector, np.ndarray) and vector.ndim == 1:
            vector = vector[np.newaxis, :]
        out.append(Probe(name, vector, exact=chunked, quantized=spec.quantization is not None,
                         graph=not chunked and not isinstance(spec, Bm25)))
    return out


def _order(hit: Hit) -> tuple[float, str]:
    """Best score first; exact ties by point id, the same way every time."""
    return -hit.score, str(hit.id)


def _ranked(store: Store, collection: str, probes: Sequence[Probe], n: int,
            filter: models.Filter | None) -> list[list[Hit]]:
    """Each probe's first ``n`` hits, ordered by score and then point id.

    An engine cuts a tie at ``n`` in its own physical order, which the order the points were
    written in, a copy or a reopened store changes. So each list is fetched past the cut until
    the whole tie there is seen, and only then ordered and cut."""
    fetch = n + TIE_MARGIN
    lists: list[list[Hit]] = [[] for _ in probes]
    todo = list(range(len(probes)))
    while todo:
        answers = store.query(collection, [probes[i] for i in todo], limit=fetch, filter=filter)
        more = []
        for i, hits in zip(todo, answers, strict=True):
            lists[i] = pool = sorted(hits, key=_order)
            # the tie at the cut may go on past what was fetched: fetch more until it ends
            if len(pool) == fetch and len(pool) > n and pool[n - 1].score == pool[-1].score:
                more.append(i)
        todo, fetch = more, fetch * 4
    return [pool[:n] for pool in lists]


def _fuse(lists: Sequence[Sequence[Hit]], fusion: str) -> list[Hit]:
    """Several ranked lists as one, by qdrant-client's RRF (k=2, the Qdrant server's constant)
    or DBSF, the same formulas the engines use; equal fused scores by point id."""
    from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

    responses = [[models.ScoredPoint(id=h.id, version=0, score=h.score) for h in hits]
                 for hits in lists]
    total = sum(len(hits) for hits in lists)
    fused = (distribution_based_score_fusion(responses, limit=total) if fusion == "dbsf"
             else reciprocal_rank_fusion(responses, limit=total))
    ids = {str(h.id): h.id for hits in lists for h in hits}  # the engine's ids, as they were
    return sorted((Hit(ids[str(p.id)], float(p.score), {}) for p in fused), key=_order)


def nearest(store: Store, collection: str, probes: Sequence[Probe], *, limit: int,
            filter: models.Filter | None = None, fusion: str = "rrf",
            chosen: Selection = PLAIN) -> list[Hit]:
    """The hits of one query: one probe alone, or several fused, each fetching ``DEPTH``
    candidates (``limit`` where that is more).

    Scores tie often (BM25 on templated texts; RRF adds ranks: 3rd and 5th scores as 5th and
    3rd). The hits must be a function of the stored points, never of the order they were
    written in, so every list is ordered by score and then point id before it is cut or its
    ranks are given, and fusion is computed here from those lists rather than by the engine
    (whose prefetch keeps its physical order inside a tie). The payloads of the hits kept are
    read after. Diverse and grouped hits (``chosen``) are picked from those candidates
    (:mod:`qinb.selection`).
    """
    def candidates(n: int) -> list[Hit]:
        if len(probes) == 1:
            return _ranked(store, collection, probes, n, filter)[0]
        return _fuse(_ranked(store, collection, probes, max(DEPTH, n), filter), fusion)[:n]

    hits = (candidates(limit) if chosen.plain else
            select(store, collection, candidates, chosen, limit=limit, depth=DEPTH,
                   probes=probes))
    payloads = {r.id: r.payload for r in store.retrieve(collection, [h.id for h in hits])}
    return [Hit(h.id, h.score, payloads.get(h.id, {}), h.group) for h in hits]
