"""Where points live: one small interface (:class:`Store`), two engines.

- :class:`EdgeStore`: Qdrant Edge, Qdrant's engine in-process; the embedded default.
- :class:`ClientStore`: qdrant-client: a Qdrant server or cluster, Qdrant Cloud (with or without
  cloud inference), or qdrant-client's local mode.

Nothing outside this package knows which engine it talks to.
"""

from __future__ import annotations

from qinb.store._connect import as_store, close_all, connect, default_path
from qinb.store._copy import copy
from qinb.store.base import Hit, Point, PointId, Probe, Record, Shape, Store
from qinb.store.client import ClientStore
from qinb.store.collection import (
    dense_vectors,
    ensure_collection,
    require,
    sample_payloads,
    saved_specs,
    split_row,
)
from qinb.store.edge import EdgeStore

__all__ = [
    "HASH_KEY",
    "OBJECTS_KEY",
    "PASSAGES_KEY",
    "ROW_KEY",
    "ClientStore",
    "EdgeStore",
    "Hit",
    "Point",
    "PointId",
    "Probe",
    "Record",
    "Shape",
    "Store",
    "as_store",
    "close_all",
    "connect",
    "copy",
    "default_path",
    "dense_vectors",
    "ensure_collection",
    "require",
    "sample_payloads",
    "saved_specs",
    "split_row",
]

HASH_KEY = "_qinb_hash"  # hash of the payload qinb wrote
OBJECTS_KEY = "_qinb_objects"  # per named vector, the identity of the object its vector came from
ROW_KEY = "_qinb_row"  # the source row label
PASSAGES_KEY = "_qinb_passages"  # per chunked vector, the [start, end] of each passage in its text
