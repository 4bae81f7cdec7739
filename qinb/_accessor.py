"""``df.qdrant``: one-line delegation to the plain functions; no state on the accessor. Registered
on pandas DataFrames, and on polars DataFrames and LazyFrames where polars is installed."""

from __future__ import annotations

import importlib.util
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


class PolarsNamespace:
    """``df.qdrant`` on a polars DataFrame or LazyFrame: ``.upsert`` streams it in a piece at a
    time; ``.search`` returns a pandas DataFrame of hits with their payload."""

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

    pl.api.register_dataframe_namespace("qdrant")(PolarsNamespace)
    pl.api.register_lazyframe_namespace("qdrant")(PolarsNamespace)
