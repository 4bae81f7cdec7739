"""qinb: search your DataFrames of text with Qdrant's Inference API, from a notebook.

>>> import qinb
>>> report = df.qdrant.upsert("docs", vectors={"text": qinb.Text("body"), "bm25": qinb.Bm25("body")})
>>> df.qdrant.search("docs", "planets of the solar system")
"""

from __future__ import annotations

from qinb import _accessor, datasets, models
from qinb.errors import (
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
from qinb.search import search, to_filter
from qinb.spec import Bm25, Image, Text
from qinb.store import connect, default_path

__version__ = "0.1.0"

__all__ = [
    "Bm25",
    "CollectionError",
    "ColumnError",
    "ColumnTypeError",
    "Image",
    "InvalidRowsError",
    "MissingDependencyError",
    "ModelError",
    "QinbError",
    "QinbWarning",
    "QueryError",
    "SpecConflictError",
    "StoreError",
    "StoreLockedError",
    "Text",
    "UpsertReport",
    "__version__",
    "connect",
    "datasets",
    "default_path",
    "models",
    "search",
    "to_filter",
    "to_points",
    "upsert",
]

del _accessor
