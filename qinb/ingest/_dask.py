"""A Dask DataFrame as a source. On a ``distributed`` cluster its partitions are checked and
embedded by the workers that hold them; the client reads what the store holds of their rows
(for an embedded store) and writes the vectors they send back, or, for a Qdrant server, the
workers write their points themselves. Without a cluster, its partitions are computed here one
at a time and go in as any streamed source does.

Per partition, on a cluster::

    worker: partition --plan--> checked rows (kept on the worker) --> their ids (to the client)
    client: ids --> duplicates across partitions, what the store holds of them
    worker: rows + what is stored --diff, resolve (cache, model), points--> the points to write
            (to the client, which writes them; or written by the worker to the server)
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from qinb.embed import Embedder
from qinb.errors import ArgumentError, ClusterError, QinbError
from qinb.ingest.changes import stored_state
from qinb.ingest.loop import CHUNK_ROWS, Job, Step, Tally, discard_if_empty, row_failed, step
from qinb.ingest.plan import Plan, SeenIds, failed_frame, fit, fitted, make_plan, refusal
from qinb.ingest.report import UpsertReport
from qinb.spec import Spec
from qinb.store import Store, ensure_collection

__all__ = ["cluster", "is_dask", "partitions", "upsert_on_cluster"]

PLUGIN = "qinb"  # the name of qinb's worker plugin: registering it again replaces it
AHEAD_PER_WORKER = 2  # partitions in flight per worker: one embedding, one being sent or written


def is_dask(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame (without importing Dask)."""
    return (type(data).__module__.split(".")[0] in ("dask", "dask_expr")
            and hasattr(data, "npartitions") and hasattr(data, "to_delayed"))


