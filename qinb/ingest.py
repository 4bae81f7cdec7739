"""The upsert pipeline: DataFrame -> inference objects -> vectors (local) or objects (server) -> store."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from qdrant_client import QdrantClient, models

from qinb import store
from qinb.embed import Embedder, Item, Vector
from qinb.errors import InvalidRowsError, QinbError
from qinb.images import ImageCell, thumbnail_column
from qinb.inference import check_columns, content_hash, documents, json_safe, point_id
from qinb.spec import Spec

__all__ = ["UpsertReport", "to_points", "upsert"]

FAILED_COLUMNS = ["row", "column", "reason"]


@dataclass
class UpsertReport:
    """What an upsert did.

    Attributes
    ----------
    rows : int
        Rows in the DataFrame.
    upserted : int
        Points written (new or changed rows).
    unchanged : int
        Rows skipped because the stored point has the same content.
    objects : int
        Inference objects the written points needed (one per row and named vector).
    embedded : int
        Distinct objects actually embedded here (0 when the server embeds them).
    failed : DataFrame
        One row per problem: ``row`` (index label), ``column``, ``reason``.
    vectors : DataFrame
        ``objects`` and ``embedded`` per named vector.
    """

    collection: str
    rows: int = 0
    upserted: int = 0
    unchanged: int = 0
    objects: int = 0
    embedded: int = 0
    failed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILED_COLUMNS))
    vectors: pd.DataFrame = field(default_factory=pd.DataFrame)
    created: bool = False

    def __str__(self) -> str:
        lines = [
            f"{'created' if self.created else 'updated'} collection {self.collection!r}: "
            f"{self.rows} rows, {self.upserted} upserted, {self.unchanged} unchanged, "
            f"{self.failed['row'].nunique()} failed",
            f"inference objects: {self.objects} needed, {self.embedded} embedded",
        ]
        if len(self.failed):
            lines.append(self.failed.head(10).to_string(index=False))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


@dataclass
class _Row:
    label: Hashable
    id: int | str
    payload: dict[str, Any]
    items: dict[str, Item]
    thumbnails: dict[str, ImageCell]  # image columns whose thumbnail goes into the payload

    def add_thumbnails(self) -> None:
        """Make the thumbnails: only for points about to be written (unchanged rows skip this)."""
        for column, cell in self.thumbnails.items():
            self.payload[thumbnail_column(column)] = cell.thumbnail()


def _prepare(df: pd.DataFrame, vectors: Mapping[str, Spec], id_column: str | None,
             payload: Sequence[str] | None, errors: str, *, wire: bool = False,
             thumbnails: bool = False) -> tuple[list[_Row], pd.DataFrame]:
    """Valid rows ready to become points, and the problems of the others."""
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    if not vectors:
        raise ValueError("vectors= is empty: name at least one vector, e.g. {'text': qinb.Text('col')}")
    columns = list(df.columns) if payload is None else list(payload)
    check_columns(df, columns, "payload=")
    if id_column is not None:
        check_columns(df, [id_column], "id_column=")
    docs_by_vector: dict[str, dict[int, Item]] = {}
    problems: list[tuple[int, str, str]] = []
    for name, spec in vectors.items():
        docs_by_vector[name], bad = documents(df, name, spec, wire=wire)
        problems.extend(bad)
    keys = (df[id_column] if id_column is not None else df.index).tolist()
    ids = [point_id(k) for k in keys]
    seen: set[int | str] = set()
    for pos, pid in enumerate(ids):
        if pid in seen:
            problems.append((pos, id_column or "index",
                             f"duplicate id {keys[pos]!r}: an earlier row has the same id"))
        seen.add(pid)
    # two vectors of one column report the same cell once
    problems = sorted(set(problems), key=lambda p: p[0])
    bad_positions = {pos for pos, _, _ in problems}
    failed = pd.DataFrame([(df.index[pos], column, why) for pos, column, why in problems],
                          columns=FAILED_COLUMNS)
    if len(failed) and errors == "raise":
        rows = list(dict.fromkeys(failed["row"]))
        raise InvalidRowsError(
            f"{len(rows)} row(s) cannot be upserted, rows {rows[:10]}"
            f"{' ...' if len(rows) > 10 else ''}: "
            + "; ".join(f"row {r!r} {c}: {why}" for r, c, why in failed.head(5).itertuples(False))
            + ". Fix them, or pass errors='skip' to store the other rows and get these in "
              "report.failed. Nothing was written.",
            failed,
        )
    source_columns = [s.column for s in vectors.values()]
    keep = list(dict.fromkeys([*columns, *source_columns]))
    records = df[keep].to_dict("records")
    rows = []
    for pos, raw in enumerate(records):
        if pos in bad_positions:
            continue
        label = df.index[pos]
        items = {n: d[pos] for n, d in docs_by_vector.items()}
        # image cells are stored as their reference, not their pixels (the engine does not
        # keep inference input), so they skip the JSON conversion
        images = {str(vectors[n].column): i.data for n, i in items.items()
                  if isinstance(i.data, ImageCell)}
        data = {str(k): json_safe(v) for k, v in raw.items() if str(k) not in images}
        data[store.ROW_KEY] = json_safe(label)
        data.update({column: cell.source for column, cell in images.items()})
        rows.append(_Row(label, ids[pos], data, items, images if thumbnails else {}))
    return rows, failed


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
    rows, _ = _prepare(df, vectors, id_column, payload, errors, wire=True)
    return [models.PointStruct(id=r.id, vector={n: i.obj for n, i in r.items.items()},
                               payload=r.payload) for r in rows]


def upsert(df: pd.DataFrame, collection: str, vectors: Mapping[str, Spec], *,
           client: QdrantClient | None = None, id_column: str | None = None,
           payload: Sequence[str] | None = None, batch_size: int = 256,
           errors: Literal["raise", "skip"] = "raise", progress: bool = True,
           thumbnails: bool = False) -> UpsertReport:
    """Embed the text columns of ``df`` and upsert them as named vectors.

    Parameters
    ----------
    df : DataFrame
    collection : str
        Created from the specs if missing; otherwise the specs must match it.
    vectors : dict of str to spec
        Named vectors: ``qinb.Text(...)``, ``qinb.Bm25(...)``.
    client : QdrantClient, optional
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
    client = client if client is not None else store.connect()
    cloud = store.is_cloud(client)
    rows, failed = _prepare(df, vectors, id_column, payload, errors, wire=cloud,
                            thumbnails=thumbnails)
    created = store.ensure_collection(client, collection, vectors, id_column)
    for row in rows:
        row.payload[store.HASH_KEY] = content_hash(row.payload, row.items, sorted(row.thumbnails))
    stored = {} if created else store.stored_hashes(client, collection, [r.id for r in rows])
    todo = [r for r in rows if stored.get(r.id) != r.payload[store.HASH_KEY]]
    for row in todo:
        row.add_thumbnails()
    embedder = Embedder(progress=progress)
    resolved: dict[str, list[Vector] | list[models.Document | models.Image]] = {}
    per_vector = []
    for name, spec in vectors.items():
        items = [r.items[name] for r in todo]
        if cloud:
            resolved[name], made = [i.obj for i in items], 0
        else:
            try:
                resolved[name], made = embedder.resolve(items, runtime=spec.runtime_options,
                                                        desc=f"embedding {name!r}")
            except QinbError:
                raise
            except Exception as exc:
                raise QinbError(
                    f"embedding vector {name!r} with {spec.model} failed "
                    f"({type(exc).__name__}: {exc}); nothing was written"
                ) from exc
        per_vector.append({"vector": name, "objects": len(items), "embedded": made})
    points = [
        models.PointStruct(id=r.id, payload=r.payload,
                           vector={name: resolved[name][i] for name in vectors})
        for i, r in enumerate(todo)
    ]
    written = store.write(client, collection, points, batch_size, progress) if points else 0
    table = pd.DataFrame(per_vector, columns=["vector", "objects", "embedded"]).set_index("vector")
    return UpsertReport(
        collection=collection, rows=len(df), upserted=written, unchanged=len(rows) - len(todo),
        objects=int(table["objects"].sum()), embedded=int(table["embedded"].sum()),
        failed=failed, vectors=table, created=created,
    )
