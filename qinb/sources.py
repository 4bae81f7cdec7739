"""Where an upsert's rows come from: a pandas DataFrame, or a table read a piece at a time (polars,
Arrow, Parquet, CSV and JSON Lines files, an iterable of frames), so that a source bigger than
memory goes in with memory to spare.

Each piece is a pandas DataFrame indexed by its rows' labels: a pandas frame keeps its own index;
any other source's rows are labelled by their position in the source, the same labels (and point
ids) a pandas frame with a RangeIndex gets.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from qinb.errors import ArgumentError, MissingDependencyError

__all__ = ["FORMATS", "PIECE_ROWS", "Source", "open_source"]

PIECE_ROWS = 16_384  # rows read from a streamed source at a time
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv",
           ".jsonl": "json", ".ndjson": "json", ".json": "json"}


@dataclass
class Source:
    """Rows to upsert, as pandas pieces.

    ``whole`` is True for a pandas DataFrame, which is checked whole before anything is written;
    a streamed source is checked a piece at a time. ``total`` is the number of rows when the
    source knows it without reading them (a Parquet file's metadata does, a CSV file does not).
    """

    pieces: Iterator[pd.DataFrame]
    total: int | None
    kind: str
    whole: bool = False
    # lines a reader skipped as it read them (a CSV line of the wrong number of fields, with
    # errors="skip"): (label, reason), taken by the upsert as failed rows
    skipped: list[tuple[str, str]] = field(default_factory=list)


def open_source(data: Any, columns: Sequence[str] | None = None, *,
                by_position: bool = False, skip_lines: bool = False) -> Source:
    """The rows of ``data``, reading only ``columns`` (all when None) where the source can.
    With ``by_position`` (no id column: a row's position is its id), a source that gives its
    rows in a different order from one run to the next is refused. With ``skip_lines``, a CSV
    line the reader cannot split into the file's columns is left out and listed in
    ``Source.skipped``; without, it stops the read, named by its line."""
    if isinstance(data, pd.DataFrame):
        return Source(iter([data]), len(data), "pandas DataFrame", whole=True)
    if isinstance(data, (str, os.PathLike)):
        return _files(data, columns, skip_lines)
    module = type(data).__module__.split(".")[0]
    from qinb.ingest._dask import is_dask, partitions

    if is_dask(data):
        return Source(partitions(data, columns), None, "Dask DataFrame")
    if module == "polars":
        return _polars(data, columns, by_position)
    if module == "pyarrow":
        return _arrow(data, columns)
    if isinstance(data, Iterable) and not isinstance(data, (bytes, dict, pd.Series)):
        sized = isinstance(data, (list, tuple)) and all(isinstance(d, pd.DataFrame) for d in data)
        total = sum(len(d) for d in data) if sized else None
        return Source(_each(data, columns, by_position), total, "iterable of frames")
    raise ArgumentError(
        f"upsert takes a pandas or polars DataFrame, a polars LazyFrame, a pyarrow Table, "
        f"RecordBatchReader or Dataset, a path or glob of Parquet, CSV or JSON Lines files, or an "
        f"iterable of DataFrames; not a {type(data).__name__}")


def _each(frames: Iterable[Any], columns: Sequence[str] | None, by_position: bool) -> Iterator[pd.DataFrame]:
    """The pieces of each item of an iterable: pandas frames keep their index; other items are
    numbered on from the rows before them."""
    offset = 0
    for number, item in enumerate(frames, 1):
        if not _is_table(item):
            raise ArgumentError(
                f"an iterable passed to upsert must hold DataFrames (pandas or polars) or Arrow "
                f"tables; item {number} is a {type(item).__name__}")
        for piece in open_source(item, columns, by_position=by_position).pieces:
            if not isinstance(item, pd.DataFrame):
                piece.index = pd.RangeIndex(offset, offset + len(piece))
            offset += len(piece)
            yield piece


def _is_table(item: Any) -> bool:
    return isinstance(item, pd.DataFrame) or type(item).__module__.split(".")[0] in ("polars",
                                                                                   "pyarrow")


def _need(library: str, extra: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(library)
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs {library.split('.')[0]}, which is not installed: "
            f"pip install 'qinb[{extra}]'") from None


def _numbered(batches: Iterable[Any], empty: Any) -> Iterator[pd.DataFrame]:
    """Arrow record batches (of any size: a Parquet file's row groups, a reader's batches) as
    pandas pieces of PIECE_ROWS rows, labelled by position; one empty piece (with the columns)
    when there are no rows."""
    import pyarrow as pa

    offset = 0
    held: list[Any] = []
    rows = 0

    def position() -> int:  # rows read so far, for an error part way
        return offset + rows

    for batch in itertools.chain(_readable(batches, position), [None]):
        if batch is not None:
            held.append(batch)
            rows += batch.num_rows
        while rows >= PIECE_ROWS or (batch is None and rows):
            table = pa.Table.from_batches(held, schema=held[0].schema)
            piece = table.slice(0, PIECE_ROWS).to_pandas()
            if piece.index.name is not None:  # a named index pandas wrote (qinb.read's ids)
                piece = piece.reset_index()
            rest = table.slice(PIECE_ROWS)
            held, rows = rest.to_batches(), rest.num_rows
            piece.index = pd.RangeIndex(offset, offset + len(piece))
            offset += len(piece)
            yield piece
    if offset == 0:
        yield empty.to_pandas()


def _readable(batches: Iterable[Any], done: Callable[[], int]) -> Iterator[Any]:
    """The batches, with a file that turns out unreadable part way (a CSV column whose type
    changes after the first block, a truncated file) named in qinb's words."""
    import pyarrow as pa

    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise ArgumentError(
                f"the source could not be read{f' past row {done()}' if done() else ''} "
                f"({type(exc).__name__}: {exc}). "
                "For a CSV file whose column changes type part way, convert it to Parquet with "
                "explicit types, or pass a polars LazyFrame (pl.scan_csv with "
                "schema_overrides=)") from exc
        yield batch


def _arrow(data: Any, columns: Sequence[str] | None) -> Source:
    pa = _need("pyarrow", "arrow", "an Arrow source")
    ds = _need("pyarrow.dataset", "arrow", "an Arrow source")
    cols = None if columns is None else list(columns)
    if isinstance(data, pa.Table):
        table = data if cols is None else data.select(_present(cols, data.schema.names))
        return Source(_numbered(table.to_batches(max_chunksize=PIECE_ROWS), table.slice(0, 0)),
                      table.num_rows, "Arrow Table")
    if isinstance(data, pa.RecordBatch):
        return _arrow(pa.Table.from_batches([data]), columns)
    if isinstance(data, pa.RecordBatchReader):
        schema = data.schema
        keep = None if cols is None else _present(cols, schema.names)
        batches = (b if keep is None else b.select(keep) for b in data)
        empty = schema.empty_table() if keep is None else schema.empty_table().select(keep)
        return Source(_numbered(batches, empty), None, "Arrow RecordBatchReader")
    if isinstance(data, ds.Dataset):
        return _dataset(data, cols, "Arrow Dataset")
    raise ArgumentError(f"upsert takes a pyarrow Table, RecordBatchReader or Dataset, not a "
                        f"{type(data).__name__}")


def _present(columns: list[str], names: Sequence[str]) -> list[str]:
    """``columns`` in the source's order; a missing one is named by the checks that follow
    (with the columns there are), so it is left out here."""
    return [n for n in names if n in columns]


def _dataset(dataset: Any, columns: list[str] | None, kind: str) -> Source:
    import pyarrow.dataset as ds

    keep = None if columns is None else _present(columns, dataset.schema.names)
    # a Parquet file's row count is in its metadata; a CSV or JSON file would be read to count
    parquet = isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format,
                                                                        ds.ParquetFileFormat)
    total = dataset.count_rows() if parquet else None
    batches = dataset.to_batches(columns=keep, batch_size=PIECE_ROWS)
    empty = dataset.schema.empty_table()
    return Source(_numbered(batches, empty if keep is None else empty.select(keep)), total, kind)


def _files(path: str | os.PathLike[str], columns: Sequence[str] | None, skip_lines: bool
           ) -> Source:
    text = os.fspath(path)
    if any(c in text for c in "*?["):
        files = sorted(glob.glob(text, recursive=True))
    elif Path(text).is_dir():
        files = sorted(str(p) for p in Path(text).rglob("*") if p.suffix.lower() in FORMATS)
    else:
        files = [text] if Path(text).exists() else []
    if not files:
        raise ArgumentError(f"no file matches {text!r}: give a path or glob of Parquet, CSV or "
                            "JSON Lines files")
    formats = {FORMATS.get(Path(f).suffix.lower()) for f in files}
    if None in formats or len(formats) > 1:
        odd = next((f for f in files if Path(f).suffix.lower() not in FORMATS), files[-1])
        raise ArgumentError(
            f"{text!r} matches files qinb cannot read together ({odd!r} among them): give files of "
            f"one format, named {', '.join(sorted(FORMATS))}")
    _need("pyarrow.dataset", "arrow", "reading Parquet, CSV or JSON Lines files")
    fmt = str(formats.pop())
    # every file is opened first: one that cannot be read is named before anything is written
    lines = _Lines([] if skip_lines else None)
    opened = [_open(f, fmt, lines) for f in files]
    first = opened[0].schema
    keep = list(first.names) if columns is None else _present(list(columns), first.names)
    for name, dataset in zip(files, opened, strict=True):
        _text(name, dataset.schema, keep, fmt)
    if fmt == "parquet":  # each file's schema is in its footer: checked up front too
        for name, dataset in zip(files[1:], opened[1:], strict=True):
            _same_columns(first, dataset.schema, keep, name, files[0])
    total = sum(d.count_rows() for d in opened) if fmt == "parquet" else None  # footers read
    where = files[0] if len(files) == 1 else f"{len(files)} files"
    source = Source(_numbered(_each_file(files, opened, keep, fmt, lines),
                              first.empty_table().select(keep)), total, f"{fmt} ({where})")
    if lines.skipped is not None:
        source.skipped = lines.skipped
    return source


class _Lines:
    """The CSV reader's handler of a line it cannot split into the file's columns: listed and
    left out (``skipped`` given), or remembered and the read stopped, so that the error can
    name the line (pyarrow's own names the text but not where it is)."""

    def __init__(self, skipped: list[tuple[str, str]] | None) -> None:
        self.skipped = skipped
        self.name = ""
        self.last: int | None = None

    def __call__(self, row: Any) -> str:
        self.last = row.number
        if self.skipped is None:
            return "error"
        where = f"line {row.number:,}" if row.number is not None else "a line"
        self.skipped.append((f"{Path(self.name).name} {where}",
                             f"has {row.actual_columns} fields where the file has "
                             f"{row.expected_columns} columns: {row.text[:80]!r}"))
        return "skip"


def _open(name: str, fmt: str, lines: _Lines) -> Any:
    import pyarrow.csv as csv
    import pyarrow.dataset as ds

    lines.name, lines.last = name, None
    # the column types are read from the start of a CSV file: a line skipped there is skipped
    # (and listed) again when the rows are read
    skip = (lambda row: "skip") if lines.skipped is not None else lines
    try:
        dataset = ds.dataset(name, format=ds.CsvFileFormat(
            parse_options=csv.ParseOptions(invalid_row_handler=skip)) if fmt == "csv" else fmt)
        if fmt == "parquet":
            dataset.count_rows()  # its footer: a truncated or empty file fails here
        return dataset
    except Exception as exc:  # pyarrow says what is wrong with the file; qinb says which file
        line = lines.last if lines.last is not None else (
            _bad_line(name, fmt) if fmt != "parquet" else None)
        raise ArgumentError(
            f"file {name!r} cannot be read as {fmt}{f' at line {line:,}' if line else ''} "
            f"({type(exc).__name__}: {exc}); nothing was written. Fix or remove the file and "
            "run the upsert again") from exc


def _text(name: str, schema: Any, keep: Sequence[str], fmt: str) -> None:
    """A CSV or JSON Lines file is UTF-8 text: pyarrow reads a column holding bytes that are
    not as binary, which no check of a text column would explain."""
    import pyarrow as pa

    if fmt == "parquet" or not any(pa.types.is_binary(schema.field(c).type) for c in keep):
        return
    line = _bad_line(name, fmt)
    raise ArgumentError(
        f"file {name!r} is not UTF-8 text{f' at line {line:,}' if line else ''}: save it as "
        "UTF-8 (iconv -f <its encoding> -t utf-8), or read it with pandas.read_csv(..., "
        "encoding=) and upsert the frame; nothing was written")


def _kind(arrow_type: Any) -> str:
    """What a column holds, as the checks of a frame see it: a wider or narrower integer, or
    a large string, holds the same kind of value."""
    import pyarrow as pa

    for kind, test in (("text", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
                        or pa.types.is_string_view(t)),
                       ("number", lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)
                        or pa.types.is_decimal(t)),
                       ("null", pa.types.is_null)):
        if test(arrow_type):
            return kind
    return str(arrow_type)


