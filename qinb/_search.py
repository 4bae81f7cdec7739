"""Search: hits of the one query path (:mod:`qinb.query`) as a DataFrame, with each named
vector's own score and, for chunked vectors, the passage that matched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.errors import QueryError, warn
from qinb.query import (
    FUSIONS,
    example_queries,
    is_image_query,
    nearest,
    probes,
    resolve_queries,
    to_filter,
    vector_names,
)
from qinb.selection import selection
from qinb.spec import Bm25, Image, Spec, Text
from qinb.store import (
    PASSAGES_KEY,
    Hit,
    PointId,
    Probe,
    Store,
    as_store,
    sample_payloads,
    saved_specs,
    split_row,
)

__all__ = ["passage_scores", "search"]

HIT_COLUMNS = ("score", "rank", "id")
# below this best dense score, with no word of the query in any row, hits are called weak:
# all-MiniLM-L6-v2 gave the 34 bundled questions 0.31-0.47 (whole texts, passages), twelve
# nonsense queries 0.06-0.34 (tests/test_widgets.py checks a few of each)
WEAK_BELOW = {"sentence-transformers/all-minilm-l6-v2": 0.30}
SCORE_PREFIX = "score_"  # each vector's own score of a hit: score_<vector>
PASSAGE_COLUMNS = ("passage", "passage_score")  # the best passage of a chunked vector


def search(collection: str, query: Any = None, *,
           using: str | Sequence[str] | None = None, limit: int = 10,
           filter: models.Filter | Mapping[str, Any] | None = None,
           fusion: Literal["rrf", "dbsf"] = "rrf", like: Any = None, unlike: Any = None,
           diverse: float | None = None, group_by: str | None = None, group_size: int = 1,
           client: Store | QdrantClient | None = None, df: pd.DataFrame | None = None,
           secrets: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Search a collection written by qinb; hits come back as a DataFrame.

    Parameters
    ----------
    collection : str
    query : str, models.Document, or an image
        Text (embedded with each vector's query model, so text finds images too), an inference
        object, or an image (``pathlib.Path``, PIL image, bytes, ``models.Image``) for image
        vectors. A plain ``str`` is always text.
    using : str or list of str, optional
        Named vector(s); several mean hybrid search fused by ``fusion``. Default: all.
    limit : int
    filter : dict or models.Filter, optional
        ``{"category": "shoes", "price": {"lt": 50}}``: values match, lists match any,
        dicts are ranges.
    fusion : {"rrf", "dbsf"}
    like : row label or point id, or a list of them, optional
        "More like these": instead of ``query``, the mean of these rows' stored vectors (one
        row: its own vectors). The rows themselves are no hits. A tuple is one label.
    unlike : row label(s), optional
        With ``like=``: rows to move away from, as Qdrant's recommend does with its
        average-vector strategy (``2 * mean(like) - mean(unlike)``).
    diverse : float, optional
        0.0 (the plain ranking) to 1.0: pick the hits among the first candidates by maximal
        marginal relevance (Qdrant's MMR formula), each next hit relevant and unlike the hits
        already picked, by the cosine of their dense vectors. ``0.5`` is a good start.
    group_by : str, optional
        A payload field: the best ``group_size`` hits of each of the first ``limit`` groups
        (one hit per author, per document), best group first; a ``group`` column says which.
        Points without the field are left out; a list value puts a point in each of its
        values' groups (shown once).
    group_size : int
    client : store or QdrantClient, optional
        Default: the embedded store of :func:`qinb.connect`.
    df : DataFrame, optional
        The source frame: ``like=`` may then be one of its row labels.
    secrets : dict, optional
        Credential options (``{"jina-api-key": ...}``) for vectors a server embeds with an
        outside provider. qinb never saves them; without this argument each is read from its
        environment variable (``QINB_JINA_API_KEY``).

    Returns
    -------
    DataFrame
        ``score``, ``rank``, ``id`` and the payload; indexed by the source rows' labels.

    Examples
    --------
    >>> qinb.search("docs", "planets of the solar system", using=["text", "bm25"], limit=5)
    >>> qinb.search("docs", "planets", diverse=0.5)  # hits unlike each other
    >>> qinb.search("docs", "planets", group_by="author")  # the best hit of each author
    >>> qinb.search("docs", like=["doc03", "doc07"], unlike=["doc11"])
    """
    store = as_store(client)
    specs, _ = saved_specs(store, collection, secrets)
    if using is None and query is not None and is_image_query(query):
        using = [n for n, s in specs.items() if isinstance(s, Image)] or list(specs)
    names = vector_names(specs, using, collection)
    if (query is None) == (like is None and unlike is None):
        raise QueryError("pass either a query or like= (row labels or point ids), exactly one")
    if fusion not in FUSIONS:
        raise QueryError(f"fusion must be 'rrf' or 'dbsf', not {fusion!r}")
    if limit < 1:
        raise QueryError(f"limit must be at least 1, not {limit}")
    flt = to_filter(filter)
    chosen = selection(specs, names, collection, diverse=diverse, group_by=group_by,
                       group_size=group_size)
    if like is not None or unlike is not None:
        queries, examples = example_queries(store, collection, names, like, unlike, df)
        # the examples themselves are no hits of "more like these"
        itself = models.HasIdCondition(has_id=list[models.ExtendedPointId](examples))
        flt = models.Filter(must=[flt] if flt else None, must_not=[itself])
    else:
        queries = resolve_queries(specs, names, query, store.cloud)
    asked = probes(specs, queries)
    hits = nearest(store, collection, asked, limit=limit, filter=flt, fusion=fusion,
                   chosen=chosen)
    if not hits and filter is not None:
        _explain_empty(store, collection, to_filter(filter))
    frame = hits_frame(hits, df, _vector_scores(store, collection, asked, hits))
    if group_by is not None:
        frame.insert(3, "group", [h.group for h in hits])
    frame = _with_passages(frame, store, collection, specs, asked, hits)
    # which columns hold the text the vectors were made from (and the images'), for the cards
    # of the widget and of plot_hits (cards.hit_columns)
    frame.attrs["texts"] = list(dict.fromkeys(s.column for s in specs.values() if s.kind != "image"))
    frame.attrs["sources"] = list(dict.fromkeys(s.column for s in specs.values()))
    frame.attrs["weak"] = (_weak(store, collection, specs, query, frame, flt)
                           if isinstance(query, str) and len(frame) else None)
    return frame


