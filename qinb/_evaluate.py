"""Search quality: labelled queries run against every configuration of vectors and fusion,
scored by trec_eval's own measures (``pytrec_eval``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.errors import ArgumentError, QueryError, require, warn
from qinb.objects import point_id
from qinb.query import FUSIONS, nearest, probes, resolve_queries, to_filter, vector_names
from qinb.selection import selection
from qinb.store import ROW_KEY, Store, as_store, saved_specs

__all__ = ["Judged", "evaluate", "judged_hits", "judgements", "metric_columns", "query_scores"]

SINGLE = "-"  # the fusion of a configuration with one vector


def metric_columns(k: int, deep: int) -> dict[str, str]:
    """trec_eval's measure names -> the result's column names."""
    return {f"ndcg_cut_{k}": f"ndcg@{k}", f"recall_{k}": f"recall@{k}",
            f"recall_{deep}": f"recall@{deep}", "recip_rank": "mrr"}


def _configurations(names: Sequence[str], using: Any, fusion: str | Sequence[str]
                    ) -> list[tuple[tuple[str, ...], str]]:
    fusions = [fusion] if isinstance(fusion, str) else list(fusion)
    for f in fusions:
        if f not in FUSIONS:
            raise ArgumentError(f"fusion must be 'rrf' or 'dbsf' (or a list of them), not {f!r}")
    if using is None:
        groups: list[tuple[str, ...]] = [(n,) for n in names]
        if len(names) > 1:
            groups.append(tuple(names))
    elif isinstance(using, str):
        groups = [(using,)]
    else:
        groups = [(u,) if isinstance(u, str) else tuple(u) for u in using]
    configs: list[tuple[tuple[str, ...], str]] = []
    for group in groups:
        for f in ([SINGLE] if len(group) == 1 else fusions):
            if (group, f) not in configs:
                configs.append((group, f))
    return configs


def _query_texts(queries: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(queries, pd.DataFrame):
        column = "query" if "query" in queries.columns else queries.columns[0]
        queries = queries[column]
    if not isinstance(queries, pd.Series):
        raise ArgumentError("queries= takes a Series (or a DataFrame) of queries indexed by "
                            f"query id, not a {type(queries).__name__}")
    if not queries.index.is_unique:
        raise ArgumentError("queries= has repeated query ids; give each query its own id")
    return queries


def _judgements(qrels: pd.DataFrame, queries: pd.Series) -> dict[str, dict[str, int]]:
    """qrels as pytrec_eval takes them: query id -> point id -> graded relevance."""
    missing = {"query", "row"} - set(qrels.columns)
    if missing:
        raise ArgumentError(f"qrels= needs the columns 'query' and 'row' (and optionally "
                            f"'relevance'); it lacks {sorted(missing)}")
    judged: dict[str, dict[str, int]] = {}
    for query in queries.index:
        points = judgements(qrels, query)
        if points:
            judged[str(query)] = {str(point): grade for point, (_, grade) in points.items()}
    if not judged:
        raise QueryError("no qrels row names a query of queries=; check the 'query' column")
    return judged


def _check_stored(store: Store, collection: str, qrels: pd.DataFrame) -> None:
    """Judged rows that are not in the collection count as never found, so a 'row' column of
    other labels (page names where row labels are expected) would score zeros without a word:
    say it, with what the collection's row labels look like."""
    ids = list(dict.fromkeys(_point_of(row) for row in qrels["row"]))
    found = {r.id for start in range(0, len(ids), 1000)
             for r in store.retrieve(collection, ids[start:start + 1000], payload=False)}
    if found and len(found) == len(ids):
        return
    missing = [row for row, pid in zip(qrels["row"], (_point_of(r) for r in
                                                       qrels["row"]), strict=True) if pid not in found]
    if not found:
        sample, _ = store.scroll(collection, limit=3, payload=[ROW_KEY])
        labels = [r.payload.get(ROW_KEY, r.id) for r in sample]
        raise QueryError(
            f"none of the {len(ids)} rows the qrels judge is in {collection!r} (the first: "
            f"{missing[0]!r}); its rows are labelled like {labels}. The 'row' column must hold "
            "those labels: the upserted DataFrame's index, or id_column's values")
    warn(f"{len(ids) - len(found)} of the {len(ids)} rows the qrels judge are not in "
         f"{collection!r} (the first: {missing[0]!r}); they count as relevant rows never found")


def _point_of(row: Hashable) -> int | str:
    """The point id of a row label (an id column's value, or an index label)."""
    return point_id(row)


