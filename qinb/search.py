"""Query building and hits -> DataFrame. Configured from the specs saved with the collection."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb import models as registry
from qinb.embed import Embedder, Item, document_item
from qinb.errors import QinbWarning, QueryError
from qinb.images import ImageCellError, is_pil, load
from qinb.inference import MAX_POINT_ID, cell_item, point_id
from qinb.payload import check_text
from qinb.spec import Image, Spec, missing_secrets
from qinb.store import ROW_KEY, Hit, Probe, Store, as_store, sample_payloads, saved_specs

__all__ = ["search", "to_filter"]

RANGE_KEYS = {"gt", "gte", "lt", "lte"}
HIT_COLUMNS = ("score", "rank", "id")
SCORE_PREFIX = "score_"  # each vector's own score of a hit: score_<vector>
FUSIONS = ("rrf", "dbsf")


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


def _vector_names(specs: Mapping[str, Spec], using: str | Sequence[str] | None,
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


def _resolve_queries(specs: Mapping[str, Spec], names: Sequence[str], query: Any,
                     cloud: bool) -> dict[str, Any]:
    """Per vector name: the query vector (local) or inference object (the server embeds it)."""
    items = {n: _query_item(specs[n], n, query, cloud) for n in names}
    if cloud:
        for n in names:
            for key in missing_secrets(specs[n]):
                raise QueryError(
                    f"vector {n!r} is embedded by the server with a {key!r} option, which qinb "
                    f"never saves: pass secrets={{{key!r}: ...}}, or set the environment "
                    f"variable {registry.secret_variable(key)}")
        return {n: i.obj for n, i in items.items()}
    embedder = Embedder(progress=False)
    return {n: embedder.resolve([i], runtime=specs[n].runtime_options, query=True)[0][0]
            for n, i in items.items()}


def query_vector(collection: str, query: Any, *, using: str,
                 client: Store | QdrantClient | None = None) -> Any:
    """The vector a query becomes for the vector ``using``, embedded here (for plots)."""
    specs, _ = saved_specs(as_store(client), collection)
    names = _vector_names(specs, using, collection)
    return _resolve_queries(specs, names, query, cloud=False)[using]


def _like_id(like: Hashable, df: pd.DataFrame | None, id_column: str | None) -> int | str:
    """The point id of a source row label (when ``df`` has it) or of a point id."""
    if df is not None and like in df.index:
        # with repeated labels the first row is the one stored (upsert refuses the repeats)
        target = df.loc[[like]].iloc[0][id_column] if id_column else like
        found = point_id(target)
    elif isinstance(like, (int, str)):
        found = point_id(like)
    else:
        raise QueryError(f"like={like!r} is neither a row label of the DataFrame nor a point id")
    if isinstance(found, int) and found >= MAX_POINT_ID:
        raise QueryError(f"like={like!r} is no point id: ids are below 2**64, or UUIDs")
    return found


def search(collection: str, query: Any = None, *,
           using: str | Sequence[str] | None = None, limit: int = 10,
           filter: models.Filter | Mapping[str, Any] | None = None,
           fusion: Literal["rrf", "dbsf"] = "rrf", like: Hashable | None = None,
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
    like : row label or point id, optional
        "More like this": the stored vectors of that point, instead of ``query``.
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
    """
    store = as_store(client)
    specs, id_column = saved_specs(store, collection, secrets)
    if using is None and query is not None and is_image_query(query):
        using = [n for n, s in specs.items() if isinstance(s, Image)] or list(specs)
    names = _vector_names(specs, using, collection)
    if (query is None) == (like is None):
        raise QueryError("pass either a query or like= (a row label or point id), exactly one")
    if fusion not in FUSIONS:
        raise QueryError(f"fusion must be 'rrf' or 'dbsf', not {fusion!r}")
    if limit < 1:
        raise QueryError(f"limit must be at least 1, not {limit}")
    flt = to_filter(filter)
    if like is not None:
        target = _like_id(like, df, id_column)
        found = store.retrieve(collection, [target], payload=False, vectors=names)
        if not found:
            if target == like:
                raise QueryError(f"like={like!r}: no point with id {like!r} in {collection!r}")
            what = ("the DataFrame's row labelled {0!r} was not stored in {1!r}"
                    if df is not None and like in df.index else
                    "no row labelled {0!r} is in {1!r}").format(like, collection)
            raise QueryError(
                f"like={like!r}: {what} (the point id it maps to, {target!r}, is absent); pass "
                "the label of a row that was upserted"
                + ("" if df is not None else ", and df= to look labels up in your frame"))
        # the point itself is not a hit of "more like this"
        itself = models.HasIdCondition(has_id=[target])
        flt = models.Filter(must=[flt] if flt else None, must_not=[itself])
        queries: dict[str, Any] = {n: found[0].vectors[n] for n in names if n in found[0].vectors}
        if not queries:
            raise QueryError(f"like={like!r}: the point has none of the vectors {names}")
    else:
        queries = _resolve_queries(specs, names, query, store.cloud)
    probes = [Probe(n, q) for n, q in queries.items()]
    hits = store.query(collection, probes, limit=limit, filter=flt, fusion=fusion,
                       depth=max(limit * 5, 50))
    if not hits and filter is not None:
        _explain_empty(store, collection, to_filter(filter))
    return hits_frame(hits, df, _vector_scores(store, collection, probes, hits))


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
    import warnings

    conditions = [c for c in (flt.must if flt and isinstance(flt.must, list) else [])
                  if isinstance(c, models.FieldCondition) and "." not in c.key and "[" not in c.key]
    if not conditions:
        return
    payloads = sample_payloads(store, collection, sample)
    for condition in conditions:
        values = [p[condition.key] for p in payloads if p.get(condition.key) is not None]
        if not values:
            fields = sorted({k for p in payloads for k in p if not k.startswith("_qinb")})
            warnings.warn(
                f"filter field {condition.key!r}: none of the {len(payloads)} points looked at "
                f"has it, so nothing matched. Fields: {', '.join(fields)}", QinbWarning,
                stacklevel=3)
            continue
        wanted = _match_values(condition)
        stored = {type(v).__name__ for v in values if not isinstance(v, list)}
        asked = {type(v).__name__ for v in wanted}
        if wanted and stored and not asked & stored and not (asked | stored) <= {"int", "float"}:
            warnings.warn(
                f"filter field {condition.key!r}: it is matched against {'/'.join(sorted(asked))} "
                f"{wanted[0]!r}, but the points hold it as {'/'.join(sorted(stored))} (such as "
                f"{values[0]!r}), so nothing matched; filter with a value of that type",
                QinbWarning, stacklevel=3)
        elif condition.range is not None and stored and not stored <= {"int", "float"}:
            warnings.warn(
                f"filter field {condition.key!r}: a range needs numbers, but the points hold it "
                f"as {'/'.join(sorted(stored))} (such as {values[0]!r}), so nothing matched",
                QinbWarning, stacklevel=3)


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
        payload = dict(p.payload or {})
        label = payload.pop(ROW_KEY, p.id)
        labels.append(tuple(label) if isinstance(label, list) else label)
        per_vector = {f"{SCORE_PREFIX}{n}": by_id.get(p.id, float("nan")) for n, by_id in scores.items()}
        # a payload column named like a hit column keeps its value under "payload_<name>"
        fields = {(f"payload_{k}" if k in HIT_COLUMNS or k in per_vector else k): v
                  for k, v in payload.items() if not k.startswith("_qinb")}
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
