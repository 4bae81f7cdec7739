"""The store interface: everything qinb asks of an engine, in qinb's words.

Two engines implement it: :class:`~qinb.store.edge.EdgeStore` (Qdrant Edge, in-process, the
embedded default) and :class:`~qinb.store.client.ClientStore` (qdrant-client: a server, a
cluster, Qdrant Cloud, or qdrant-client's local mode). Nothing outside this package asks which
one it holds. Vectors cross the interface as numpy arrays (dense), ``models.SparseVector``
(sparse) or, for a server that embeds, ``models.Document`` / ``models.Image``; filters as
``models.Filter``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import models

__all__ = ["Hit", "Point", "Probe", "Record", "Shape", "Store", "StoredVector"]

PointId = int | str
_writer_locks_guard = threading.Lock()
# numpy array (dense: 1-d, or 2-d for a multivector), models.SparseVector, or an inference object
StoredVector = Any


def records(raw: Sequence[Any], read: Callable[[Any], StoredVector]) -> list[Record]:
    """An engine's points as Records: plain ids, the payload, and each named vector read by the
    engine's own ``read``."""
    return [Record(plain_id(r.id), dict(r.payload or {}),
                   {n: read(v) for n, v in r.vector.items()} if isinstance(r.vector, dict) else {})
            for r in raw]


def vector_selector(vectors: bool | Sequence[str]) -> bool | list[str]:
    """``vectors=`` as both engines take it: all, none, or these names."""
    return vectors if isinstance(vectors, bool) else list(vectors)


def extent_of(ends: Sequence[Any]) -> tuple[float, float] | None:
    """The lowest and highest of the numbers among ``ends`` (the first point of an ascending
    and of a descending read), or None."""
    numbers = [float(v) for v in ends if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return (min(numbers), max(numbers)) if numbers else None


def plain_id(point_id: Any) -> PointId:
    """A point id as qinb passes it around: an int, or a UUID as text."""
    return point_id if isinstance(point_id, int) else str(point_id)


@dataclass
class Point:
    """One point to write: id, named vectors and payload."""

    id: PointId
    vectors: dict[str, StoredVector]
    payload: dict[str, Any]


@dataclass
class Record:
    """One stored point as read back: vectors and payload only where asked for."""

    id: PointId
    payload: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, StoredVector] = field(default_factory=dict)


@dataclass
class Hit:
    """One scored point of a query."""

    id: PointId
    score: float
    payload: dict[str, Any]
    group: Any = None  # the value of the group_by field it was chosen for


@dataclass(frozen=True)
class Probe:
    """One named vector's part of a query: the vector (or inference object) to look near."""

    using: str
    vector: StoredVector
    exact: bool = False  # search every point, whatever index the engine has built
    quantized: bool = False  # the vector has a quantized copy: rescore its candidates
    graph: bool = False  # a dense vector searched on its HNSW graph, where it has one


@dataclass(frozen=True)
class Shape:
    """What a collection holds: dense sizes, sparse names, the metadata qinb saved, and which
    dense vectors are multivectors (one row per passage, scored by their best row)."""

    dense: Mapping[str, int]
    sparse: frozenset[str]
    metadata: Mapping[str, Any]
    multi: frozenset[str] = frozenset()  # dense vectors holding a matrix per point (MaxSim)


