"""Reading a collection back out as a table: its payload (the source rows' columns) indexed by
the source rows' labels, with its vectors on request; page by page, so that a collection of
millions of points streams to a Parquet file in little memory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.errors import ArgumentError, StoreError
from qinb.query import to_filter
from qinb.store import ROW_KEY, Record, Store, as_store, require, saved_specs, split_row

__all__ = ["read"]

PAGE = 4096  # points read at a time
VECTOR_PREFIX = "vector_"  # a vector's column is "vector_<name>": never a payload column's name


def read(collection: str, *, columns: Sequence[str] | None = None,
         vectors: bool | Sequence[str] = False,
         filter: models.Filter | Mapping[str, Any] | None = None,
         client: Store | QdrantClient | None = None,
         to: Literal["pandas", "arrow", "polars"] | str | Path = "pandas",
         progress: bool = True) -> Any:
    """A collection's points as a table: their payload, indexed by the source rows' labels.

    Parameters
    ----------
    collection : str
    columns : list of str, optional
        Payload columns to read; default all (qinb's own bookkeeping keys are left out).
    vectors : bool or list of str
        Also read these named vectors (all with True), one column each, named
        ``vector_<name>`` so that no payload column is replaced (a vector ``"text"`` made from
        the column ``"text"`` comes back beside it): a dense vector as a float32 array, a
        chunked one as a matrix (a row per passage), BM25 as a dict of ``indices`` and
        ``values``.
    filter : dict or models.Filter, optional
        Only the points that match, as in :func:`qinb.search`.
    client : store or QdrantClient, optional
    to : {"pandas", "arrow", "polars"} or path
        The kind of table returned; or a ``.parquet`` path, written a page at a time (the
        collection is never whole in memory) to a temporary file beside it that replaces the
        path only once complete, so a failed export leaves an earlier file there as it was;
        the path is returned.
    progress : bool
        Show a progress bar over the points.

    Examples
    --------
    >>> qinb.read("docs").head()
    >>> qinb.read("docs", to="docs.parquet")          # any size
    PosixPath('docs.parquet')
    >>> qinb.read("docs", vectors=["text"]).columns   # the payload, then each vector
    Index(['text', 'vector_text'], dtype='object')
    >>> again = qinb.upsert(qinb.read("docs"), "docs-copy", vectors=specs)   # embeds nothing new
    """
    store = as_store(client)
    require(store, collection)
    shape = store.shape(collection)
    _, id_column = saved_specs(store, collection)
    names = _vector_names(vectors, [*shape.dense, *sorted(shape.sparse)], collection)
    if id_column is not None and columns is not None:
        columns = [c for c in columns if c != id_column]  # it is the index
    pages = _pages(store, collection, columns, names, to_filter(filter), id_column, progress)
    if isinstance(to, Path) or (isinstance(to, str) and to not in ("pandas", "arrow", "polars")):
        return _to_parquet(pages, _target(to))
    frames = list(pages)
    frame = pd.concat(frames) if len(frames) > 1 else frames[0] if frames else _frame([], (), ())
    if to == "pandas":
        return frame
    import pyarrow as pa

    table = pa.Table.from_pandas(_arrow_ready(frame), preserve_index=True)
    if to == "arrow":
        return table
    import polars as pl

    return pl.from_arrow(table)


def _vector_names(vectors: bool | Sequence[str], have: list[str], collection: str) -> list[str]:
    if vectors is True:
        return have
    if vectors is False:
        return []
    asked = [vectors] if isinstance(vectors, str) else list(vectors)
    missing = [n for n in asked if n not in have]
    if missing:
        raise ArgumentError(f"collection {collection!r} has no vector {missing[0]!r}; its vectors "
                            f"are {', '.join(have)}")
    return asked


def _pages(store: Store, collection: str, columns: Sequence[str] | None, names: list[str],
           flt: models.Filter | None, id_column: str | None,
           progress: bool) -> Iterator[pd.DataFrame]:
    from qinb.progress import progress_bar

    payload: bool | list[str] = True if columns is None else [*columns, ROW_KEY]
    total = store.count(collection) if flt is None else None
    with progress_bar(total=total, desc=f"reading {collection!r}", unit="point",
              disable=not progress or (total is not None and total < PAGE)) as bar:
        for records, _ in store.pages(collection, page=PAGE, payload=payload,
                                      vectors=names or False, filter=flt):
            bar.update(len(records))
            yield _frame(records, columns or (), names, id_column)


def _frame(records: Sequence[Record], columns: Sequence[str], names: Sequence[str],
           id_column: str | None = None) -> pd.DataFrame:
    """A page of points as rows: payload columns (in ``columns``' order when given), then the
    vectors asked for, indexed by the source rows' labels (the point id where there is none):
    the values of the id column, which names the index and is not repeated as a column."""
    rows, labels = [], []
    for record in records:
        label, row = split_row(record.payload or {}, record.id)
        row.pop(id_column or "", None)
        labels.append(label)
        row.update({VECTOR_PREFIX + n: _vector(record.vectors.get(n)) for n in names})
        rows.append(row)
    vector_columns = [VECTOR_PREFIX + n for n in names]
    frame = pd.DataFrame.from_records(rows, columns=None if rows else [*columns, *vector_columns])
    if columns:
        frame = frame.reindex(columns=[*columns, *vector_columns])
    frame.index = pd.Index(labels, dtype=object if not labels else None, tupleize_cols=False,
                           name=id_column)
    return frame


def _vector(vector: Any) -> Any:
    if isinstance(vector, models.SparseVector):
        return {"indices": list(vector.indices), "values": list(vector.values)}
    return None if vector is None else np.asarray(vector, dtype=np.float32)


def _arrow_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Matrices (a chunked vector's passages) as lists of rows, which Arrow can hold."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, np.ndarray) and v.ndim == 2).any():
            out[column] = out[column].map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)
    return out


def _target(to: str | Path) -> Path:
    """The Parquet file an export writes, refused before anything is read when it cannot be."""
    path = Path(to)
    if path.suffix.lower() != ".parquet":
        raise ArgumentError(
            f"to={str(to)!r}: qinb.read returns 'pandas', 'arrow' or 'polars', or writes a "
            "Parquet file whose name ends in .parquet; for CSV, qinb.read(...).to_csv(path)")
    if path.is_dir():
        raise ArgumentError(f"to={str(to)!r} is a directory: name the file to write in it, "
                            f"such as {str(path / 'points.parquet')!r}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ArgumentError(f"to={str(to)!r}: {str(parent)!r} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise StoreError(f"cannot write {str(path)!r}: no permission to write in "
                                 f"{str(parent)!r}; choose another place")
            break
    return path


def _to_parquet(pages: Iterator[pd.DataFrame], path: Path) -> Path:
    """Write the pages to one Parquet file, each as a row group, in one schema: the first
    page's, with a column that first comes later, or whose type widens, refused by name. The
    pages go to a temporary file beside ``path``, renamed onto it once whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    partial = Path(name)
    writer = None
    schema = None
    try:
        for frame in pages:
            table = pa.Table.from_pandas(_arrow_ready(frame), preserve_index=True)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(str(partial), schema)
            else:
                table = _conform(table, schema)
            writer.write_table(table)
        if writer is None:  # no points: a file with no rows
            pq.write_table(pa.Table.from_pandas(_frame([], (), ())), str(partial))
        else:
            writer.close()
            writer = None
        os.replace(partial, path)
    except OSError as exc:
        raise StoreError(f"writing {str(path)!r} failed ({exc.strerror or exc}); the file that "
                         "was there before, if any, is unchanged") from exc
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(OSError):
            partial.unlink()
    return path


def _conform(table: Any, schema: Any) -> Any:
    """A later page in the first page's schema (a column missing on this page is null)."""
    import pyarrow as pa

    extra = [n for n in table.schema.names if n not in schema.names]
    if extra:
        raise ArgumentError(
            f"column {extra[0]!r} first appears after the first {PAGE} points, so it is not in "
            "the Parquet file's schema; pass columns=[...] naming every column to keep")
    arrays = [table.column(n) if n in table.schema.names else pa.nulls(len(table), f.type)
              for n, f in zip(schema.names, schema, strict=True)]
    try:
        return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema, strict=True)],
                                    schema=schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ArgumentError(f"a later page of points does not fit the first page's column "
                            f"types ({exc}); pass columns=[...] to read fewer") from exc
