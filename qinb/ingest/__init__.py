"""The upsert pipeline, as stages that hand values to each other, a chunk of rows at a time so
that memory stays flat::

    frame --plan--> checked rows --chunks--> rows with their objects (passages for chunk_size)
      --diff against the store--> changes --resolve (cache, embed, or the server)--> vectors
      --points--> writer --> store                   ... counts of each stage --> UpsertReport
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.embed import Embedder
from qinb.errors import ArgumentError, InvalidRowsError
from qinb.ingest.changes import diff, points, stored_state
from qinb.ingest.plan import FAILED_COLUMNS, Plan, fit, make_plan
from qinb.ingest.report import UpsertReport, warn_truncated
from qinb.ingest.resolve import Resolved, resolve
from qinb.ingest.writer import Writer
from qinb.objects import Passages
from qinb.spec import Bm25, Image, Spec, Text
from qinb.store import Store, as_store, ensure_collection

__all__ = ["UpsertReport", "to_points", "upsert"]

CHUNK_ROWS = 2048  # rows read, embedded and written at a time


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
    plan = make_plan(df, vectors, id_column, payload, errors, wire=True)
    chunked = [n for n, s in plan.vectors.items() if isinstance(s, Text) and s.chunked]
    if chunked:
        raise ArgumentError(
            f"vector {chunked[0]!r} has chunk_size: its passages become one multivector, which "
            "Qdrant's Inference API cannot make from Documents (it embeds one per vector); "
            "use qinb.upsert, which embeds the passages here")
    specs = fit(plan)
    return [models.PointStruct(id=r.id, vector={n: i.obj for n, i in r.items.items()
                                                if not isinstance(i, Passages)},
                               payload=r.payload)
            for rows in plan.chunks(specs, len(df) or 1) for r in rows]


def upsert(df: pd.DataFrame, collection: str, vectors: Mapping[str, Spec], *,
           client: Store | QdrantClient | None = None, id_column: str | None = None,
           payload: Sequence[str] | None = None, batch_size: int = 256,
           errors: Literal["raise", "skip"] = "raise", progress: bool = True,
           thumbnails: bool = False) -> UpsertReport:
    """Embed the text and image columns of ``df`` and upsert them as named vectors.

    The frame is checked whole first (nothing is written if a row is bad and
    ``errors="raise"``), then read, embedded and written in chunks, so memory stays flat
    however many rows there are. Each inference object is embedded once: a row whose text and
    images are unchanged is not embedded again (a payload-only change writes the payload), and
    vectors already made for another collection or an earlier kernel come from the cache.

    Parameters
    ----------
    df : DataFrame
    collection : str
        Created from the specs if missing; otherwise the specs must match it (a named vector
        the collection lacks is added to it).
    vectors : dict of str to spec
        Named vectors: ``qinb.Text(...)``, ``qinb.Image(...)``, ``qinb.Bm25(...)``. A text
        longer than its model's window is cut by the model: such rows are counted in
        ``report.truncated`` and one ``QinbWarning`` names them, unless the spec has
        ``chunk_size=`` (passages stored as one multivector per row, every word searchable).
    client : store or QdrantClient, optional
        Default: the embedded store of :func:`qinb.connect`.
    id_column : str, optional
        Column of point ids; default the index.
    payload : list of str, optional
        Columns to store; default all. The source text of each vector is always stored.
    batch_size : int
        Points per write request.
    errors : {"raise", "skip"}
        On empty or invalid cells: raise naming the rows (nothing written), or store the other
        rows and list these in ``report.failed``.
    progress : bool
        Show progress bars.
    thumbnails : bool
        Also store a small JPEG (data URI) of each image in ``<column>_thumbnail``, so the
        collection shows pictures to someone without the original files. URLs sent to a
        ``cloud_inference`` server are not fetched here and get none.

    Returns
    -------
    UpsertReport

    Examples
    --------
    >>> report = df.qdrant.upsert("docs", vectors={"text": qinb.Text("body"), "bm25": qinb.Bm25("body")})
    >>> report.upserted, report.embedded
    (120, 236)
    """
    store = as_store(client)
    plan = make_plan(df, vectors, id_column, payload, errors, wire=store.cloud, thumbnails=thumbnails)
    with store.writer_lock(collection):
        return _upsert(store, plan, collection, id_column, batch_size, errors, progress)


def _upsert(store: Store, plan: Plan, collection: str, id_column: str | None, batch_size: int,
            errors: str, progress: bool) -> UpsertReport:
    specs = fit(plan, store, collection)
    # a model that cannot load fails after the spec checks and before any collection is made;
    # chunked vectors are embedded here even for a server that embeds (passages are local)
    local = {n: s for n, s in specs.items() if not store.cloud or (isinstance(s, Text) and s.chunked)}
    created = ensure_collection(store, collection, specs, id_column,
                                prepare=(lambda: _load_models(local)) if local else None)
    report = UpsertReport(collection=collection, rows=len(plan.df), failed=plan.failed,
                          created=created, failed_rows=len(plan.df) - len(plan.valid))
    # one chunk: a bar per vector's embedding; more: the row bar alone, without a bar per chunk
    embedder = Embedder(progress=progress and len(plan.valid) <= CHUNK_ROWS)
    counts: dict[str, Counter[str]] = {name: Counter() for name in specs}
    late: list[tuple[object, str, str]] = []  # rows that failed in embedding
    writer = Writer(store, collection, batch_size=batch_size, total=len(plan.valid),
                    progress=progress)
    try:
        with writer:
            for rows in plan.chunks(specs, CHUNK_ROWS):
                changes = diff(rows, {} if created else stored_state(store, collection, rows))
                resolved = resolve(changes, specs, embedder, store.cloud)
                if resolved.failed and errors == "raise":
                    raise _row_failed(resolved, writer.written)
                upserts, updates = points(changes, resolved.vectors, set(resolved.failed))
                writer.put(upserts, updates, len(rows))
                report.unchanged += changes.unchanged
                report.payload_only += sum(1 for p in updates if not p.vectors)
                late.extend(resolved.failed.values())
                _add(counts, resolved, report)
    except KeyboardInterrupt:
        _discard_if_empty(store, collection, created, writer.written)
        raise KeyboardInterrupt(
            f"upsert into {collection!r} interrupted: {writer.written} points were written, "
            "each complete. Run the same upsert again to write the rest (unchanged rows are "
            "skipped)") from None
    except BaseException:
        _discard_if_empty(store, collection, created, writer.written)
        raise
    report.upserted = writer.written
    report.failed_rows += len(late)
    if late:
        extra = pd.DataFrame(late, columns=FAILED_COLUMNS)
        report.failed = extra if not len(report.failed) else pd.concat([report.failed, extra],
                                                                       ignore_index=True)
    if report.upserted:
        store.finish(collection, progress)
    report.add_counts(counts)
    warn_truncated(report)
    return report


def _add(counts: dict[str, Counter[str]], resolved: Resolved, report: UpsertReport) -> None:
    """Add one chunk's counts to the upsert's."""
    for name, found in resolved.counts.items():
        longest = max(counts[name]["longest"], found["longest"])
        counts[name].update(found)
        counts[name]["longest"], counts[name]["local"] = longest, found["local"]
    report.windows.update(resolved.windows)


def _row_failed(resolved: Resolved, written: int) -> InvalidRowsError:
    label, column, reason = next(iter(resolved.failed.values()))
    return InvalidRowsError(
        f"row {label!r} {column}: {reason}. {written} points were written before it; fix the "
        "row and run the same upsert again (written rows are skipped), or pass errors='skip' "
        "to store the other rows", pd.DataFrame([(label, column, reason)], columns=FAILED_COLUMNS))


def _load_models(vectors: Mapping[str, Spec]) -> None:
    """Load each vector's model now (they are cached), so a ModelError, or a chunk_size past
    the model's window, leaves nothing behind."""
    from qinb import models as registry
    from qinb.passages import splitter

    for spec in vectors.values():
        if isinstance(spec, Text) and spec.chunked:
            splitter(spec.model, spec.chunk_size or 0, spec.chunk_overlap, spec.runtime_options)
        if isinstance(spec, Bm25):
            registry.bm25_model(tuple(sorted(spec.model_options.items())))
        elif isinstance(spec, Image):
            registry.image_model(spec.model, spec.runtime_options)
        else:
            registry.text_model(spec.model, spec.runtime_options)


def _discard_if_empty(store: Store, collection: str, created: bool, written: int) -> None:
    """A failed upsert leaves no collection it created and wrote nothing into."""
    if created and not written:
        # the original error matters more than a failed cleanup
        with contextlib.suppress(Exception):
            store.delete(collection)
