"""``df.qdrant``: one-line delegation to the plain functions; no state on the accessor. Registered
on pandas DataFrames, on polars DataFrames and LazyFrames where polars is installed, and on Dask
DataFrames once ``dask.dataframe`` is imported (before or after qinb)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pandas as pd
import wrapt

from qinb import _search, ingest

M = TypeVar("M", bound=Callable[..., Any])


def _same_as(function: Callable[..., Any], *filled: str) -> Callable[[M], M]:
    """Show ``function``'s parameters and docstring on the accessor method (``df.qdrant.upsert?``
    and Shift-Tab), less those the accessor fills in (the table itself)."""

    def wrap(method: M) -> M:
        signature = inspect.signature(function)
        self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        kept = [p for p in signature.parameters.values() if p.name not in filled]
        method.__signature__ = signature.replace(parameters=[self, *kept])  # type: ignore[attr-defined]
        method.__doc__ = f"{(method.__doc__ or '').strip()}\n\n{inspect.getdoc(function) or ''}"
        return method

    return wrap


@pd.api.extensions.register_dataframe_accessor("qdrant")
class QdrantAccessor:
    """Qdrant search for this DataFrame: ``df.qdrant.upsert``, ``.search``, ``.to_points``."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    @_same_as(ingest.upsert, "df")
    def upsert(self, collection: str, **kwargs: Any) -> ingest.UpsertReport:
        """Same as :func:`qinb.upsert` with this DataFrame."""
        return ingest.upsert(self._df, collection, **kwargs)

    @_same_as(ingest.to_points, "df")
    def to_points(self, **kwargs: Any) -> list[Any]:
        """Same as :func:`qinb.to_points` with this DataFrame."""
        return ingest.to_points(self._df, **kwargs)

    @_same_as(_search.search, "df")
    def search(self, collection: str, query: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Same as :func:`qinb.search`; ``like=`` may be a row label of this DataFrame."""
        return _search.search(collection, query, df=self._df, **kwargs)

    def widget(self, collection: str, *, client: Any = None, limit: int = 12,
               secrets: Mapping[str, str] | None = None, queries: pd.Series | None = None,
               qrels: pd.DataFrame | None = None, fetch_urls: bool | None = None) -> Any:
        """Same as :func:`qinb.widget`: a search widget whose hits are this DataFrame's rows
        (ipywidgets is imported only now, so its parameters are spelled out here)."""
        from qinb.widgets import widget

        return widget(collection, df=self._df, client=client, limit=limit, secrets=secrets,
                      queries=queries, qrels=qrels, fetch_urls=fetch_urls)


class SourceNamespace:
    """``df.qdrant`` on a polars DataFrame or LazyFrame, or a Dask DataFrame: ``.upsert``
    streams it in a piece (or partition) at a time; ``.search`` returns a pandas DataFrame of
    hits with their payload."""

    def __init__(self, df: Any) -> None:
        self._df = df

    @_same_as(ingest.upsert, "df")
    def upsert(self, collection: str, **kwargs: Any) -> ingest.UpsertReport:
        """Same as :func:`qinb.upsert` with this frame."""
        return ingest.upsert(self._df, collection, **kwargs)

    @_same_as(_search.search, "df")
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


# importing dask.dataframe takes seconds: qinb does not, but registers when the user does (wrapt
# is one of qinb's own dependencies, so Dask installed later still gets df.qdrant)
if "dask.dataframe" in sys.modules:
    _register_dask()
else:
    wrapt.register_post_import_hook(_register_dask, "dask.dataframe")
