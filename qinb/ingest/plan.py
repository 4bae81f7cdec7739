"""Checking a whole frame before anything is written: arguments, columns, cells, payload values,
ids; then its valid rows, chunk by chunk, as payloads and inference objects."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from qinb.embed import Item
from qinb.errors import ArgumentError, InvalidRowsError, SpecConflictError
from qinb.images import ImageCell, thumbnail_column
from qinb.objects import (
    MAX_POINT_ID,
    Passages,
    cell_digest,
    cell_object,
    check_cells,
    check_columns,
    check_frame,
    check_vectors,
    payload_cells,
    point_id,
)
from qinb.payload import convert
from qinb.spec import Bm25, Image, Spec, Text
from qinb.store import ROW_KEY, Store

__all__ = ["FAILED_COLUMNS", "Plan", "Row", "SeenIds", "failed_frame", "fit", "fitted", "make_plan",
           "refusal"]

FAILED_COLUMNS = ["row", "column", "reason"]
AHEAD = 128  # rows made at a time before they join a chunk


@dataclass
class Row:
    """A valid row as it goes in: its label, point id and payload, each vector's checked cell
    and that cell's identity (:func:`~qinb.objects.cell_digest`); its objects are made only if
    it is to be written (:meth:`objects`)."""

    label: Hashable
    id: int | str
    payload: dict[str, Any]
    cells: dict[str, str | ImageCell]
    digests: dict[str, str]
    thumbnails: dict[str, ImageCell]  # image columns whose thumbnail goes into the payload

    def objects(self, specs: Mapping[str, Spec], wire: bool) -> dict[str, Item | Passages]:
        """Each vector's inference object (a chunked text's passages, split here)."""
        return {name: cell_object(specs[name], cell, self.digests[name], wire)
                for name, cell in self.cells.items()}

    def thumbnail_payload(self) -> dict[str, str | None]:
        """The thumbnails: made only for points about to be written (unchanged rows skip this)."""
        return {thumbnail_column(column): cell.thumbnail()
                for column, cell in self.thumbnails.items()}


@dataclass
class Plan:
    """A checked frame: which rows are valid, their ids, and the image cells already read."""

    df: pd.DataFrame
    vectors: dict[str, Spec]
    columns: list[str]
    ids: list[int | str]
    valid: list[int]
    failed: pd.DataFrame
    images: dict[str, dict[int, ImageCell]]
    wire: bool
    thumbnails: bool
    labels: list[Hashable]  # each row's label: its id_column value, else its index label

    def chunks(self, specs: Mapping[str, Spec], size: int) -> Iterator[list[Row]]:
        """The valid rows with their payloads and cell identities (``specs``: the plan's own
        once fitted), in chunks of at most ``size`` rows and about ``size`` objects per vector:
        a chunk of long documents holds fewer rows, so that its passages, once an unchanged
        row is told from a changed one and the changed ones are split, take the memory of a
        chunk of short texts. Rows are made a few at a time, never a whole chunk of them."""
        run: list[Row] = []
        count = 0
        for start in range(0, len(self.valid), AHEAD):
            for row in self._rows(specs, self.valid[start:start + AHEAD]):
                n = _weight(row, specs)
                if run and (count + n > size * len(specs) or len(run) >= size):
                    yield run
                    run, count = [], 0
                run.append(row)
                count += n
        if run:
            yield run

    def _rows(self, specs: Mapping[str, Spec], positions: list[int]) -> list[Row]:
        """The rows at these positions, with their cells, identities and converted payloads."""
        source_columns = [s.column for s in specs.values()]
        keep = list(dict.fromkeys([*self.columns, *source_columns]))
        cells: dict[str, list[str | ImageCell]] = {}
        for name, spec in specs.items():
            if isinstance(spec, Image):
                found = self.images.get(name, {})
                cells[name] = [found[pos] for pos in positions]
            else:
                cells[name] = self.df[spec.column].iloc[positions].tolist()
        records = self.df.iloc[positions][keep].to_dict("records")  # rows first: no copy of the frame
        rows = []
        for i, (pos, raw) in enumerate(zip(positions, records, strict=True)):
            label = self.labels[pos]
            row_cells = {n: c[i] for n, c in cells.items()}
            # image cells are stored as their reference, not their pixels (the engine does
            # not keep inference input), so they skip the JSON conversion
            images = {str(specs[n].column): c for n, c in row_cells.items()
                      if isinstance(c, ImageCell)}
            data = {str(k): convert(v) for k, v in raw.items() if str(k) not in images}
            data[ROW_KEY] = convert(label)
            data.update({column: cell.source for column, cell in images.items()})
            digests = {n: cell_digest(specs[n], c) for n, c in row_cells.items()}
            rows.append(Row(label, self.ids[pos], data, row_cells, digests,
                            images if self.thumbnails else {}))
        return rows


CHARS_PER_TOKEN = 2  # fewer than most texts have a token: a guess of a cell's passages errs high


def _weight(row: Row, specs: Mapping[str, Spec]) -> int:
    """About how many objects the row's cells make: one each, a long text's passages more."""
    total = 0
    for name, cell in row.cells.items():
        spec = specs[name]
        if isinstance(spec, Text) and spec.chunked and isinstance(cell, str):
            total += 1 + len(cell) // (CHARS_PER_TOKEN * (spec.chunk_size or 1))
        else:
            total += 1
    return total


def make_plan(df: pd.DataFrame, vectors: Mapping[str, Spec], id_column: str | None,
              payload: Sequence[str] | str | None, errors: str, *, wire: bool = False,
              thumbnails: bool = False, seen: SeenIds | None = None) -> Plan:
    """Check the whole frame (or one piece of a streamed source, with the ids of the pieces
    before it in ``seen``) before any of it is written: arguments, columns, cells, ids."""
    if errors not in ("raise", "skip"):
        raise ArgumentError(f"errors must be 'raise' or 'skip', not {errors!r}")
    vectors = check_vectors(vectors)
    if id_column is not None and id_column not in df.columns and df.index.name == id_column:
        df = df.reset_index()  # the ids as the index, as qinb.read gives them back
    columns = list(df.columns) if payload is None else [payload] if isinstance(payload, str) \
        else list(payload)
    check_columns(df, columns, "payload=")
    if id_column is not None:
        check_columns(df, [id_column], "id_column=")
    image_columns = {s.column for s in vectors.values() if isinstance(s, Image)}
    stored = list(dict.fromkeys([*columns, *(s.column for s in vectors.values())]))
    check_frame(df, stored)
    problems: list[tuple[int, str, str]] = []
    images: dict[str, dict[int, ImageCell]] = {}
    for name, spec in vectors.items():
        images[name], bad = check_cells(df, name, spec, wire=wire)
        problems.extend(bad)
    problems.extend(payload_cells(df, [c for c in stored if c not in image_columns]))
    keys = (df[id_column] if id_column is not None else df.index).tolist()
    ids = [point_id(k) for k in keys]
    seen_here: set[int | str] = set()
    for pos, pid in enumerate(ids):
        if isinstance(pid, int) and pid >= MAX_POINT_ID:
            problems.append((pos, id_column or "index", f"id {pid} is too large: Qdrant takes "
                             "ids below 2**64, or UUIDs; use a smaller id or a text label"))
        elif pid in seen_here:
            problems.append((pos, id_column or "index",
                             f"duplicate id {keys[pos]!r}: an earlier row has the same id"))
        seen_here.add(pid)
    if seen is not None:
        problems.extend((pos, id_column or "index", f"duplicate id {keys[pos]!r}: an earlier "
                         "piece of the source has the same id") for pos in seen.add(ids))
    # two vectors of one column report the same cell once
    problems = sorted(set(problems), key=lambda p: p[0])
    bad_positions = sorted({pos for pos, _, _ in problems})
    labels = keys if id_column is not None else df.index.tolist()
    failed = failed_frame([(labels[pos], column, why) for pos, column, why in problems])
    if len(failed) and errors == "raise":
        raise refusal(failed)
    skip = set(bad_positions)
    valid = [pos for pos in range(len(df)) if pos not in skip]
    return Plan(df, vectors, columns, ids, valid, failed, images, wire, thumbnails, labels)


def failed_frame(problems: Sequence[tuple[Any, str, str]]) -> pd.DataFrame:
    """Rows that failed, one per problem: object columns, since a label or a reason may hold
    text that Arrow-backed strings (pandas' default where pyarrow is installed) refuse."""
    return pd.DataFrame(list(problems), columns=FAILED_COLUMNS, dtype=object)


def refusal(failed: pd.DataFrame, written: int = 0) -> InvalidRowsError:
    """The error for rows that failed their checks with ``errors="raise"``, saying how many
    points (of the pieces of a source before them) were written."""
    rows = list(dict.fromkeys(failed["row"]))
    return InvalidRowsError(
        f"{len(rows)} row(s) cannot be upserted, rows {rows[:10]}"
        f"{' ...' if len(rows) > 10 else ''}: "
        + "; ".join(f"row {r!r} {c}: {why}" for r, c, why in failed.head(5).itertuples(False))
        + ". Fix them, or pass errors='skip' to store the other rows and get these in "
          "report.failed. "
        + (f"{written} points were written from the rows before these; run the same upsert "
           "again once they are fixed (written rows are skipped)." if written else
           "Nothing was written."),
        failed,
    )


class SeenIds:
    """The point ids of a streamed source's pieces so far, to find a duplicate in a later piece:
    8 bytes an id (a UUID text by a 64-bit digest), so two million rows take 16 MB."""

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.uint64)
        self._recent: list[np.ndarray[Any, Any]] = []

    def add(self, ids: Sequence[int | str]) -> list[int]:
        """Remember ``ids``; the positions of those seen in an earlier call."""
        keys = np.fromiter((_key(i) for i in ids), dtype=np.uint64, count=len(ids))
        if sum(len(r) for r in self._recent) > len(self._sorted) // 4:
            self._sorted = np.sort(np.concatenate([self._sorted, *self._recent]))
            self._recent = []
        dup = np.zeros(len(keys), bool)
        for known in (self._sorted, *self._recent):  # each sorted: a binary search per id
            if len(known):
                at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
                dup |= known[at] == keys
        self._recent.append(np.sort(keys))
        return np.flatnonzero(dup).tolist()


    def missing(self, ids: Sequence[int | str]) -> list[int]:
        """The positions of ``ids`` never added."""
        keys = np.fromiter((_key(i) for i in ids), dtype=np.uint64, count=len(ids))
        if self._recent:  # merged once, not on every page of stored ids asked about
            self._sorted = np.sort(np.concatenate([self._sorted, *self._recent]))
            self._recent = []
        if not len(self._sorted):
            return list(range(len(ids)))
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.flatnonzero(self._sorted[at] != keys).tolist()


