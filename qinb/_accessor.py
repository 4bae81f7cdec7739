"""``df.qdrant``: one-line delegation to the plain functions; no state on the accessor. Registered
on pandas DataFrames, on polars DataFrames and LazyFrames where polars is installed, and on Dask
DataFrames once ``dask.dataframe`` is imported (before or after qinb)."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pandas as pd

from qinb import _search, ingest


@pd.api.extensions.register_dataframe_accessor("qdrant")
class QdrantAccessor:
    """Qdrant search for this DataFrame: ``df.qdrant.upsert``, ``.search``, ``.to_points``."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def upsert(self, collection: str, **kwargs: Any) -> ingest.UpsertReport:
        """Same as :func:`qinb.upsert` with this DataFrame."""
        return ingest.upsert(self._df, collection, **kwargs)

    def to_points(self, **kwargs: Any) -> list[Any]:
        """Same as :func:`qinb.to_points` with this DataFrame."""
        return ingest.to_points(self._df, **kwargs)

    def search(self, collection: str, query: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Same as :func:`qinb.search`; ``like=`` may be a row label of this DataFrame."""
        return _search.search(collection, query, df=self._df, **kwargs)

    def widget(self, collection: str, **kwargs: Any) -> Any:
        """Same as :func:`qinb.widget`: a search widget whose hits are this DataFrame's rows."""
        from qinb.widgets import widget

        return widget(collection, df=self._df, **kwargs)


class SourceNamespace:
    """``df.qdrant`` on a polars DataFrame or LazyFrame, or a Dask DataFrame: ``.upsert``
    streams it in a piece (or partition) at a time; ``.search`` returns a pandas DataFrame of
    hits with their payload."""

    def __init__(self, df: Any) -> None:
        self._df = df

    def upsert(self, collection: str, **kwargs: Any) -> ingest.UpsertReport:
        """Same as :func:`qinb.upsert` with this frame."""
        return ingest.upsert(self._df, collection, **kwargs)

    def search(self, collection: str, query: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Same as :func:`qinb.search` on the collection this frame went into."""
        return _search.search(collection, query, **kwargs)


if importlib.util.find_spec("polars") is not None:
    import polars as pl

    pl.api.register_dataframe_namespace("qdrant")(SourceNamespace)
    pl.api.register_lazyframe_namespace("qdrant")(SourceNamespace)


def _register_dask(module: Any = None) -> None:
    from dask.dataframe.extensions import register_dataframe_accessor

    register_dataframe_accessor("qdrant")(SourceNamespace)  # type: ignore[no-untyped-call]


# importing dask.dataframe takes seconds: qinb does not, but registers when the user does
if "dask.dataframe" in sys.modules:
    _register_dask()
elif importlib.util.find_spec("dask") is not None and importlib.util.find_spec("wrapt") is not None:
    import wrapt

    wrapt.register_post_import_hook(_register_dask, "dask.dataframe")