def _same_columns(first: Any, schema: Any, keep: Sequence[str], name: str, first_name: str) -> None:
    """A later file has the columns read from the first one, holding the same kinds of value:
    an int column where the first file has text would otherwise be read as digits."""
    for column in keep:
        if column not in schema.names:
            raise ArgumentError(
                f"file {name!r} has no column {column!r}, which {first_name!r} has: the files "
                "of one upsert need the same columns")
        a, b = _kind(first.field(column).type), _kind(schema.field(column).type)
        if a != b and "null" not in (a, b):
            raise ArgumentError(
                f"column {column!r} holds {schema.field(column).type} in file {name!r} but "
                f"{first.field(column).type} in {first_name!r}: the files of one upsert need "
                "the same column types. Convert the column in one of them (for text: "
                "df[column].astype(str)), or upsert them apart")


def _each_file(files: Sequence[str], opened: Sequence[Any], keep: list[str], fmt: str,
               lines: _Lines) -> Iterator[Any]:
    """Each file's record batches in turn, cast to the first file's types; an error names the
    file and, for JSON Lines, the line."""
    import pyarrow as pa

    target = opened[0].schema
    target = pa.schema([target.field(c) for c in keep])
    for name, dataset in zip(files, opened, strict=True):
        _same_columns(target, dataset.schema, keep, name, files[0])
        rows = 0
        lines.name, lines.last = name, None
        batches = _batches(name, dataset, keep, fmt, lines)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as exc:
                line = lines.last if lines.last is not None else (
                    _bad_line(name, fmt) if fmt != "parquet" else None)
                at = f" at line {line:,}" if line else f" past its row {rows:,}" if rows else ""
                raise ArgumentError(f"file {name!r} could not be read{at} "
                                    f"({type(exc).__name__}: {exc})") from exc
            rows += batch.num_rows
            if batch.schema.equals(target):
                yield batch
                continue
            try:
                yield batch.select(keep).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ArgumentError(
                    f"file {name!r} holds values the column types cannot take, as read from "
                    f"the start of the first file ({exc}): give the files of one upsert the "
                    "same column types all the way (convert the file to Parquet with explicit "
                    "types)") from exc


