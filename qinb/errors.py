"""Every error qinb raises on purpose.

The tree::

    QinbError
    ├── ArgumentError (ValueError)         an argument qinb cannot use (vectors=, errors=, ...)
    ├── ColumnError (KeyError)             a column is missing, repeated, or named like qinb's own keys
    ├── ColumnTypeError (TypeError)        a column holds values a spec cannot embed
    ├── InvalidRowsError (ValueError)      some rows are empty or invalid (errors="raise"); .failed lists them
    ├── ModelError (LookupError)           unknown model, or its weights cannot be found or loaded
    ├── SpecConflictError (ValueError)     the specs disagree with the collection already stored
    ├── CollectionError (LookupError)      the collection is missing or was not written by qinb
    ├── QueryError (ValueError)            a query, filter or `like=` that cannot be run
    ├── StoreError (RuntimeError)          the store refused or failed a write; says what was written
    │   └── StoreLockedError               another process kept an embedded collection busy past the wait
    └── MissingDependencyError (ImportError)  an optional dependency is not installed

``QinbWarning`` is the base of qinb's warnings.
"""

from __future__ import annotations

from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ArgumentError",
    "ClusterError",
    "CollectionError",
    "ColumnError",
    "ColumnTypeError",
    "InvalidRowsError",
    "MissingDependencyError",
    "ModelError",
    "QinbError",
    "QinbWarning",
    "QueryError",
    "SpecConflictError",
    "StoreError",
    "StoreLockedError",
]


class QinbError(Exception):
    """Base class of every error qinb raises on purpose."""

    def __str__(self) -> str:
        # KeyError quotes its message; every qinb error reads as plain words
        return str(self.args[0]) if self.args else ""


class ArgumentError(QinbError, ValueError):
    """An argument of the wrong kind or value: ``vectors=`` that is not a dict of specs, a
    vector name a server would refuse, ``errors=`` other than "raise" or "skip"."""


class ColumnError(QinbError, KeyError):
    """A spec, ``payload=`` or ``id_column=`` names a column the DataFrame does not have, or the
    columns cannot become payload keys (repeated names, a MultiIndex, qinb's reserved names)."""


class ColumnTypeError(QinbError, TypeError):
    """A column holds values of a type its spec cannot embed (numbers for a text vector)."""


class InvalidRowsError(QinbError, ValueError):
    """Some rows cannot be embedded; ``failed`` is a DataFrame of row, column and reason."""

    def __init__(self, message: str, failed: pd.DataFrame) -> None:
        super().__init__(message)
        self.failed = failed


class ModelError(QinbError, LookupError):
    """The model name is unknown, or its weights are neither local nor downloadable."""


class SpecConflictError(QinbError, ValueError):
    """The vector specs disagree with the collection already stored; nothing was written."""


class CollectionError(QinbError, LookupError):
    """The collection does not exist, or carries no qinb specs to configure a search."""


class QueryError(QinbError, ValueError):
    """A query, filter, ``using=`` or ``like=`` that cannot be run against this collection."""


class StoreError(QinbError, RuntimeError):
    """The store failed or could not be reached; the message names it, the call and the status,
    and for a write how many points were written. ``uncertain`` is True when a write's answer
    was lost, so the failed request may have been written too."""

    def __init__(self, message: str, uncertain: bool = False) -> None:
        super().__init__(message)
        self.uncertain = uncertain


class ClusterError(QinbError, RuntimeError):
    """A Dask cluster failed during an upsert (its scheduler or workers lost); the message says
    how many points were written."""


class StoreLockedError(StoreError):
    """Another process held an embedded collection (or a local-mode store) longer than qinb waits."""


class MissingDependencyError(QinbError, ImportError):
    """An optional dependency is missing; the message gives the ``pip install`` line."""


class QinbWarning(UserWarning):
    """Base class of qinb's warnings."""


def warn(message: str) -> None:
    """Issue a QinbWarning attributed to the user's code: the first caller outside qinb (a
    notebook cell), however deep in qinb it was raised and whether through ``df.qdrant``."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 2  # stacklevel 1 is this function, 2 its caller: the frame above
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, QinbWarning, stacklevel=level)


def require(module: str, extra: str) -> None:
    """Raise MissingDependencyError unless ``module`` can be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"this needs the package {module!r}, which is not installed: "
            f'pip install "qinb[{extra}]"'
        )