def evaluate(collection: str, queries: pd.Series | pd.DataFrame, qrels: pd.DataFrame, *,
             using: str | Sequence[str | Sequence[str]] | None = None,
             fusion: Literal["rrf", "dbsf"] | Sequence[str] = "rrf", k: int = 10,
             deep: int = 100, filter: models.Filter | Mapping[str, Any] | None = None,
             client: Store | QdrantClient | None = None, df: pd.DataFrame | None = None,
             diverse: float | None = None, progress: bool = True) -> pd.DataFrame:
    """How well each configuration finds the rows labelled relevant: nDCG, recall and MRR.

    Every combination of ``using`` and ``fusion`` runs the same queries; each query is embedded
    once per vector and reused by every configuration. The measures are trec_eval's own
    (``pytrec_eval``): nDCG@k with graded relevance, recall at ``k`` and at ``deep``, and the
    reciprocal rank of the first relevant hit (MRR when averaged).

    Parameters
    ----------
    collection : str
    queries : Series or DataFrame
        Query texts (or images, for image vectors) indexed by query id; a DataFrame's
        ``query`` column (else its first).
    qrels : DataFrame
        ``query`` (a query id), ``row`` (a source row label, or a point id) and optionally
        ``relevance`` (graded: 0 not, 1 relevant, 2 highly; default 1).
    using : str, or list of str and lists of str, optional
        The configurations: ``["text", "bm25", ["text", "bm25"]]``. Default: each vector alone
        and all of them together.
    fusion : {"rrf", "dbsf"} or a list of them
        Fusions tried for every configuration of several vectors.
    k, deep : int
        The cut-offs: nDCG and recall at ``k``, and recall at ``deep`` (hits asked for).
    filter : dict or models.Filter, optional
        Applied to every query.
    client : store or QdrantClient, optional
    df : DataFrame, optional
        The source frame: rows are resolved through its ``id_column`` as search does.
    diverse : float, optional
        Every configuration's hits picked as ``qinb.search(diverse=...)`` picks them (MMR):
        what diversity costs in nDCG.
    progress : bool

    Returns
    -------
    DataFrame
        One row per configuration: ``using``, ``fusion``, ``ndcg@k``, ``recall@k``,
        ``recall@deep``, ``mrr`` and ``queries``, best nDCG first.
        ``qinb.query_scores(result)`` gives the same measures per query and configuration.

    Examples
    --------
    >>> queries, qrels = qinb.datasets.python_questions()
    >>> qinb.evaluate("python-docs", queries, qrels, fusion=["rrf", "dbsf"])
    """
    require("pytrec_eval", "evaluate")
    import pytrec_eval

    from qinb.progress import progress_bar

    if k < 1 or deep < k:
        raise ArgumentError(f"k must be at least 1 and deep at least k; got k={k}, deep={deep}")
    store = as_store(client)
    specs, _ = saved_specs(store, collection)
    texts = _query_texts(queries)
    configs = _configurations(list(specs), using, fusion)
    names = list(dict.fromkeys(n for group, _ in configs for n in group))
    vector_names(specs, names, collection)  # a QueryError naming an unknown vector
    judged = _judgements(qrels, texts)
    _check_stored(store, collection, qrels)
    flt = to_filter(filter)
    runs: dict[tuple[tuple[str, ...], str], dict[str, dict[str, float]]] = {c: {} for c in configs}
    chosen = {group: selection(specs, group, collection, diverse=diverse, group_by=None,
                               group_size=1) for group, _ in configs}
    asked = [q for q in texts.index if str(q) in judged]
    for qid in progress_bar(asked, desc="evaluating", unit="query", disable=not progress or len(asked) < 2):
        vectors = resolve_queries(specs, names, texts[qid], store.cloud)  # once per vector
        for group, f in configs:
            # the query path of qinb.search, so these rankings are what search returns
            hits = nearest(store, collection, probes(specs, {n: vectors[n] for n in group}),
                           limit=deep, filter=flt, fusion="rrf" if f == SINGLE else f,
                           chosen=chosen[group])
            # scores by rank: trec_eval orders by score, so equal scores keep qinb's order
            runs[group, f][str(qid)] = {str(h.id): float(deep - rank) for rank, h in enumerate(hits)}
    columns = metric_columns(k, deep)
    evaluator = pytrec_eval.RelevanceEvaluator(
        {q: judged[q] for q in map(str, asked)}, {f"ndcg_cut.{k}", f"recall.{k},{deep}", "recip_rank"})
    per_query = []
    for (group, f), run in runs.items():
        scores = evaluator.evaluate(run)
        for qid in asked:
            measured = scores.get(str(qid), {})
            per_query.append({"using": "+".join(group), "fusion": f, "query": qid,
                              **{col: measured.get(name, 0.0) for name, col in columns.items()}})
    detail = pd.DataFrame(per_query, columns=["using", "fusion", "query", *columns.values()])
    summary = (detail.groupby(["using", "fusion"], sort=False)[list(columns.values())].mean()
               .assign(queries=len(asked)).reset_index()
               .sort_values(f"ndcg@{k}", ascending=False, kind="stable").reset_index(drop=True))
    # records, not a frame: pandas compares attrs when results are concatenated
    summary.attrs["per_query"] = detail.to_dict("records")
    summary.attrs["k"] = k
    return summary


def query_scores(result: pd.DataFrame) -> pd.DataFrame:
    """The measures of each query under each configuration, from what :func:`evaluate`
    returned: for finding the queries a configuration fails."""
    records = result.attrs.get("per_query")
    if records is None:
        raise ArgumentError("this frame carries no per-query measures: pass what "
                            "qinb.evaluate returned")
    return pd.DataFrame(records)


# what a labelled query says of each point: its source row label and its grade
Judged = dict[int | str, tuple[Hashable, int]]


def judgements(qrels: pd.DataFrame, query: Hashable) -> Judged:
    """The rows judged for one query of ``qrels``, by point id: (row label, relevance)."""
    rows = qrels[qrels["query"] == query]
    grades = rows["relevance"] if "relevance" in rows.columns else pd.Series(1, rows.index)
    return {_point_of(row): (row, int(grade))
            for row, grade in zip(rows["row"], grades, strict=True)}


def judged_hits(hits: pd.DataFrame, judged: Judged) -> tuple[list[int | None], list[Hashable]]:
    """The relevance of each hit (None: not judged) and the relevant rows the hits missed."""
    grades = [judged[h][1] if h in judged else None for h in hits["id"]]
    found = set(hits["id"])
    missed = [row for point, (row, grade) in judged.items() if grade > 0 and point not in found]
    return grades, missed
