"""The upsert pipeline, streamed in chunks so memory stays flat:
DataFrame -> checked cells -> inference objects -> vectors (local) or objects (server) -> store."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb.embed import Embedder, Item
from qinb.errors import InvalidRowsError, QinbError
from qinb.inference import object_digest, payload_hash
from qinb.plan import FAILED_COLUMNS, Plan, Row, fit, make_plan
from qinb.spec import Bm25, Image, Spec
from qinb.store import HASH_KEY, OBJECTS_KEY, Point, Store, as_store, ensure_collection
from qinb.writer import Writer

__all__ = ["UpsertReport", "to_points", "upsert"]

CHUNK_ROWS = 2048  # rows read, embedded and written at a time


@dataclass
class UpsertReport:
    """What an upsert did.

    Attributes
    ----------
    rows : int
        Rows in the DataFrame.
    upserted : int
        Points written: new rows, and rows whose text, image or payload changed.
    unchanged : int
        Rows skipped because the stored point has the same content.
    payload_only : int
        Of the upserted, rows where only the payload changed: written without any inference.
    objects : int
        Inference objects the written points needed (one per row and named vector whose
        object is new or changed).
    embedded : int
        Distinct objects actually embedded here (0 when the server embeds them).
    cached : int
        Distinct objects whose vectors came from the persistent embedding cache.
    failed : DataFrame
        One row per problem: ``row`` (index label), ``column``, ``reason``. A row may have
        several problems.
    failed_rows : int
        Rows not stored because of a problem; ``upserted + unchanged + failed_rows == rows``.
    vectors : DataFrame
        ``objects``, ``embedded`` and ``cached`` per named vector.
    """

    collection: str
    rows: int = 0
    upserted: int = 0
    unchanged: int = 0
    payload_only: int = 0
    objects: int = 0
    embedded: int = 0
    cached: int = 0
    failed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILED_COLUMNS))
    vectors: pd.DataFrame = field(default_factory=pd.DataFrame)
    created: bool = False
    failed_rows: int = 0

    def __str__(self) -> str:
        lines = [
            f"{'created' if self.created else 'updated'} collection {self.collection!r}: "
            f"{self.rows} rows, {self.upserted} upserted"
            f"{f' ({self.payload_only} payload only)' if self.payload_only else ''}, "
            f"{self.unchanged} unchanged, {self.failed_rows} failed",
            f"inference objects: {self.objects} needed, {self.embedded} embedded, "
            f"{self.cached} from the cache",
        ]
        if len(self.failed):
            with pd.option_context("display.max_colwidth", 160):
                lines.append(self.failed.head(10).to_string(index=False))
        # a bad label or cell may hold a lone surrogate, which no output stream can encode
        return "\n".join(lines).encode("utf-8", "backslashreplace").decode("utf-8")

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


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
    plan.vectors = fit(plan)
    return [models.PointStruct(id=r.id, vector={n: i.obj for n, i in r.items.items()},
                               payload=r.payload)
            for rows in plan.chunks(len(df) or 1) for r in rows]


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
        Named vectors: ``qinb.Text(...)``, ``qinb.Image(...)``, ``qinb.Bm25(...)``.
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
    df = plan.df
    plan.vectors = fit(plan, store, collection)
    # a model that cannot load fails after the spec checks and before any collection is made
    created = ensure_collection(store, collection, plan.vectors, id_column,
                                prepare=None if store.cloud else lambda: _load_models(plan.vectors))
    report = UpsertReport(collection=collection, rows=len(df), failed=plan.failed, created=created,
                          failed_rows=len(df) - len(plan.valid))
    table = {name: {"objects": 0, "embedded": 0, "cached": 0} for name in plan.vectors}
    # one chunk: a bar per vector's embedding; more: the row bar alone, without a bar per chunk
    embedder = Embedder(progress=progress and len(plan.valid) <= CHUNK_ROWS)
    late: list[tuple[Hashable, str, str]] = []  # rows that failed in embedding
    writer = Writer(store, collection, batch_size=batch_size, total=len(plan.valid),
                    progress=progress)
    try:
        with writer:
            for rows in plan.chunks(CHUNK_ROWS):
                _write_chunk(store, collection, plan.vectors, rows, created, embedder, writer,
                             report, table, late, errors)
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
    if late:
        extra = pd.DataFrame(late, columns=FAILED_COLUMNS)
        report.failed = extra if not len(report.failed) else pd.concat([report.failed, extra],
                                                                       ignore_index=True)
    if report.upserted:
        store.finish(collection, progress)
    report.vectors = pd.DataFrame.from_dict(table, orient="index").rename_axis("vector")
    report.objects = int(report.vectors["objects"].sum())
    report.embedded = int(report.vectors["embedded"].sum())
    report.cached = int(report.vectors["cached"].sum())
    return report


def _load_models(vectors: Mapping[str, Spec]) -> None:
    """Load each vector's model now (they are cached), so a ModelError leaves nothing behind."""
    from qinb import models as registry

    for spec in vectors.values():
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


