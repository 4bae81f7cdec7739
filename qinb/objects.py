"""DataFrame cells to inference objects, payloads and point ids, with row-level checks.

A cell of a chunked text vector becomes :class:`Passages`: one inference object per passage,
with each passage's character span in the cell."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import math
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qinb.embed import Item, digest, document_item, image_content, image_item, object_key
from qinb.errors import ArgumentError, ColumnError, ColumnTypeError
from qinb.images import ImageCell, ImageCellError, is_url, load, load_urls
from qinb.payload import RESERVED_PREFIX, PayloadValueError, check_text, convert
from qinb.spec import Bm25, Image, Spec, Text

__all__ = ["Passages", "cell_digest", "cell_item", "cell_object", "check_cells", "check_columns",
           "check_frame", "check_vectors", "json_safe", "payload_cells", "payload_hash",
           "point_id"]

# the namespace of point ids made from non-integer index labels
ID_NAMESPACE = uuid.UUID("6b1f3f0e-6a0e-4c1e-9a43-1f1b6c0f5e21")
MAX_POINT_ID = 2**64  # Qdrant's ids are unsigned 64-bit integers or UUIDs
# what a Qdrant server takes as a vector name without escaping it in a URL path
VECTOR_NAME = re.compile(r"[\w.\-]{1,64}")


def check_vectors(vectors: Any) -> dict[str, Spec]:
    """``vectors=`` as a dict of name to spec, or ArgumentError saying how to write it."""
    example = "vectors={'text': qinb.Text('column')}"
    if isinstance(vectors, (Text, Bm25)):
        raise ArgumentError(f"vectors= takes a dict naming each vector, not one spec: {example}")
    if not isinstance(vectors, Mapping):
        raise ArgumentError(f"vectors= takes a dict of name to spec, not a "
                            f"{type(vectors).__name__}: {example}")
    if not vectors:
        raise ArgumentError(f"vectors= is empty: name at least one vector, e.g. {example}")
    for name, spec in vectors.items():
        if not isinstance(name, str) or not VECTOR_NAME.fullmatch(name):
            raise ArgumentError(
                f"vector name {name!r} cannot be used: use 1-64 letters, digits, '_', '-' or '.'")
        if not isinstance(spec, (Text, Bm25)):
            raise ArgumentError(f"vector {name!r} is a {type(spec).__name__}; use qinb.Text, "
                                f"qinb.Image or qinb.Bm25: {example}")
    return dict(vectors)


def check_frame(df: pd.DataFrame, columns: Sequence[Any]) -> None:
    """Raise ColumnError unless the frame's columns can become payload keys: one level, no
    repeated names, no two names alike as text, none starting with qinb's reserved prefix."""
    if isinstance(df.columns, pd.MultiIndex):
        raise ColumnError(
            "the DataFrame has MultiIndex columns; flatten them first, for example "
            "df.columns = ['_'.join(map(str, c)) for c in df.columns]")
    repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if repeated:
        raise ColumnError(f"the DataFrame has more than one column named {', '.join(repeated)}; "
                          "rename or drop the repeats (df.loc[:, ~df.columns.duplicated()])")
    as_text: dict[str, Any] = {}
    for column in columns:
        key = str(column)
        if key in as_text:
            raise ColumnError(
                f"columns {as_text[key]!r} and {column!r} would both be payload key {key!r}; "
                "rename one of them")
        as_text[key] = column
        if key.startswith(RESERVED_PREFIX):
            raise ColumnError(f"column {column!r} starts with {RESERVED_PREFIX!r}, which qinb "
                              "keeps for its own payload keys; rename it")


def payload_cells(df: pd.DataFrame, columns: Sequence[Any]) -> list[tuple[int, Any, str]]:
    """(position, column, reason) of the cells the payload conversion table refuses, and of the
    row labels (stored to name each row). Only object-like columns can hold such cells; the
    rest are numbers, dates or bools."""
    failed = unstorable(df.index, "index", "the row label cannot be stored: ")
    for column in columns:
        failed.extend(unstorable(df[column], column))
    return failed


def unstorable(values: pd.Series | pd.Index, column: Any, prefix: str = ""
               ) -> list[tuple[int, Any, str]]:
    """(position, column, reason) of the values the payload conversion table refuses."""
    if values.dtype.kind in "iufbmM":
        return []
    failed: list[tuple[int, Any, str]] = []
    for pos, value in enumerate(values.tolist()):
        if isinstance(value, str) and value.isascii():
            continue
        try:
            convert(value)
        except PayloadValueError as exc:
            failed.append((pos, column, f"{prefix}{exc}"))
        except RecursionError:
            failed.append((pos, column, f"{prefix}nested too deeply to store"))
    return failed


