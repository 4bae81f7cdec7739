"""``qinb.copy``: a collection from one store to another, vectors, payloads and specs, never
re-embedding."""

from __future__ import annotations

from typing import Any

from qdrant_client import QdrantClient

from qinb.errors import ArgumentError, SpecConflictError, StoreError
from qinb.spec import scrub_metadata
from qinb.store.base import Point, Store

__all__ = ["copy"]


def copy(collection: str, *, to: Store | QdrantClient, source: Store | QdrantClient | None = None,
         name: str | None = None, batch_size: int = 256, progress: bool = True) -> int:
    """Copy a collection, with its vectors, payloads and specs, to another store.

    It moves an embedded collection up to a Qdrant server, cluster or Qdrant Cloud (or back)
    without embedding anything again. Points already copied with the same content are skipped,
    so a copy that was interrupted resumes where it stopped when run again.

    Parameters
    ----------
    collection : str
    to : store or QdrantClient
        Where to copy to, e.g. ``qinb.connect(url=..., api_key=...)``.
    source : store or QdrantClient, optional
        Where the collection is; default the embedded default store.
    name : str, optional
        Name at the destination; default the same.
    batch_size : int
        Points per read and write.
    progress : bool

    Returns
    -------
    int
        Points written (0 when the destination was already complete).

    Examples
    --------
    >>> server = qinb.connect(url="http://localhost:6333")
    >>> qinb.copy("products", to=server)
    """
    from qinb.progress import progress_bar
    from qinb.store import HASH_KEY, OBJECTS_KEY, as_store
    from qinb.store.collection import kept_as

    src, dst = as_store(source), as_store(to)
    name = name or collection
    if src is dst and name == collection:
        raise ArgumentError("copy needs another store (to=) or another name (name=)")
    shape = src.shape(collection)  # raises CollectionError naming the store
    metadata = scrub_metadata(shape.metadata)  # credentials an older qinb saved stay behind
    if not dst.exists(name):
        # vectors kept on disk or quantized are kept so there too (their saved specs say how)
        vectors = (metadata.get("qinb") or {}).get("vectors") or {}
        dst.create(name, shape.dense, sorted(shape.sparse), metadata, multi=sorted(shape.multi),
                   storage={n: kept_as(v) for n, v in vectors.items() if kept_as(v)})
    else:
        there = dst.shape(name)
        saved = (metadata.get("qinb") or {}).get("vectors")
        if (dict(there.dense), there.sparse, there.multi) != (dict(shape.dense), shape.sparse,
                                                              shape.multi) or (
                (scrub_metadata(there.metadata).get("qinb") or {}).get("vectors") != saved):
            raise SpecConflictError(
                f"{name!r} at {dst.where()} holds other vectors than {collection!r} at "
                f"{src.where()}; nothing was copied. Copy under another name with name=")
    written = 0
    total = src.count(collection)
    with progress_bar(total=total, desc=f"copying {collection!r}", unit="pt", disable=not progress) as bar:
        for records, _ in src.pages(collection, page=batch_size, vectors=True):
            there_now = {r.id: (r.payload.get(HASH_KEY), r.payload.get(OBJECTS_KEY)) for r in
                         dst.retrieve(name, [r.id for r in records], payload=[HASH_KEY, OBJECTS_KEY])}
            todo = [Point(r.id, r.vectors, r.payload) for r in records
                    if there_now.get(r.id) != (r.payload.get(HASH_KEY), r.payload.get(OBJECTS_KEY))
                    or r.payload.get(HASH_KEY) is None]
            if todo:
                try:
                    dst.upsert(name, todo)
                except Exception as exc:
                    raise StoreError(_failed(collection, dst, written, total, exc)) from exc
                written += len(todo)
            bar.update(len(records))
    dst.finish(name, progress)
    return written


def _failed(collection: str, dst: Store, written: int, total: int, exc: Any) -> str:
    return (f"copying {collection!r} to {dst.where()} failed after {written} of {total} points "
            f"({type(exc).__name__}: {exc}). Run the same copy again to resume; points already "
            "copied are skipped")
