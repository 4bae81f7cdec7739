"""Which candidates become hits, past plain ranking: diverse hits (maximal marginal relevance)
and one hit per group of a payload field. Both work on the query path's candidate list (one
vector's, or several fused), computed here from the engine's scores and stored vectors, so
that they give the same hits on Qdrant Edge, qdrant-client's local mode and a server, for a
hybrid query as for a single vector."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from qinb.errors import QueryError
from qinb.spec import Spec, Text
from qinb.store import Hit, PointId, Probe, Store

__all__ = ["GROUP_DEPTH", "Selection", "diverse_hits", "grouped_hits", "select", "selection"]

# the most candidates a grouped query reads to fill its groups; a field whose values are
# rare among the best candidates may give fewer groups than asked for
GROUP_DEPTH = 4096


@dataclass(frozen=True)
class Selection:
    """How a query's candidates become its hits, past plain ranking."""

    diverse: float = 0.0  # MMR's diversity, 0.0 (the plain ranking) to 1.0
    group_by: str | None = None  # a payload field: the best group_size hits of each value
    group_size: int = 1
    alike_by: str | None = None  # the dense vector that says how alike two hits are
    chunked: bool = False  # alike_by holds a matrix per point (passages)

    @property
    def plain(self) -> bool:
        return not self.diverse and self.group_by is None


