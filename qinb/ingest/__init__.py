"""The upsert pipeline, as stages that hand values to each other, a chunk of rows at a time so
that memory stays flat::

    frame --plan--> checked rows --chunks--> rows with their objects (passages for chunk_size)
      --diff against the store--> changes --resolve (cache, embed, or the server)--> vectors
      --points--> writer --> store                   ... counts of each stage --> UpsertReport
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.embed import Embedder
from qinb.errors import ArgumentError, warn
from qinb.ingest import _dask
from qinb.ingest.changes import stored_state
from qinb.ingest.loop import CHUNK_ROWS, Job, Tally, discard_if_empty, row_failed, step
from qinb.ingest.plan import Plan, SeenIds, failed_frame, fit, fitted, make_plan, refusal
from qinb.ingest.report import UpsertReport
from qinb.ingest.writer import Writer
from qinb.objects import Passages, check_vectors
from qinb.sources import Source, open_source
from qinb.spec import Bm25, Spec, Text
from qinb.store import PointId, Store, as_store, ensure_collection

__all__ = ["UpsertReport", "to_points", "upsert"]


def to_points(df: pd.DataFrame, vectors: Mapping[str, Spec], *, id_column: str | None = None,
              payload: Sequence[str] | None = None,
              errors: Literal["raise", "skip"] = "raise") -> list[models.PointStruct]:
    """The points of ``df``, with one ``models.Document`` per cell and named vector.

    They are what Qdrant's Inference API takes, so ``client.upsert(name, points)`` works with
    them directly on a ``cloud_inference=True`` client.

    Examples
    --------
    >>> points = df.qdrant.to_points(vectors={"text": qinb.Text("title")})
    >>> points[0].vector["text"]
    Document(text='...', model='sentence-transformers/all-MiniLM-L6-v2', options=None)
    """
    if not isinstance(df, pd.DataFrame):
        raise ArgumentError(f"to_points takes a pandas DataFrame (it returns every point at once), "
                            f"not a {type(df).__name__}; qinb.upsert streams any table source")
    plan = make_plan(df, vectors, id_column, payload, errors, wire=True)
    chunked = [n for n, s in plan.vectors.items() if isinstance(s, Text) and s.chunked]
    if chunked:
        raise ArgumentError(
            f"vector {chunked[0]!r} has chunk_size: its passages become one multivector, which "
            "Qdrant's Inference API cannot make from Documents (it embeds one per vector); "
            "use qinb.upsert, which embeds the passages here")
    specs = fit(plan)
    return [models.PointStruct(id=r.id, vector={n: i.obj for n, i in r.objects(specs, True).items()
                                                if not isinstance(i, Passages)},
                               payload=r.payload)
            for rows in plan.chunks(specs, len(df) or 1) for r in rows]


def upsert(df: Any, collection: str, vectors: Mapping[str, Spec], *,
           client: Store | QdrantClient | None = None, id_column: str | None = None,
           payload: Sequence[str] | None = None, batch_size: int = 256,
           errors: Literal["raise", "skip"] = "raise", progress: bool = True,
           thumbnails: bool = False, delete_missing: bool = False) -> UpsertReport:
    """Embed the text and image columns of a table and upsert them as named vectors.

    A pandas DataFrame is checked whole first (nothing is written if a row is bad and
    ``errors="raise"``), then read, embedded and written in chunks, so memory stays flat
    however many rows there are. Any other source is read a piece of 16,384 rows at a time and
    never whole: a Parquet file bigger than memory goes in. Each inference object is embedded
    once: a row whose text and images are unchanged is not embedded again, nor split into
    passages (each cell is hashed and compared with the stored one first; a payload-only
    change writes the payload), and vectors already made for another collection or an earlier
    kernel come from the cache.

    Parameters
    ----------
    df : DataFrame, table or path
        A pandas or polars DataFrame, a polars LazyFrame, a pyarrow Table, RecordBatchReader or
        Dataset, a path, directory or glob of Parquet, CSV or JSON Lines files (only the columns
        needed are read), or an iterable of any of these frames. With ``id_column`` each row is
        labelled by its id in hits, reports and ``qinb.read``; without it, rows of a source
        other than a pandas frame are labelled by their position in it (their point ids), as a
        pandas frame with a RangeIndex is, and a LazyFrame whose row order changes from run to
        run is refused. A streamed source is checked a
        piece at a time: with ``errors="raise"`` a bad row stops the upsert after the pieces
        before it were written, and the error says how many points that is.
    collection : str
        Created from the specs if missing; otherwise the specs must match it (a named vector
        the collection lacks is added to it).
    vectors : dict of str to spec
        Named vectors: ``qinb.Text(...)``, ``qinb.Image(...)``, ``qinb.Bm25(...)``. A text
        longer than its model's window is cut by the model: such rows are counted in
        ``report.truncated`` and one ``QinbWarning`` names them, unless the spec has
        ``chunk_size=`` (passages stored as one multivector per row, every word searchable).
        ``Bm25(avg_len="auto")`` measures the texts of a streamed source's first piece.
    client : store or QdrantClient, optional
        Default: the embedded store of :func:`qinb.connect`.
    id_column : str, optional
        Column of point ids, and the rows' labels (a frame indexed by it, as ``qinb.read``
        returns one, works too); default the index (the position, for a streamed source).
    payload : list of str, optional
        Columns to store; default all. The source text of each vector is always stored.
    batch_size : int
        Points per write request.
    errors : {"raise", "skip"}
        On empty or invalid cells: raise naming the rows, or store the other rows and list
        these in ``report.failed``.
    progress : bool
        Show progress bars.
    thumbnails : bool
        Also store a small JPEG (data URI) of each image in ``<column>_thumbnail``, so the
        collection shows pictures to someone without the original files. URLs sent to a
        ``cloud_inference`` server are not fetched here and get none.
    delete_missing : bool
        After the upsert, delete every point whose id is not in the source, so that the
        collection mirrors the table (rows dropped in cleaning leave it too), for every
        source kind, a Dask frame on a cluster too; ``report.deleted`` counts them. Only the
        stored ids are read for this: nothing is re-read or re-embedded. An upsert that
        fails or is interrupted deletes nothing, and so does a source with no rows; a row
        that failed its checks with ``errors="skip"`` keeps its stored point.

    Returns
    -------
    UpsertReport

    Examples
    --------
    >>> report = df.qdrant.upsert("docs", vectors={"text": qinb.Text("body"), "bm25": qinb.Bm25("body")})
    >>> report.upserted, report.embedded
    (120, 236)
    >>> qinb.upsert("exports/*.parquet", "docs", vectors={"text": qinb.Text("body")}, id_column="doc_id")
    >>> cleaned = df.drop_duplicates("body")
    >>> cleaned.qdrant.upsert("docs", vectors=..., delete_missing=True).deleted   # now a mirror
    4
    """
    if errors not in ("raise", "skip"):
        raise ArgumentError(f"errors must be 'raise' or 'skip', not {errors!r}")
    store = as_store(client)
    checked = check_vectors(vectors)
    if _dask.is_dask(df):
        _dask.check_ids(id_column)
    cluster = _dask.cluster() if _dask.is_dask(df) else None
    seen: SeenIds | None
    source: Source | None = None
    with store.writer_lock(collection):
        if cluster is not None:
            seen = every = SeenIds()
            report = _dask.upsert_on_cluster(cluster, df, store, collection, checked,
                                             str(id_column), payload, batch_size, errors,
                                             progress, thumbnails, every)
        else:
            source = open_source(df, _columns(checked, id_column, payload),
                                 by_position=id_column is None, skip_lines=errors == "skip")
            # a pandas frame is refused whole before anything is made; a streamed source's
            # pieces are checked as they come, and a bad row is refused after the pieces
            # before it are written
            seen = None if source.whole and not delete_missing else SeenIds()
            plans = (make_plan(piece, checked, id_column, payload,
                               errors if source.whole else "skip", wire=store.cloud,
                               thumbnails=thumbnails, seen=seen)
                     for piece in source.pieces)
            report = _upsert(store, source, plans, collection, id_column, batch_size, errors,
                             progress)
        # a source of no rows at all deletes nothing: an empty export is more often a
        # mistake than a wish to empty the collection (qinb.drop does that)
        if delete_missing and seen is not None and report.rows and not report.created:
            if source is not None and source.skipped:
                # a line that could not be read has no id: its point may be one still wanted
                warn(f"delete_missing deleted nothing from {collection!r}: {len(source.skipped)} "
                     "line(s) of the source could not be read, so their ids are unknown (see "
                     "report.failed). Fix them and run the upsert again")
            else:
                report.deleted = _delete_missing(store, collection, seen)
        return report


def _delete_missing(store: Store, collection: str, seen: SeenIds) -> int:
    """Delete the points whose ids the source did not have; how many. Only ids are read."""
    from qinb._manage import delete_ids

    gone: list[PointId] = []
    for records, _ in store.pages(collection, page=4096, payload=False):
        ids = [r.id for r in records]
        gone.extend(ids[i] for i in seen.missing(ids))
    delete_ids(store, collection, gone)
    return len(gone)


def _columns(vectors: Mapping[str, Spec], id_column: str | None,
             payload: Sequence[str] | str | None) -> list[str] | None:
    """The columns an upsert reads: all of them, unless ``payload=`` names the ones to store."""
    if payload is None:
        return None
    named = [payload] if isinstance(payload, str) else list(payload)
    extra = [id_column] if id_column is not None else []
    return list(dict.fromkeys([*named, *(s.column for s in vectors.values()), *extra]))


def _upsert(store: Store, source: Source, plans: Iterator[Plan], collection: str,
            id_column: str | None, batch_size: int, errors: str, progress: bool) -> UpsertReport:
    first = next(plans, None)
    if first is None:  # an iterable of no frames at all
        warn(f"nothing was upserted into {collection!r}: the source has no rows, so the "
             "collection was not created")
        return UpsertReport(collection=collection)
    specs = fit(first, store, collection)
    # a model that cannot load fails after the spec checks and before any collection is made;
    # chunked vectors are embedded here even for a server that embeds (passages are local)
    local = {n: s for n, s in specs.items() if not store.cloud or (isinstance(s, Text) and s.chunked)}
    created = ensure_collection(store, collection, specs, id_column,
                                prepare=(lambda: _find_models(local)) if local else None)
    job = Job(collection, specs, store.cloud, created)
    tally = Tally.of(UpsertReport(collection=collection, created=created,
                                  avg_len=fitted(first, specs)), specs)
    # one chunk: a bar per vector's embedding; more: the row bar alone, without a bar per chunk
    embedder = Embedder(progress=progress and source.whole and len(first.valid) <= CHUNK_ROWS)
    writer = Writer(store, collection, batch_size=batch_size,
                    total=len(first.valid) if source.whole else source.total, progress=progress)
    taken = 0  # of source.skipped, the lines already in the tally
    try:
        with writer:
            for plan in _pieces(first, plans, writer):
                if len(plan.failed) and errors == "raise":
                    writer.wait()  # the pieces before it are written whole, and counted
                    raise refusal(plan.failed, writer.written)
                tally.checked(len(plan.df), len(plan.valid), plan.failed)
                if not source.whole:
                    writer.skip(len(plan.df) - len(plan.valid))
                    taken = _skipped_lines(source, taken, tally, writer)
                for rows in plan.chunks(specs, CHUNK_ROWS):
                    stored = {} if created else stored_state(store, collection,
                                                             [r.id for r in rows])
                    done = step(job, rows, stored, embedder)
                    if done.failed and errors == "raise":
                        writer.wait()  # the chunks before it are written whole, and counted
                        raise row_failed(done.failed, writer.written)
                    writer.put(done.upserts, done.updates, done.rows)
                    tally.add(done)
            _skipped_lines(source, taken, tally, writer)  # past the last piece's rows
    except KeyboardInterrupt:
        discard_if_empty(store, collection, created, writer.written)
        raise KeyboardInterrupt(
            f"upsert into {collection!r} interrupted: {writer.written} points were written, "
            "each complete. Run the same upsert again to write the rest (unchanged rows are "
            "skipped)") from None
    except BaseException:
        discard_if_empty(store, collection, created, writer.written)
        raise
    return tally.close(store, writer.written, progress)


def _skipped_lines(source: Source, taken: int, tally: Tally, writer: Writer) -> int:
    """The lines the source's reader skipped since ``taken`` into the tally, as failed rows
    labelled by file and line; how many are in it now."""
    lines = source.skipped[taken:]
    if lines:
        tally.checked(len(lines), 0, failed_frame([(label, "", why) for label, why in lines]))
        writer.skip(len(lines))
    return taken + len(lines)


def _pieces(first: Plan, plans: Iterator[Plan], writer: Writer) -> Iterator[Plan]:
    """The plans of the source's pieces; a source that fails part way (a file unreadable past
    some row) raises after the pieces before it are written, saying how many points that is."""
    yield first
    while True:
        try:
            plan = next(plans)
        except StopIteration:
            return
        except ArgumentError as exc:
            writer.wait()
            raise ArgumentError(
                f"{exc}. {writer.written} points were written from the rows before it; run the "
                "same upsert again once it is fixed (written rows are skipped)") from exc
        yield plan


def _find_models(vectors: Mapping[str, Spec]) -> None:
    """Find each vector's model files now, so a ModelError, or a chunk_size past the model's
    window, leaves nothing behind. The models themselves load when something must be embedded
    (an ONNX file that fails then fails the upsert before its first write, and the collection
    it made goes): an upsert whose vectors all come from the cache never loads them (0.3 s and
    100 MB for MiniLM, more for CLIP)."""
    from qinb import models as registry
    from qinb.passages import splitter

    for spec in vectors.values():
        if isinstance(spec, Text) and spec.chunked:
            splitter(spec.model, spec.chunk_size or 0, spec.chunk_overlap, spec.runtime_options)
        if isinstance(spec, Bm25):
            registry.bm25_model(tuple(sorted(spec.model_options.items())))
        else:
            registry.found(spec.kind, spec.model, spec.runtime_options)