def check_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ColumnError naming the first missing column and its close matches."""
    for column in columns:
        if column not in df.columns:
            names = [str(c) for c in df.columns]
            close = difflib.get_close_matches(str(column), names, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ColumnError(
                f"{what} names column {column!r}, which the DataFrame does not have.{hint} "
                f"Columns: {', '.join(names)}"
            )


def check_cells(df: pd.DataFrame, name: str, spec: Spec, *, wire: bool = False
                ) -> tuple[dict[int, ImageCell], list[tuple[int, str, str]]]:
    """Check every cell of the spec's column: (position, column, reason) for the bad ones, keyed
    by row position (index labels may repeat). Image cells are read here, once, and returned by
    position; text cells are only checked (their objects are made chunk by chunk). With
    ``wire`` URLs are left for a server to fetch."""
    check_columns(df, [spec.column], f"vector {name!r}")
    series = df[spec.column]
    if isinstance(spec, Image):
        return _image_cells(series, spec, wire)
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(
        series.dtype
    ):
        raise ColumnTypeError(
            f"vector {name!r} ({spec.kind}) needs text, but column {spec.column!r} has dtype "
            f"{series.dtype}; convert it with df[{spec.column!r}].astype(str) if you mean its digits"
        )
    failed: list[tuple[int, str, str]] = []
    dense = isinstance(spec, Text)
    for pos, value in enumerate(series.tolist()):
        if _missing(value):
            failed.append((pos, spec.column, "missing text (NaN/None)"))
        elif not isinstance(value, str):
            failed.append((pos, spec.column, f"not text: {type(value).__name__} {value!r:.40}"))
        elif not value.strip():
            failed.append((pos, spec.column, "empty text"))
        elif reason := _unstorable_text(spec, value, dense):
            failed.append((pos, spec.column, reason))
    return {}, failed


@dataclass(frozen=True)
class Passages:
    """The passages of one cell of a chunked text vector: an inference object and a character
    span each, stored as one multivector; ``error`` says why the cell cannot be stored."""

    items: tuple[Item, ...]
    spans: tuple[tuple[int, int], ...]
    error: str | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(i.key for i in self.items)


def passages(spec: Text, text: str, digest: str) -> Passages:
    """A cell split into passages of ``spec.chunk_size`` of its model's tokens. The spans of
    the last SPLITS cells split are kept by the cell's ``digest``: identical cells are split
    once (a tokenizer-aware split of a 20k-word text takes a third of a second)."""
    from qinb.passages import max_passages, spans

    with _splits_lock:  # a Dask worker's threads share it
        found = _splits.get(digest)
        if found is not None:
            _splits.move_to_end(digest)
    if found is None:
        found = spans(text, spec.model, spec.chunk_size or 0, spec.chunk_overlap,
                      spec.runtime_options)
        with _splits_lock:
            _splits[digest] = found
            if len(_splits) > SPLITS:
                _splits.popitem(last=False)
    cap = max_passages(spec.size)
    if len(found) > cap:
        return Passages((), tuple(found), f"{len(found)} passages of {spec.chunk_size} tokens; a "
                        f"row holds at most {cap} ({spec.size}-d vectors): use a larger "
                        "chunk_size or split the text over several rows")
    return Passages(tuple(document_item(spec.document(text[s:e])) for s, e in found), tuple(found))


SPLITS = 1024  # cells whose passage spans are remembered (a few kB each)
_splits: OrderedDict[str, list[tuple[int, int]]] = OrderedDict()
_splits_lock = threading.Lock()


def cell_digest(spec: Spec, cell: str | ImageCell) -> str:
    """A short, stable name for the identity of a checked cell's inference object (model,
    content, options), or of a chunked cell's passages (the text and how it is split), as
    stored beside its vector to tell a changed cell. Made from the cell itself, before any
    object is made or any text split: an unchanged row costs a hash."""
    if isinstance(cell, ImageCell):
        key: tuple[str, ...] = object_key(spec.model, image_content(cell), spec.model_options)
    else:
        key = object_key(spec.model, cell, spec.model_options)
        if isinstance(spec, Text) and spec.chunked:
            key = (*key, f"passages of {spec.chunk_size}, overlap {spec.chunk_overlap}")
    return digest(key)[:24]


def cell_object(spec: Spec, cell: str | ImageCell, digest: str, wire: bool) -> Item | Passages:
    """The inference object of a checked cell (the passages of a chunked text vector's cell,
    whose ``digest`` is :func:`cell_digest`'s); an image as a server would receive it with
    ``wire``, else as its reference."""
    if isinstance(cell, ImageCell):
        assert isinstance(spec, Image)
        return cell_item(spec, cell, wire)
    if isinstance(spec, Text) and spec.chunked:
        return passages(spec, cell, digest)
    return document_item(spec.document(cell))


def _unstorable_text(spec: Spec, value: str, dense: bool) -> str | None:
    """Why a text cell cannot be stored (bad code points), or read by a dense model."""
    if not value.isascii() and (reason := check_text(value)):
        return reason
    # split, rather than a regex's search, reads a long text once (3x faster on 20k words)
    if dense and any(len(word) > LONG_WORD for word in value.split()):
        return unreadable(spec, value)
    return None


LONG_WORD = 100  # the most characters WordPiece reads as one word


def unreadable(spec: Spec, text: str) -> str | None:
    """Why a dense text model cannot read ``text``, nine tenths of it or more (its tokenizer
    makes one unknown token of each word over 100 characters: a cell without spaces is one
    token), or None."""
    from qinb.errors import ModelError
    from qinb.passages import window

    try:
        tokenizer = window(spec.model, spec.runtime_options).tokenizer
    except ModelError:
        return None  # the model's own error comes when it is loaded
    unknown = getattr(tokenizer.model, "unk_token", None)
    if unknown is None:
        return None
    encoded = tokenizer.encode(text, add_special_tokens=False)
    lost = sum(end - start for token, (start, end) in zip(encoded.tokens, encoded.offsets,
                                                          strict=True) if token == unknown)
    if lost * 10 <= len(text) * 9:  # a long word among others is only that word unread
        return None
    return (f"{lost:,} of its {len(text):,} characters are words {spec.model} cannot read "
            "(runs of over 100 characters without a space, read as one unknown token each), "
            "so nothing of them would be searchable: break the text up with spaces, or leave "
            "this column out of the dense vectors (Bm25 still indexes it)")


def _image_cells(series: pd.Series, spec: Image, wire: bool
                 ) -> tuple[dict[int, ImageCell], list[tuple[int, str, str]]]:
    from qinb.progress import progress_bar

    found: dict[int, ImageCell] = {}
    failed: list[tuple[int, str, str]] = []
    values = series.tolist()
    # the same path or URL in many rows is read once; URLs are fetched several at once (a
    # server fetches them itself)
    urls = [] if wire else list(dict.fromkeys(v for v in values if is_url(v)))
    known: dict[str, ImageCell | ImageCellError] = load_urls(urls) if urls else {}
    for pos, value in progress_bar(enumerate(values), total=len(values),
                                   desc=f"reading {spec.column!r}", unit="img",
                                   disable=len(values) < 50):
        if _missing(value):
            failed.append((pos, spec.column, "missing image (NaN/None)"))
            continue
        memo = str(value) if isinstance(value, (str, os.PathLike)) else None
        try:
            cell = known.get(memo) if memo is not None else None
            if cell is None:
                cell = load(value, fetch=not wire)
            if isinstance(cell, ImageCellError):
                raise cell
        except ImageCellError as exc:
            if memo is not None:
                known[memo] = exc
            failed.append((pos, spec.column, str(exc)))
            continue
        if memo is not None:
            known[memo] = cell
        found[pos] = cell
    return found, failed


def cell_item(spec: Image, cell: ImageCell, wire: bool) -> Item:
    """The item of one image: a URL or base64 for a server (``wire``), else its reference."""
    return image_item(spec.image_object(cell.wire() if wire else cell.source), cell)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def point_id(label: Any) -> int | str:
    """A deterministic Qdrant point id for an index label or id-column value."""
    if isinstance(label, (bool, np.bool_)):
        label = str(label)
    if isinstance(label, (int, np.integer)) and label >= 0:
        return int(label)
    if isinstance(label, str):
        try:
            return str(uuid.UUID(label))
        except ValueError:
            pass
    return str(uuid.uuid5(ID_NAMESPACE, json.dumps(json_safe(label), sort_keys=True)))


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars to Python, Timestamps to ISO text, NaN/NaT to None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def payload_hash(payload: Mapping[str, Any], thumbnails: Sequence[str] = ()) -> str:
    """A hash of the payload qinb writes and of which image columns get a thumbnail (the
    thumbnails follow from the images, so they are not hashed)."""
    body = {"payload": payload, "thumbnails": list(thumbnails)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