def _write_chunk(store: Store, collection: str, vectors: Mapping[str, Spec], rows: list[Row],
                 created: bool, embedder: Embedder, writer: Writer, report: UpsertReport,
                 table: dict[str, dict[str, int]], late: list[tuple[Hashable, str, str]],
                 errors: str) -> None:
    """Embed what changed in one chunk of rows and queue its points for the writer."""
    stored = {} if created else {
        r.id: r.payload for r in store.retrieve(collection, [row.id for row in rows],
                                                payload=[HASH_KEY, OBJECTS_KEY])}
    upserts, updates, need = _changes(rows, stored)
    unchanged = len(rows) - len(upserts) - len(updates)
    points = {p.id: p for p in [*upserts, *updates]}
    dropped: set[int | str] = set()
    for name, spec in vectors.items():
        todo = [r for r in rows if name in need.get(r.id, ()) and r.id not in dropped]
        resolved, reasons = _resolve(embedder, name, spec, [r.items[name] for r in todo],
                                     store.cloud, table[name])
        for i, reason in reasons.items():
            row = todo[i]
            if errors == "raise":
                raise InvalidRowsError(
                    f"row {row.label!r} {spec.column}: {reason}. {writer.written} points were "
                    "written before it; fix the row and run the same upsert again (written rows "
                    "are skipped), or pass errors='skip' to store the other rows",
                    pd.DataFrame([(row.label, spec.column, reason)], columns=FAILED_COLUMNS))
            late.append((row.label, spec.column, reason))
            dropped.add(row.id)
        for row, vector in zip(todo, resolved, strict=True):
            if vector is not None:
                points[row.id].vectors[name] = vector
    report.unchanged += unchanged
    report.failed_rows += len(dropped)
    upserts = [p for p in upserts if p.id not in dropped]
    updates = [p for p in updates if p.id not in dropped]
    report.payload_only += sum(1 for p in updates if not need[p.id])
    writer.put(upserts, updates, len(rows))


def _changes(rows: list[Row], stored: Mapping[int | str, Mapping[str, Any]]
             ) -> tuple[list[Point], list[Point], dict[int | str, set[str]]]:
    """New points (every vector), updates of stored points (the vectors whose object changed,
    and the payload), and per point the vectors to embed. Unchanged rows are in neither."""
    upserts: list[Point] = []
    updates: list[Point] = []
    need: dict[int | str, set[str]] = {}
    for row in rows:
        digests = {name: object_digest(item) for name, item in sorted(row.items.items())}
        hashed = payload_hash(row.payload, sorted(row.thumbnails))
        old = stored.get(row.id)
        changed = set(digests) if old is None else {
            n for n, d in digests.items() if (old.get(OBJECTS_KEY) or {}).get(n) != d}
        if old is not None and not changed and old.get(HASH_KEY) == hashed:
            continue
        row.add_thumbnails()
        payload = {**row.payload, HASH_KEY: hashed, OBJECTS_KEY: digests}
        (upserts if old is None else updates).append(Point(row.id, {}, payload))
        need[row.id] = changed
    return upserts, updates, need


def _resolve(embedder: Embedder, name: str, spec: Spec, items: list[Item], cloud: bool,
             counts: dict[str, int]) -> tuple[list[Any], dict[int, str]]:
    """Vectors for the items (or the objects themselves, for a server that embeds them), and
    the reason for each item that cannot be embedded (its vector is None)."""
    counts["objects"] += len(items)
    if cloud or not items:
        return [i.obj for i in items], {}
    vectors: list[Any] = []
    reasons: dict[int, str] = {}

    def run(start: int, part: list[Item]) -> None:
        try:
            made, fresh, cached = embedder.resolve(part, runtime=spec.runtime_options,
                                                   desc=f"embedding {name!r}")
        except QinbError:
            raise
        except Exception as exc:
            if len(part) == 1:
                vectors.append(None)
                reasons[start] = f"{spec.model} cannot embed it ({type(exc).__name__}: {exc})"
                return
            # halve until the failing objects are found; the others still get their vectors
            half = len(part) // 2
            run(start, part[:half])
            run(start + half, part[half:])
            return
        vectors.extend(made)
        counts["embedded"] += fresh
        counts["cached"] += cached

    run(0, items)
    return vectors, reasons