def cluster() -> Any:
    """The ``distributed`` client this process works with, or None (no cluster: Dask's own
    scheduler computes the partitions here)."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def check_ids(id_column: str | None) -> None:
    if id_column is None:
        raise ArgumentError(
            "a Dask DataFrame needs id_column=: each partition numbers its rows from its own "
            "start (and a Dask index need not be unique), so row positions cannot be point ids "
            "that stay the same from one run to the next. Pass the column that identifies a "
            "row, for example id_column='doc_id'")


def partitions(ddf: Any, columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
    """The partitions as pandas frames, one computed at a time (by Dask's own scheduler)."""
    frame = ddf if columns is None else ddf[list(columns)]
    for number in range(frame.npartitions):
        yield frame.get_partition(number).compute()


@dataclass
class Summary:
    """What the client needs to know of a checked partition: its row count, the ids and labels
    of its valid rows, the rows that failed their checks, and their ids (a row that failed
    keeps the point it has, should ``delete_missing`` ask)."""

    rows: int
    ids: list[int | str]
    labels: list[Any]
    failed: pd.DataFrame
    failed_ids: list[int | str]


@dataclass
class Done:
    """A partition's steps, with their points for the client to write, or without them and
    how many points its worker wrote."""

    steps: list[Step] = field(default_factory=list)
    written: int = 0


# --- on the workers -------------------------------------------------------------------------

_embedder: Embedder | None = None
_servers: dict[str, Store] = {}


def _plan(df: pd.DataFrame, vectors: Mapping[str, Spec], id_column: str, payload: Any,
          wire: bool, thumbnails: bool) -> Plan:
    return make_plan(df, vectors, id_column, payload, "skip", wire=wire, thumbnails=thumbnails)


def _summary(plan: Plan) -> Summary:
    valid = set(plan.valid)
    return Summary(len(plan.df), [plan.ids[p] for p in plan.valid],
                   [plan.labels[p] for p in plan.valid], plan.failed,
                   [i for p, i in enumerate(plan.ids) if p not in valid])


def _server(options: Mapping[str, Any]) -> Store:
    """One store per server and process: the worker's connection, made once."""
    from qdrant_client import QdrantClient

    from qinb.store.client import ClientStore

    key = repr(sorted(options.items()))
    if key not in _servers:
        _servers[key] = ClientStore(QdrantClient(**options))
    return _servers[key]


def _finish(plan: Plan, drop: Sequence[int], stored: Mapping[Any, Any] | None, job: Job,
            server: Mapping[str, Any] | None, batch_size: int) -> Done:
    """The steps of a checked partition, leaving out the valid rows at positions ``drop``
    (their ids came earlier); a worker keeps one Embedder, so a model is loaded once and an
    object seen by an earlier partition here is not embedded again."""
    global _embedder
    from qinb.ingest.writer import Writer

    if drop:  # a new plan: the one the worker holds stays as made, should this task run again
        gone = {plan.valid[i] for i in drop}
        plan = replace(plan, valid=[p for p in plan.valid if p not in gone])
    if _embedder is None:
        _embedder = Embedder(progress=False)
    store = _server(server) if server is not None else None
    done = Done()
    writer = Writer(store, job.collection, batch_size=batch_size, total=None, progress=False) \
        if store is not None else None
    # as on the client: a chunk that fails stops the writer after its current batch, and the
    # chunk's error is the one raised, not one from writing what was queued
    with writer if writer is not None else contextlib.nullcontext():
        for rows in plan.chunks(job.specs, CHUNK_ROWS):
            state = stored if store is None else \
                {} if job.created else stored_state(store, job.collection, [r.id for r in rows])
            made = step(job, rows, state or {}, _embedder)
            if writer is not None:
                writer.put(made.upserts, made.updates, made.rows)
                made = made.sent()
            done.steps.append(made)
    if writer is not None:
        done.written = writer.written
    return done


# --- on the client ---------------------------------------------------------------------------

def _remote(store: Store) -> dict[str, Any] | None:
    """The arguments that make a ``QdrantClient`` of this store's server on a worker, or None
    for a store only this process can write (embedded, local mode)."""
    from qinb.store.client import ClientStore

    if not isinstance(store, ClientStore) or store._local():
        return None
    options = dict(store.client.init_options)
    if options.get("location") == ":memory:" or options.get("path"):
        return None
    return options


def _alone(part: Any) -> Any:
    """A partition's Delayed with only the tasks it needs: each Delayed of ``to_delayed()``
    carries the whole frame's graph (all of a ``from_pandas`` frame's rows), which the client
    would send to the scheduler again with every partition (42 ms of CPU a partition at 64
    partitions of 2,000 rows, and more the more partitions)."""
    from dask.delayed import Delayed

    return Delayed(part.key, dict(part.dask.cull({part.key})))  # type: ignore[no-untyped-call]


def upsert_on_cluster(client: Any, ddf: Any, store: Store, collection: str,
                      vectors: Mapping[str, Spec], id_column: str, payload: Any,
                      batch_size: int, errors: str, progress: bool, thumbnails: bool,
                      seen: SeenIds) -> UpsertReport:
    """Upsert a Dask DataFrame with the cluster's workers doing the checking and embedding;
    ``seen`` gathers the ids of its rows."""
    from dask.delayed import delayed

    from qinb.ingest._dask_plugin import QinbWorker
    from qinb.ingest.writer import Writer
    from qinb.progress import progress_bar

    server = _remote(store)
    client.register_plugin(QinbWorker(AHEAD_PER_WORKER), name=PLUGIN)
    columns = None if payload is None else list(dict.fromkeys(
        [*([payload] if isinstance(payload, str) else payload),
         *(s.column for s in vectors.values()), id_column]))
    frame = ddf if columns is None else ddf[columns]
    parts = frame.to_delayed()
    # the specs are fitted (BM25's avg_len="auto") and checked against the collection here,
    # on the first partition, before any worker embeds
    first = make_plan(parts[0].compute(), vectors, id_column, payload, "skip",
                      wire=store.cloud, thumbnails=thumbnails)
    specs = fit(first, store, collection)
    created = ensure_collection(store, collection, specs, id_column)
    job = Job(collection, specs, store.cloud, created)
    tally = Tally.of(UpsertReport(collection=collection, created=created,
                                  avg_len=fitted(first, specs)), specs)
    del first
    ahead = AHEAD_PER_WORKER * max(1, len(client.scheduler_info().get("workers", {})))
    plan_of = delayed(_plan, pure=True)
    started: deque[tuple[Any, Any]] = deque()
    finishing: deque[Any] = deque()
    rows_bar = progress_bar(total=None, desc=f"upserting {collection!r} on {len(parts)} "
                            "partitions", unit="row", disable=not progress or server is None)
    writer = Writer(store, collection, batch_size=batch_size, total=None,
                    progress=progress and server is None)
    by_workers = 0  # points the workers wrote to the server themselves

    def take(done: Done) -> int:
        for made in done.steps:
            if server is None:
                writer.put(made.upserts, made.updates, made.rows)
            else:
                rows_bar.update(made.rows)
            tally.add(made)
        late = [f for made in done.steps for f in made.failed]
        if late and errors == "raise":
            writer.wait()
            raise row_failed(late, writer.written + by_workers + done.written)
        return done.written

    try:
        with writer, rows_bar:
            for number in range(len(parts)):
                while len(started) < ahead and number + len(started) < len(parts):
                    plan = client.compute(plan_of(_alone(parts[number + len(started)]), vectors,
                                                  id_column, payload, store.cloud, thumbnails))
                    started.append((plan, client.submit(_summary, plan)))
                plan, summary_future = started.popleft()
                summary: Summary = summary_future.result()
                drop = seen.add(summary.ids)
                seen.add(summary.failed_ids)
                bad = failed_frame([(summary.labels[i], id_column, f"duplicate id "
                                     f"{summary.ids[i]!r}: a row of an earlier partition has the "
                                     "same id") for i in drop])
                if (len(summary.failed) or len(bad)) and errors == "raise":
                    writer.wait()
                    raise refusal(pd.concat([summary.failed, bad], ignore_index=True),
                                  writer.written + by_workers)
                tally.checked(summary.rows, len(summary.ids) - len(drop),
                              pd.concat([summary.failed, bad], ignore_index=True))
                stored = None
                if server is None:  # the workers cannot read an embedded store: it is read here
                    stored = {} if created else stored_state(store, collection, summary.ids)
                finishing.append(client.submit(_finish, plan, drop, stored, job, server,
                                               batch_size, pure=False))
                del plan
                while finishing and (len(finishing) > ahead or finishing[0].done()):
                    by_workers += take(finishing.popleft().result())
            while finishing:
                by_workers += take(finishing.popleft().result())
    except BaseException as exc:
        for future in [*finishing, *(f for pair in started for f in pair)]:
            with contextlib.suppress(Exception):  # the cluster may be gone
                future.cancel()
        stored_here = writer.written + by_workers
        if server is not None and created and not stored_here:
            # the worker whose partition failed may have written points before it did
            try:
                stored_here = store.count(collection)
            except Exception:
                stored_here = -1  # unknown: the collection stays
        discard_if_empty(store, collection, created, stored_here)
        if isinstance(exc, (QinbError, KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        # the scheduler or every worker lost, a task cancelled: Dask's own error, in qinb's words
        raise ClusterError(
            f"the Dask cluster failed during the upsert into {collection!r} "
            f"({type(exc).__name__}: {exc}). {max(stored_here, 0)} points were written, each "
            "complete; run the same upsert again once the cluster works (written rows are "
            "skipped)") from exc
    return tally.close(store, writer.written + by_workers, progress)