def _weak(store: Store, collection: str, specs: Mapping[str, Spec], query: str,
          frame: pd.DataFrame, flt: models.Filter | None) -> str | None:
    """Why these hits are probably unrelated to the query, or None: no word of the query is in
    any row (BM25 finds nothing) and the best dense score is below what the model gives a
    real question on the bundled data (WEAK_BELOW). Both, since either alone also happens to
    a good query: a paraphrase shares no word, and some models score everything low."""
    bm25 = next((n for n, s in specs.items() if isinstance(s, Bm25)), None)
    # each queried vector's own scores are in score_<vector>, for one vector as for several
    scored = [(n, float(frame[f"{SCORE_PREFIX}{n}"].max()), WEAK_BELOW[s.model.lower()])
              for n, s in specs.items() if s.kind == "text" and s.model.lower() in WEAK_BELOW
              and f"{SCORE_PREFIX}{n}" in frame and frame[f"{SCORE_PREFIX}{n}"].notna().any()]
    if bm25 is None or not scored or any(v >= below for _, v, below in scored):
        return None
    if f"{SCORE_PREFIX}{bm25}" in frame and frame[f"{SCORE_PREFIX}{bm25}"].notna().any():
        return None  # a hybrid query's hits already show BM25 finding words
    words = nearest(store, collection, probes(specs, resolve_queries(specs, [bm25], query,
                                                                      store.cloud)),
                    limit=1, filter=flt)
    if words:
        return None
    name, value, below = scored[0]
    return (f"no row holds a word of the query, and the closest meaning scores {value:.2f} on "
            f"{name!r}, below the {below:.2f} that real questions reach: these hits are "
            "probably unrelated")


def _with_passages(frame: pd.DataFrame, store: Store, collection: str, specs: Mapping[str, Spec],
                   asked: Sequence[Probe], hits: Sequence[Hit]) -> pd.DataFrame:
    """The hits with the passage that matched the query best, for the first chunked vector
    queried with a vector (``passage``, ``passage_score``); every passage's span and score
    goes to ``frame.attrs["passages"]``, by point id, for the widget's detail view."""
    chunked = [p for p in asked if isinstance(specs[p.using], Text) and specs[p.using].chunked
               and isinstance(p.vector, np.ndarray)]
    if not chunked or not hits:
        return frame
    probe = chunked[0]
    spec = specs[probe.using]
    scored = passage_scores(store, collection, probe, [h.id for h in hits])
    texts: list[str | None] = []
    best: list[float] = []
    all_scores: dict[PointId, list[tuple[int, int, float]]] = {}
    for hit in hits:
        spans = ((hit.payload.get(PASSAGES_KEY) or {}).get(probe.using) or [])
        found = scored.get(hit.id)
        text = hit.payload.get(spec.column)
        if found is None or not isinstance(text, str) or len(spans) != len(found):
            texts.append(None)
            best.append(float("nan"))
            continue
        top = int(np.argmax(found))
        start, end = spans[top]
        texts.append(text[start:end])
        best.append(float(found[top]))
        all_scores[hit.id] = [(int(s), int(e), float(v)) for (s, e), v in zip(spans, found, strict=True)]
    # a payload column of the same name keeps its value as "payload_<name>", as hit columns do
    frame = frame.rename(columns={c: f"payload_{c}" for c in PASSAGE_COLUMNS if c in frame.columns})
    frame.insert(3, PASSAGE_COLUMNS[0], texts)
    frame.insert(4, PASSAGE_COLUMNS[1], best)
    frame.attrs["passages"] = all_scores
    frame.attrs["passage_vector"] = probe.using
    return frame


