"""The one loop of an upsert: a chunk of rows through the pipeline, and the tally the chunks
are folded into. A local upsert and a Dask worker run the same step::

    Job (fixed once the first piece is planned)
    rows + what the store holds of them --diff--> changes (objects of the changed rows only)
      --resolve--> vectors --points--> Step: upserts, updates, unchanged, failures, counts
    Tally: each piece's checks and each Step --> UpsertReport (closed: index built)
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from qinb.embed import Embedder
from qinb.errors import InvalidRowsError, warn
from qinb.ingest.changes import diff, payload_only, points
from qinb.ingest.plan import Row, failed_frame
from qinb.ingest.report import UpsertReport, warn_truncated
from qinb.ingest.resolve import resolve
from qinb.spec import Spec
from qinb.store import Point, PointId, Store

__all__ = ["CHUNK_ROWS", "Job", "Step", "Tally", "discard_if_empty", "row_failed", "step"]

CHUNK_ROWS = 2048  # rows read, embedded and written at a time

Failure = tuple[Hashable, str, str]  # (row label, column, reason)


@dataclass(frozen=True)
class Job:
    """What every chunk of one upsert is done with: the collection, the fitted specs, and
    whether a server embeds (objects are then made as it receives them)."""

    collection: str
    specs: Mapping[str, Spec]
    cloud: bool
    created: bool  # the collection is new: the store holds none of the rows


@dataclass
class Step:
    """One chunk done: the points to write, the rows found unchanged, the rows whose object
    could not be embedded, and per vector the counts of :data:`~qinb.ingest.report.COUNTS`."""

    rows: int
    upserts: list[Point] = field(default_factory=list)
    updates: list[Point] = field(default_factory=list)
    unchanged: int = 0
    failed: list[Failure] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)
    payload_only: int = 0

    def sent(self) -> Step:
        """This step without its points (written where it ran), for sending on its counts."""
        return Step(self.rows, [], [], self.unchanged, self.failed, self.counts, self.windows,
                    self.payload_only)


def step(job: Job, rows: Sequence[Row], stored: Mapping[PointId, Mapping[str, Any]],
         embedder: Embedder) -> Step:
    """One chunk: diff the rows against what the store holds of them, make and resolve the
    objects of the changed ones, and turn them into points."""
    changes = diff(rows, stored, job.specs, job.cloud)
    resolved = resolve(changes, job.specs, embedder, job.cloud)
    upserts, updates = points(changes, resolved.vectors, set(resolved.failed))
    return Step(len(rows), upserts, updates, changes.unchanged, list(resolved.failed.values()),
                resolved.counts, resolved.windows, payload_only(updates))


@dataclass
class Tally:
    """An upsert's report as its pieces are checked and its steps come back."""

    report: UpsertReport
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failed: list[pd.DataFrame] = field(default_factory=list)
    late: list[Failure] = field(default_factory=list)  # rows that failed in embedding

    @classmethod
    def of(cls, report: UpsertReport, specs: Mapping[str, Spec]) -> Tally:
        return cls(report, {name: Counter() for name in specs})

    def checked(self, rows: int, valid: int, failed: pd.DataFrame) -> None:
        """A piece checked: ``rows`` read, ``valid`` of them to go on, ``failed`` the others."""
        self.report.rows += rows
        self.report.failed_rows += rows - valid
        self.failed.append(failed)

    def add(self, done: Step) -> None:
        """A step's counts."""
        self.report.unchanged += done.unchanged
        self.report.payload_only += done.payload_only
        self.late.extend(done.failed)
        for name, found in done.counts.items():
            counts = self.counts[name]
            longest = max(counts["longest"], found["longest"])
            counts.update(found)
            counts["longest"], counts["local"] = longest, found["local"]
        self.report.windows.update(done.windows)

    def close(self, store: Store, written: int, progress: bool) -> UpsertReport:
        """The end of an upsert that wrote ``written`` points: the failed rows and counts into
        the report; the index built, or a collection that received nothing removed."""
        report = self.report
        report.upserted = written
        report.failed_rows += len(self.late)
        report.failed = pd.concat(
            [f for f in [*self.failed, failed_frame(self.late)] if len(f)]
            or self.failed[:1] or [failed_frame([])], ignore_index=True)
        if written or not report.created:
            # also when nothing changed: a build cut short by a kill is finished by the re-run
            # (the check costs a read of the segments' configs)
            store.finish(report.collection, progress)
        else:
            # nothing asked for an empty collection: none is left behind
            discard_if_empty(store, report.collection, True, 0)
            report.created = False
            warn(f"nothing was upserted into {report.collection!r}: the source has "
                 f"{report.rows} rows"
                 f"{', all of them failed (see report.failed)' if report.rows else ''}, so the "
                 "collection was not created")
        report.add_counts(self.counts)
        warn_truncated(report)
        return report


def row_failed(failed: Iterable[Failure], written: int) -> InvalidRowsError:
    """The error for a row whose object could not be embedded, after ``written`` points."""
    label, column, reason = next(iter(failed))
    return InvalidRowsError(
        f"row {label!r} {column}: {reason}. {written} points were written before it; fix the "
        "row and run the same upsert again (written rows are skipped), or pass errors='skip' "
        "to store the other rows", failed_frame([(label, column, reason)]))


def discard_if_empty(store: Store, collection: str, created: bool, written: int) -> None:
    """A failed upsert leaves no collection it created and wrote nothing into (asking the
    store too: a server may have applied a write whose answer was lost or a 5xx)."""
    if not created or written:
        return
    try:
        held = store.count(collection)
    except Exception:
        held = 0  # cannot tell: it was made by this upsert, which wrote nothing it knows of
    if not held:
        with contextlib.suppress(Exception):  # the original error matters more than a cleanup
            store.delete(collection)