class Store(abc.ABC):
    """A place holding collections of points with named dense and sparse vectors."""

    #: the server embeds inference objects itself (Qdrant Cloud Inference)
    cloud: bool = False

    @abc.abstractmethod
    def where(self) -> str:
        """Where the data lives, for messages: a path, ``:memory:`` or a URL."""

    def writer_lock(self, collection: str) -> threading.Lock:
        """The lock one upsert into ``collection`` holds in this process, so that two threads
        (a running cell and a widget callback) write one after the other."""
        with _writer_locks_guard:
            locks: dict[str, threading.Lock] = self.__dict__.setdefault("_writer_locks", {})
            return locks.setdefault(collection, threading.Lock())

    @abc.abstractmethod
    def collections(self) -> list[str]:
        """Names of the collections here."""

    def exists(self, collection: str) -> bool:
        return collection in self.collections()

    @abc.abstractmethod
    def create(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
               metadata: Mapping[str, Any], multi: Sequence[str] = (),
               storage: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Create a collection with cosine dense vectors of these sizes (the ``multi`` ones
        multivectors compared by MaxSim) and IDF sparse vectors; ``storage`` gives a dense
        vector's ``on_disk``, ``quantization`` (``"int8"`` or ``"binary"``) and ``hnsw`` where
        set, and a sparse vector's ``on_disk`` (its inverted index memory-mapped)."""

    @abc.abstractmethod
    def add_vectors(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
                    multi: Sequence[str] = (),
                    storage: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Add named vectors to an existing collection."""

    @abc.abstractmethod
    def shape(self, collection: str) -> Shape:
        """The collection's vectors and saved metadata."""

    @abc.abstractmethod
    def save_metadata(self, collection: str, metadata: Mapping[str, Any]) -> None:
        """Replace the metadata qinb keeps with the collection."""

    @abc.abstractmethod
    def delete(self, collection: str) -> None:
        """Delete a collection and its points."""

    @abc.abstractmethod
    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Write whole points (vectors and payload), replacing points with the same id."""

    @abc.abstractmethod
    def update(self, collection: str, points: Sequence[Point]) -> None:
        """Replace some vectors and the whole payload of existing points, keeping their other
        vectors. A point with no vectors gets its payload replaced only."""

    @abc.abstractmethod
    def delete_points(self, collection: str, ids: Sequence[PointId]) -> None:
        """Delete the points with these ids (ids that are not there are no error)."""

    @abc.abstractmethod
    def retrieve(self, collection: str, ids: Sequence[PointId], *,
                 payload: bool | Sequence[str] = True,
                 vectors: bool | Sequence[str] = False) -> list[Record]:
        """The points with these ids that exist."""

    @abc.abstractmethod
    def scroll(self, collection: str, *, limit: int, offset: PointId | None = None,
               payload: bool | Sequence[str] = True, exclude: Sequence[str] = (),
               vectors: bool | Sequence[str] = False,
               filter: models.Filter | None = None) -> tuple[list[Record], PointId | None]:
        """A page of points in id order and the offset of the next page (None at the end)."""

    @abc.abstractmethod
    def count(self, collection: str) -> int:
        """Number of points."""

    @abc.abstractmethod
    def query(self, collection: str, probes: Sequence[Probe], *, limit: int,
              filter: models.Filter | None = None) -> list[list[Hit]]:
        """Each probe's ``limit`` nearest points, best first, in one call, without payloads.
        Fusing several lists is the query path's (``qinb.query``), not the engine's, so that
        ties are ranked the same way on every engine."""

    @abc.abstractmethod
    def scores(self, collection: str, probes: Sequence[Probe],
               ids: Sequence[PointId]) -> dict[str, dict[PointId, float]]:
        """Each probe's own score for each of these points, in one call (a point a probe does
        not reach, such as a sparse vector with no index in common, has none)."""

    def finish(self, collection: str, progress: bool = True) -> None:  # noqa: B027
        """After a large write: build what makes queries fast (an index), if the engine needs it."""

    def close(self) -> None:  # noqa: B027
        """Release the engine (locks, files, connections)."""

    @abc.abstractmethod
    def facet(self, collection: str, key: str, kind: str, *, limit: int) -> list[tuple[Any, int]]:
        """Up to ``limit`` values of a payload field over the whole collection, each with how
        many points hold it, most common first. ``kind`` ("keyword", "integer" or "bool") is the
        payload index made for it where the engine needs one."""

    @abc.abstractmethod
    def extent(self, collection: str, key: str, kind: str) -> tuple[float, float] | None:
        """The lowest and highest value of a numeric payload field (``kind`` "integer" or
        "float") over the whole collection; None when no point holds a number there."""

    def pages(self, collection: str, *, page: int = 1024, payload: bool | Sequence[str] = True,
              vectors: bool | Sequence[str] = False, offset: PointId | None = None,
              filter: models.Filter | None = None
              ) -> Iterator[tuple[list[Record], PointId | None]]:
        """Every point (that ``filter`` matches), page by page, with the offset that resumes
        after each page."""
        while True:
            records, offset = self.scroll(collection, limit=page, offset=offset, payload=payload,
                                          vectors=vectors, filter=filter)
            if records:
                yield records, offset
            if offset is None:
                return

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where()!r})"
