"""qinb: search your DataFrames of text with Qdrant's Inference API, from a notebook.

>>> import qinb
>>> report = df.qdrant.upsert("docs", vectors={"text": qinb.Text("body"), "bm25": qinb.Bm25("body")})
>>> df.qdrant.search("docs", "planets of the solar system")
"""

from __future__ import annotations

import typing

from qinb import _accessor, cache, datasets, models
from qinb._evaluate import evaluate, query_scores
from qinb._explore import clusters, duplicates
from qinb._manage import CollectionInfo, collections, delete, drop, info
from qinb._read import read
from qinb._search import search
from qinb.errors import (
    ArgumentError,
    ClusterError,
    CollectionError,
    ColumnError,
    ColumnTypeError,
    InvalidRowsError,
    MissingDependencyError,
    ModelError,
    QinbError,
    QinbWarning,
    QueryError,
    SpecConflictError,
    StoreError,
    StoreLockedError,
)
from qinb.ingest import UpsertReport, to_points, upsert
from qinb.query import to_filter
from qinb.spec import Bm25, Image, Text
from qinb.store import ClientStore, EdgeStore, Store, connect, copy, default_path
from qinb.viz import plot_hits, plot_map, plot_scores
from qinb.viz_evaluation import plot_evaluation

if typing.TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"
# ipywidgets is imported only when a widget is asked for
_LAZY = {"SearchWidget": "qinb.widgets", "widget": "qinb.widgets"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qinb' has no attribute {name!r}")


__all__ = [
    "ArgumentError",
    "Bm25",
    "ClientStore",
    "ClusterError",
    "CollectionError",
    "CollectionInfo",
    "ColumnError",
    "ColumnTypeError",
    "EdgeStore",
    "Image",
    "InvalidRowsError",
    "MissingDependencyError",
    "ModelError",
    "QinbError",
    "QinbWarning",
    "QueryError",
    "SearchWidget",
    "SpecConflictError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "Text",
    "UpsertReport",
    "__version__",
    "cache",
    "clusters",
    "collections",
    "connect",
    "copy",
    "datasets",
    "default_path",
    "delete",
    "drop",
    "duplicates",
    "evaluate",
    "info",
    "models",
    "plot_evaluation",
    "plot_hits",
    "plot_map",
    "plot_scores",
    "query_scores",
    "read",
    "search",
    "to_filter",
    "to_points",
    "upsert",
    "widget",
]

del _accessor