def _batches(name: str, dataset: Any, keep: list[str], fmt: str, lines: _Lines
             ) -> Iterator[Any]:
    """A file's record batches. A CSV or JSON Lines file is read by pyarrow's streaming reader
    on one thread, a block after another: how far a file with a bad line gets does not depend
    on read-ahead, and the blocks before it are written. (A generator: a file that fails as it
    is opened fails at the first batch, where the caller names it.)"""
    if fmt == "parquet":
        yield from dataset.to_batches(columns=keep, batch_size=PIECE_ROWS)
    elif fmt == "csv":
        import pyarrow.csv as csv

        yield from csv.open_csv(name, read_options=csv.ReadOptions(use_threads=False),
                                parse_options=csv.ParseOptions(invalid_row_handler=lines),
                                convert_options=csv.ConvertOptions(include_columns=keep))
    else:
        import pyarrow.json as pjson

        reader = pjson.open_json(name, read_options=pjson.ReadOptions(use_threads=False))
        yield from (batch.select(keep) for batch in reader)


def _bad_line(name: str, fmt: str) -> int | None:
    """The number of the first line of a file that is not UTF-8 text (or, in JSON Lines, not
    JSON): pyarrow counts rows from the start of the block it read, not of the file."""
    import json

    with open(name, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                text = line.decode()
                if fmt == "json" and text.strip():
                    json.loads(text)
            except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                return number
    return None


def _polars(data: Any, columns: Sequence[str] | None, by_position: bool) -> Source:
    pl = _need("polars", "polars", "a polars source")
    _need("pyarrow", "polars", "a polars source")  # polars hands its rows to pandas through Arrow
    if isinstance(data, pl.LazyFrame):
        if by_position and "maintain_order: false" in data.explain():
            # a group_by or unique that does not keep order gives its rows in a new order each
            # time: ids by position would name other rows on the next run
            raise ArgumentError(
                "this LazyFrame's rows come in a different order each time it runs (its plan "
                "has a group_by or unique without maintain_order=True), so their positions "
                "cannot be their ids: pass id_column= naming the column that identifies a row, "
                "or maintain_order=True to the group_by or unique")
        names = data.collect_schema().names()
        lazy = data if columns is None else data.select(_present(list(columns), names))
        empty = lazy.head(0).collect().to_arrow()
        batches = (b.to_arrow() for b in lazy.collect_batches(chunk_size=PIECE_ROWS,
                                                               maintain_order=True))
        return Source(_numbered(_record_batches(batches), empty), None, "polars LazyFrame")
    if isinstance(data, pl.DataFrame):
        frame = data if columns is None else data.select(_present(list(columns), data.columns))
        batches = (s.to_arrow() for s in frame.iter_slices(PIECE_ROWS))
        return Source(_numbered(_record_batches(batches), frame.head(0).to_arrow()), frame.height,
                      "polars DataFrame")
    raise ArgumentError(f"upsert takes a polars DataFrame or LazyFrame, not a {type(data).__name__}")


def _record_batches(tables: Iterable[Any]) -> Iterator[Any]:
    for table in tables:
        yield from table.to_batches()