def _key(pid: int | str) -> int:
    if isinstance(pid, int) and pid < MAX_POINT_ID:
        return pid
    # a text, or an id too large for Qdrant (its row fails; it is remembered all the same)
    return int.from_bytes(hashlib.blake2b(str(pid).encode(), digest_size=8).digest(), "little")


def fit(plan: Plan, store: Store | None = None, collection: str = "") -> dict[str, Spec]:
    """The specs with each ``Bm25(avg_len="auto")`` given a length: the one saved with the
    collection when it has that vector already (so ingest and queries keep agreeing), else the
    average measured on the frame's valid texts."""
    saved: Mapping[str, Any] = {}
    if store is not None and store.exists(collection):
        saved = (store.shape(collection).metadata.get("qinb") or {}).get("vectors") or {}
    out = dict(plan.vectors)
    for name, spec in plan.vectors.items():
        if isinstance(spec, Bm25) and spec.avg_len == "auto":
            if name in saved:
                length = (saved[name].get("options") or {}).get("avg_len")
                if length is None:
                    # made with Qdrant's default length: fitting one now would score the new
                    # rows by another length than the stored ones, as avg_len=<number> would
                    raise SpecConflictError(
                        f"vector {name!r} of collection {collection!r} was made with Qdrant's "
                        "default avg_len (256 tokens), and avg_len='auto' would fit another; "
                        "every BM25 vector would have to change, so nothing was written. Pass "
                        "avg_len=None to keep the default, or upsert into a new collection to "
                        "fit one")
            else:
                length = spec.measure(plan.df[spec.column].iloc[plan.valid].tolist())
            out[name] = replace(spec, avg_len=length)
    return out


def fitted(plan: Plan, specs: Mapping[str, Spec]) -> dict[str, float]:
    """The length each ``Bm25(avg_len="auto")`` vector was given."""
    return {n: float(s.avg_len) for n, s in specs.items() if isinstance(s, Bm25)
            and getattr(plan.vectors[n], "avg_len", None) == "auto"
            and isinstance(s.avg_len, (int, float))}