def selection(specs: Mapping[str, Spec], using: Sequence[str], collection: str, *,
              diverse: float | None, group_by: str | None, group_size: int) -> Selection:
    """A query's Selection, checked: diversity compares the hits by the first dense vector
    queried, else the collection's first."""
    diverse = 0.0 if diverse is None else diverse
    if isinstance(diverse, bool) or not isinstance(diverse, (int, float)) \
            or not 0.0 <= diverse <= 1.0:
        raise QueryError(f"diverse= is between 0.0 (the plain ranking) and 1.0 (hits as unlike "
                         f"each other as can be), not {diverse!r}")
    if group_by is not None and (not isinstance(group_by, str) or not group_by):
        raise QueryError(f"group_by= names a payload field, not {group_by!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise QueryError(f"group_size must be a whole number of at least 1, not {group_size!r}")
    chosen = Selection(float(diverse), group_by, group_size)
    if not diverse:
        return chosen
    dense = [n for n in (*using, *specs) if specs[n].kind in ("text", "image")]
    if not dense:
        raise QueryError(f"diverse= compares the hits by their dense vectors, and collection "
                         f"{collection!r} has none (its vectors: {', '.join(specs)})")
    spec = specs[dense[0]]
    return replace(chosen, alike_by=dense[0], chunked=isinstance(spec, Text) and spec.chunked)


def select(store: Store, collection: str, candidates: Callable[[int], Sequence[Hit]],
           chosen: Selection, *, limit: int, depth: int, probes: Sequence[Probe]) -> list[Hit]:
    """The hits a Selection keeps of a query's candidates (``candidates(n)``: its first n,
    ranked by ``probes``): groups first, then diversity among what they kept."""
    if chosen.group_by is not None:
        field = chosen.group_by

        def payloads(ids: Sequence[PointId]) -> dict[PointId, Any]:
            return {r.id: r.payload.get(field)
                    for r in store.retrieve(collection, ids, payload=[field])}

        grouped = grouped_hits(candidates, field, limit=limit, group_size=chosen.group_size,
                               payloads=payloads, start=max(depth, limit * chosen.group_size))
        pool = [replace(hit, group=key) for hit, key in grouped]
        limit = len(pool)
    else:
        pool = list(candidates(max(depth, limit) if chosen.diverse else limit))
    if chosen.diverse and chosen.alike_by is not None:
        return diverse_hits(store, collection, pool, diversity=chosen.diverse, limit=limit,
                            using=chosen.alike_by, chunked=chosen.chunked,
                            relevance=_relevance(store, collection, pool, chosen.alike_by, probes))
    return pool[:limit]


def _unit_rows(store: Store, collection: str, using: str, ids: Sequence[PointId],
               chunked: bool) -> dict[PointId, np.ndarray]:
    out = {}
    for record in store.retrieve(collection, list(ids), payload=False, vectors=[using]):
        vector = record.vectors.get(using)
        if not isinstance(vector, np.ndarray) or not vector.size:
            continue
        # a chunked row is compared by the mean of its passages
        vector = vector.mean(axis=0) if chunked and vector.ndim == 2 else vector
        out[record.id] = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return out


def diverse_hits(store: Store, collection: str, candidates: Sequence[Hit], *, diversity: float,
                 limit: int, using: str, chunked: bool,
                 relevance: Mapping[PointId, float] | None = None) -> list[Hit]:
    """``limit`` of the candidates (best first) chosen by maximal marginal relevance, as
    Qdrant's MMR does: each next hit maximises ``(1 - diversity) * relevance - diversity *
    (its highest cosine similarity to a hit already chosen)``. Relevance is each candidate's
    cosine similarity to the query under ``using`` (``relevance``); where the query has no
    such vector (BM25 alone, a server that embeds), the candidate's score rescaled to 0-1 over
    the candidates. ``diversity=0`` keeps the ranking; each hit keeps its own score."""
    if diversity == 0.0 or len(candidates) <= 1:
        return list(candidates[:limit])
    rows = _unit_rows(store, collection, using, [h.id for h in candidates], chunked)
    pool = [h for h in candidates if h.id in rows]
    if not pool:
        return list(candidates[:limit])
    if relevance is not None:
        near = np.array([relevance.get(h.id, 0.0) for h in pool], dtype=np.float64)
    else:
        scores = np.array([h.score for h in pool], dtype=np.float64)
        span = float(scores.max() - scores.min())
        near = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    matrix = np.vstack([rows[h.id] for h in pool]).astype(np.float64)
    alike = matrix @ matrix.T
    chosen = [0]  # the best candidate always comes first
    closest = alike[0].copy()  # each candidate's highest similarity to a chosen hit
    left = np.ones(len(pool), dtype=bool)
    left[0] = False
    while len(chosen) < min(limit, len(pool)):
        value = np.where(left, (1.0 - diversity) * near - diversity * closest, -np.inf)
        pick = int(np.argmax(value))  # the first of equal values: the better ranked
        chosen.append(pick)
        left[pick] = False
        closest = np.maximum(closest, alike[pick])
    return [pool[i] for i in chosen]


def _relevance(store: Store, collection: str, pool: Sequence[Hit], using: str,
               probes: Sequence[Probe]) -> dict[PointId, float] | None:
    """Each candidate's score under the query's ``using`` vector (its cosine similarity), or
    None where the query has none that qinb embedded."""
    probe = next((p for p in probes if p.using == using and isinstance(p.vector, np.ndarray)),
                 None)
    if probe is None:
        return None
    if len(probes) == 1:
        return {h.id: h.score for h in pool}
    return store.scores(collection, [probe], [h.id for h in pool]).get(using, {})


def group_keys(value: Any) -> list[Hashable]:
    """The groups a payload value puts a point in: each item of a list, else the value."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [tuple(v) if isinstance(v, list) else v for v in items if v is not None
            and not isinstance(v, dict)]


def grouped_hits(candidates: Callable[[int], Sequence[Hit]], field: str, *, limit: int,
                 group_size: int, payloads: Callable[[Sequence[PointId]], Mapping[PointId, Any]],
                 start: int) -> list[tuple[Hit, Hashable]]:
    """The best ``group_size`` hits of each of the first ``limit`` groups of ``field``, best
    group first (a group ranks by its best hit), hits within a group by rank, as Qdrant's
    group-by does. A point with a list value is in each of its values' groups, and shown in
    the first of them only; points without the field are in no group. ``candidates(n)`` is the
    query's first ``n`` hits; more are read (up to GROUP_DEPTH) until the groups are full."""
    depth = start
    while True:
        pool = candidates(depth)
        values = payloads([h.id for h in pool])
        groups: dict[Hashable, list[Hit]] = {}
        shown: set[PointId] = set()
        for hit in pool:
            for key in group_keys(values.get(hit.id)):
                members = groups.setdefault(key, []) if (key in groups
                                                          or len(groups) < limit) else None
                if members is not None and len(members) < group_size and hit.id not in shown:
                    members.append(hit)
                    shown.add(hit.id)
        full = len(groups) == limit and all(len(m) == group_size for m in groups.values())
        if full or len(pool) < depth or depth >= GROUP_DEPTH:
            return [(hit, key) for key, members in groups.items() for hit in members]
        depth = min(depth * 4, GROUP_DEPTH)