def passage_scores(store: Store, collection: str, probe: Probe, ids: Sequence[PointId]
                   ) -> dict[PointId, np.ndarray]:
    """Each passage's cosine similarity to the query (its best row, for a matrix such as "more
    like this"), for the points ``ids``: computed here from their stored passage vectors, as
    the engine says only which row scored best overall, not which passage."""
    query = np.atleast_2d(np.asarray(probe.vector, dtype=np.float32))
    query = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    out = {}
    for record in store.retrieve(collection, list(ids), payload=False, vectors=[probe.using]):
        matrix = record.vectors.get(probe.using)
        if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
            continue
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        out[record.id] = (matrix @ query.T).max(axis=1)
    return out


def _vector_scores(store: Store, collection: str, probes: Sequence[Probe], hits: Sequence[Hit]
                   ) -> dict[str, dict[Any, float]]:
    """Why each hit matched: its score under each named vector on its own (a hit a vector
    does not find, such as BM25 with no word in common, has none). The engine scores the hits
    alone under each probe, in one call (they passed any filter already)."""
    if len(probes) == 1:
        return {probes[0].using: {h.id: h.score for h in hits}}
    if store.cloud:
        return {}  # each vector's query would be embedded by the server a second time
    if not hits:
        return {p.using: {} for p in probes}
    return store.scores(collection, probes, [h.id for h in hits])


def _explain_empty(store: Store, collection: str, flt: models.Filter | None,
                   sample: int = 1000) -> None:
    """Warn, naming the field, when a filter found nothing because no stored point has its
    field, or the points hold it as another type (``"5"`` against numbers)."""

    conditions = [c for c in (flt.must if flt and isinstance(flt.must, list) else [])
                  if isinstance(c, models.FieldCondition) and "." not in c.key and "[" not in c.key]
    if not conditions:
        return
    payloads = sample_payloads(store, collection, sample)
    for condition in conditions:
        values = [p[condition.key] for p in payloads if p.get(condition.key) is not None]
        if not values:
            fields = sorted({k for p in payloads for k in p if not k.startswith("_qinb")})
            warn(f"filter field {condition.key!r}: none of the {len(payloads)} points looked at "
                 f"has it, so nothing matched. Fields: {', '.join(fields)}")
            continue
        wanted = _match_values(condition)
        stored = {type(v).__name__ for v in values if not isinstance(v, list)}
        asked = {type(v).__name__ for v in wanted}
        if wanted and stored and not asked & stored and not (asked | stored) <= {"int", "float"}:
            warn(f"filter field {condition.key!r}: it is matched against {'/'.join(sorted(asked))} "
                 f"{wanted[0]!r}, but the points hold it as {'/'.join(sorted(stored))} (such as "
                 f"{values[0]!r}), so nothing matched; filter with a value of that type")
        elif condition.range is not None and stored and not stored <= {"int", "float"}:
            warn(f"filter field {condition.key!r}: a range needs numbers, but the points hold it "
                 f"as {'/'.join(sorted(stored))} (such as {values[0]!r}), so nothing matched")


def _match_values(condition: models.FieldCondition) -> list[Any]:
    match = condition.match
    if isinstance(match, models.MatchValue):
        return [match.value]
    if isinstance(match, models.MatchAny):
        return list(match.any)
    return []


def hits_frame(points: Sequence[Hit], df: pd.DataFrame | None = None,
               scores: Mapping[str, Mapping[Any, float]] | None = None) -> pd.DataFrame:
    """Scored points as a DataFrame: score, rank, id, each vector's own score
    (``score_<vector>``), payload; indexed by source row labels."""
    records, labels = [], []
    scores = scores or {}
    for rank, p in enumerate(points, start=1):
        label, payload = split_row(p.payload or {}, p.id)
        labels.append(label)
        per_vector = {f"{SCORE_PREFIX}{n}": by_id.get(p.id, float("nan")) for n, by_id in scores.items()}
        # a payload column named like a hit column keeps its value under "payload_<name>"
        fields = {(f"payload_{k}" if k in HIT_COLUMNS or k in per_vector else k): v
                  for k, v in payload.items()}
        records.append({"score": p.score, "rank": rank, "id": p.id, **per_vector, **fields})
    columns = [*HIT_COLUMNS, *(f"{SCORE_PREFIX}{n}" for n in scores)]
    hits = pd.DataFrame.from_records(records, columns=None if records else columns)
    if df is not None and isinstance(df.index, pd.MultiIndex) and labels:
        hits.index = pd.MultiIndex.from_tuples(labels, names=df.index.names)
    else:
        hits.index = pd.Index(labels, name=df.index.name if df is not None else None,
                              tupleize_cols=False)
    if df is not None and len(hits) and not isinstance(df.columns, pd.MultiIndex):
        # columns the payload left out come from the source rows that are still in the frame
        # (MultiIndex columns never became payload keys: there is nothing to line up with)
        extra = [c for c in df.columns if c not in hits.columns]
        present = [label in df.index for label in hits.index]
        # repeated labels would give one hit several rows, some of them never stored
        if extra and all(present) and df.index.is_unique:
            hits = hits.join(df[extra])
    return hits
