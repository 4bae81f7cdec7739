"""Managing what a store holds without qdrant-client: the collections there, what one holds,
deleting rows from it, dropping it whole."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.errors import ArgumentError
from qinb.objects import point_id
from qinb.query import to_filter
from qinb.spec import Bm25, Text
from qinb.store import PointId, Store, as_store, require, saved_specs

__all__ = ["CollectionInfo", "collections", "delete", "drop", "info"]

DELETE_BATCH = 1024  # points deleted per request


def collections(*, client: Store | QdrantClient | None = None) -> list[str]:
    """The names of the collections in a store (default: the embedded store).

    Examples
    --------
    >>> qinb.collections()
    ['docs', 'photos']
    """
    return sorted(as_store(client).collections())


def drop(collection: str, *, client: Store | QdrantClient | None = None) -> None:
    """Delete a collection, its points and the specs saved with it.

    Examples
    --------
    >>> qinb.drop("docs-old")
    """
    store = as_store(client)
    require(store, collection)
    store.delete(collection)


def delete(collection: str, rows: Iterable[Hashable] | None = None, *,
           filter: models.Filter | Mapping[str, Any] | None = None,
           client: Store | QdrantClient | None = None) -> int:
    """Delete rows from a collection, by their labels or by a payload filter; the number of
    points deleted.

    Parameters
    ----------
    collection : str
    rows : list of labels, optional
        The rows' labels, as hits and :func:`qinb.read` show them (the ``id_column`` values,
        or the index labels). Labels that are not stored are no error.
    filter : dict or models.Filter, optional
        Delete every point that matches, as in :func:`qinb.search`.

    Examples
    --------
    >>> qinb.delete("docs", ["doc-17", "doc-42"])
    2
    >>> qinb.delete("docs", filter={"status": "retired"})
    """
    store = as_store(client)
    require(store, collection)
    if (rows is None) == (filter is None):
        raise ArgumentError("qinb.delete takes rows= (row labels) or filter=, exactly one")
    if rows is not None:
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
            raise ArgumentError(f"rows= is a list of row labels, not a {type(rows).__name__}; "
                                f"for one row pass [{rows!r}]")
        ids = list(dict.fromkeys(point_id(r) for r in rows))
        stored = [r.id for start in range(0, len(ids), DELETE_BATCH)
                  for r in store.retrieve(collection, ids[start:start + DELETE_BATCH],
                                          payload=False)]
    else:
        stored = [r.id for records, _ in store.pages(collection, payload=False,
                                                     filter=to_filter(filter)) for r in records]
    delete_ids(store, collection, stored)
    return len(stored)


def delete_ids(store: Store, collection: str, ids: list[PointId]) -> None:
    """Delete these points, a batch at a time."""
    for start in range(0, len(ids), DELETE_BATCH):
        store.delete_points(collection, ids[start:start + DELETE_BATCH])


@dataclass
class CollectionInfo:
    """What a collection holds: its points, its named vectors and where it lives."""

    collection: str
    store: str
    points: int
    id_column: str | None
    vectors: pd.DataFrame  # per named vector: kind, column, model, size, chunked, storage

    def __str__(self) -> str:
        keyed = f"labelled by {self.id_column!r}" if self.id_column else "labelled by the index"
        with pd.option_context("display.width", 160):
            return (f"collection {self.collection!r} in {self.store}: {self.points} points, "
                    f"{keyed}\n{self.vectors.to_string()}")

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


def info(collection: str, *, client: Store | QdrantClient | None = None) -> CollectionInfo:
    """A collection's count, named vectors (kind, column, model, size, storage) and store.

    Examples
    --------
    >>> print(qinb.info("docs"))
    collection 'docs' in /home/me/.qinb/store: 120 points, labelled by the index
    """
    store = as_store(client)
    require(store, collection)
    specs, id_column = saved_specs(store, collection)
    shape = store.shape(collection)
    rows = {}
    for name, spec in specs.items():
        storage = ("on disk" if spec.on_disk else "in RAM") + (
            f" + {spec.quantization}" if isinstance(spec, Text) and spec.quantization else "")
        rows[name] = {
            "kind": spec.kind, "column": spec.column,
            "model": f"BM25 ({spec.language})" if isinstance(spec, Bm25) else spec.model,
            "size": shape.dense.get(name),
            "chunked": bool(isinstance(spec, Text) and spec.chunked), "storage": storage}
    vectors = pd.DataFrame.from_dict(rows, orient="index").rename_axis("vector")
    return CollectionInfo(collection, store.where(), store.count(collection), id_column, vectors)
