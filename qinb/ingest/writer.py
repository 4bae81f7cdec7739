"""Writing points on a thread of its own, so that writing hides behind inference."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from qdrant_client import models

from qinb.errors import QinbError, StoreError
from qinb.store import Point, Store

__all__ = ["Writer"]

MAX_REQUEST_BYTES = 24 * 2**20  # under the server's 32 MB limit, with room for the envelope
_DONE = object()


def batches(points: Sequence[Point], batch_size: int,
            max_bytes: int = MAX_REQUEST_BYTES) -> list[list[Point]]:
    """Split points into batches of at most ``batch_size`` points and, where points carry images
    for a server to embed, at most ``max_bytes`` of JSON (Qdrant refuses requests over 32 MB)."""
    out: list[list[Point]] = []
    current: list[Point] = []
    size = 0
    for point in points:
        heavy = [v for v in point.vectors.values() if isinstance(v, models.Image)]
        cost = sum(len(v.model_dump_json()) for v in heavy)
        if current and (len(current) >= batch_size or size + cost > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(point)
        size += cost
    if current:
        out.append(current)
    return out


class Writer:
    """Takes chunks of points to upsert (whole) or update (some vectors and the payload) and
    writes them in order on one thread, with a progress bar over the rows; a failure stops the
    writing and is raised, saying how many points were written, at the next ``put`` or at the
    end."""

    def __init__(self, store: Store, collection: str, *, batch_size: int, total: int | None,
                 progress: bool) -> None:
        from qinb.progress import progress_bar

        self.store = store
        self.collection = collection
        self.batch_size = batch_size
        self.total = total
        self.written = 0
        self.error: BaseException | None = None
        self._stop = False  # set when the caller fails or is interrupted: write no more
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._finished = threading.Event()  # set when the thread has written its last point
        self._bar = progress_bar(total=total, desc=f"upserting {collection!r}", unit="row",
                         disable=not progress or (total is not None and total < 2))
        self._thread = threading.Thread(target=self._run, name="qinb-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._write_jobs()
        finally:
            self._finished.set()

    def _write_jobs(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is _DONE:
                    return
                if self.error is None and not self._stop:  # after a failure: drain, write nothing
                    self._write(*job)
            finally:
                self._queue.task_done()

    def _write(self, upserts: list[Point], updates: list[Point], rows: int) -> None:
        try:
            for write, points in ((self.store.upsert, upserts), (self.store.update, updates)):
                for batch in batches(points, self.batch_size):
                    if self._stop:
                        break
                    write(self.collection, batch)
                    self.written += len(batch)
        except BaseException as exc:
            self.error = exc
        self._bar.update(rows)

    def skip(self, rows: int) -> None:
        """Count rows that are not written (they failed their checks) on the bar."""
        if rows:
            self._queue.put(([], [], rows))

    def put(self, upserts: list[Point], updates: list[Point], rows: int) -> None:
        """Queue a chunk of ``rows`` rows: these points to upsert and these to update."""
        self._raise()
        self._queue.put((upserts, updates, rows))

    def wait(self) -> None:
        """Wait until every chunk put so far is written (or a write failed: then raise)."""
        self._queue.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            exc = self.error
            uncertain = isinstance(exc, StoreError) and exc.uncertain
            count = f"at least {self.written}" if uncertain else str(self.written)
            of = f" of {self.total}" if self.total is not None else ""
            # a store error already names the store and the call
            detail = (str(exc) if isinstance(exc, QinbError) else
                      f"writing to {self.store.where()} failed ({type(exc).__name__}: {exc})")
            raise StoreError(
                f"upsert into {self.collection!r} stopped after {count}{of} points: "
                f"{detail}. The points written are complete; run the same upsert again to write "
                "the rest (unchanged rows are skipped)", uncertain=uncertain,
            ) from exc

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop = kind is not None
        interrupt: KeyboardInterrupt | None = None
        done_sent = False
        # waited for on an Event, not Thread.join: a Ctrl-C that interrupts join() can leave
        # the thread marked stopped while it still writes (Python 3.11), and the count said
        # would then miss the points it writes after
        while not self._finished.is_set():
            try:
                if not done_sent:
                    self._queue.put(_DONE)
                    done_sent = True
                self._finished.wait()
            except KeyboardInterrupt as caught:
                # Ctrl-C while the last points are written: stop after the current batch and
                # wait for it, so that the number of points written is exact
                self._stop = True
                interrupt = caught
        self._bar.close()
        if interrupt is not None:
            raise interrupt
        if kind is None:
            self._raise()
