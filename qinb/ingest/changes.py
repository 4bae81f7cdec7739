"""Which rows of a chunk need writing, and the points they become.

``diff`` compares a chunk's rows with what the store holds (each vector's object identity and
a hash of the payload) and returns :class:`Changes`, with the objects of the rows to write
(an unchanged row's cells are hashed, never made into objects or split); ``points`` turns the
changes and their resolved vectors into the points to upsert (new rows) and update (changed
rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qinb.embed import Item
from qinb.ingest.plan import Row
from qinb.objects import Passages, payload_hash
from qinb.spec import Spec
from qinb.store import HASH_KEY, OBJECTS_KEY, PASSAGES_KEY, Point, PointId, Store

__all__ = ["Change", "Changes", "diff", "payload_only", "points", "stored_state"]

READ_PAGE = 4096  # stored states asked of the store at a time, as qinb.read pages


@dataclass(frozen=True)
class Change:
    """A row to write: whether the store lacks it, the vectors whose object is new or changed
    (empty: the payload alone changed), the row's objects, and the hash written beside it."""

    row: Row
    new: bool
    embed: frozenset[str]
    items: dict[str, Item | Passages]
    hashed: str


@dataclass(frozen=True)
class Changes:
    """The rows of a chunk to write, and how many were unchanged."""

    writes: list[Change]
    unchanged: int


def stored_state(store: Store, collection: str, ids: Sequence[PointId]
                 ) -> dict[PointId, Mapping[str, Any]]:
    """What the store holds of the points with these ids: their object identities and payload
    hash, read READ_PAGE points at a time."""
    found: dict[PointId, Mapping[str, Any]] = {}
    for start in range(0, len(ids), READ_PAGE):
        for record in store.retrieve(collection, ids[start:start + READ_PAGE],
                                     payload=[HASH_KEY, OBJECTS_KEY]):
            found[record.id] = record.payload
    return found


def diff(rows: Sequence[Row], stored: Mapping[PointId, Mapping[str, Any]],
         specs: Mapping[str, Spec], wire: bool) -> Changes:
    """New rows (every vector), changed rows (the vectors whose object changed, and the
    payload), each with its objects made by ``specs``; unchanged rows are only counted."""
    writes: list[Change] = []
    for row in rows:
        hashed = payload_hash(row.payload, sorted(row.thumbnails))
        old = stored.get(row.id)
        changed = set(row.digests) if old is None else {
            n for n, d in row.digests.items() if (old.get(OBJECTS_KEY) or {}).get(n) != d}
        if old is not None and not changed and old.get(HASH_KEY) == hashed:
            continue
        # every object, also of unchanged vectors: a chunked one's spans go into the payload
        writes.append(Change(row, old is None, frozenset(changed), row.objects(specs, wire),
                             hashed))
    return Changes(writes, len(rows) - len(writes))


def points(changes: Changes, vectors: Mapping[tuple[PointId, str], Any],
           dropped: set[PointId]) -> tuple[list[Point], list[Point]]:
    """The points to upsert (new rows, every vector) and to update (changed vectors and the
    whole payload), leaving out the ``dropped`` rows. A chunked vector's passage spans go into
    the payload, so that the passage a hit matched can be shown."""
    upserts: list[Point] = []
    updates: list[Point] = []
    for change in changes.writes:
        row = change.row
        if row.id in dropped:
            continue
        spans = {n: [list(s) for s in i.spans] for n, i in change.items.items()
                 if isinstance(i, Passages)}
        payload = {**row.payload, **row.thumbnail_payload(), HASH_KEY: change.hashed,
                   OBJECTS_KEY: dict(sorted(row.digests.items())),
                   **({PASSAGES_KEY: spans} if spans else {})}
        point = Point(row.id, {n: vectors[row.id, n] for n in sorted(change.embed)}, payload)
        (upserts if change.new else updates).append(point)
    return upserts, updates


def payload_only(updates: Sequence[Point]) -> int:
    """Updates that write the payload alone (no object of the row changed)."""
    return sum(1 for p in updates if not p.vectors)
