"""Collections as qinb sees them: specs saved with them, checked against an upsert's specs, and
what plots and widgets read back. Engine-independent: every engine call goes through a Store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from qinb.errors import CollectionError, SpecConflictError
from qinb.spec import Bm25, Spec, public, specs_from_metadata, specs_to_metadata
from qinb.store.base import PointId, Store

__all__ = ["dense_vectors", "ensure_collection", "kept_as", "require", "sample_payloads",
           "saved_specs", "split_row"]


def require(store: Store, collection: str) -> None:
    """A CollectionError naming the collections there are, unless ``collection`` exists."""
    if not store.exists(collection):
        known = ", ".join(store.collections()) or "none"
        raise CollectionError(
            f"collection {collection!r} does not exist in {store.where()} (collections here: "
            f"{known}); create it with df.qdrant.upsert"
        )


def split_row(payload: Mapping[str, Any], point_id: PointId) -> tuple[Any, dict[str, Any]]:
    """A stored point's source row label (its id where none was stored) and its payload without
    qinb's own keys: how hits and read-back rows are indexed and what columns they show."""
    from qinb.payload import RESERVED_PREFIX
    from qinb.store import ROW_KEY  # defined beside the package's imports of this module

    label = payload.get(ROW_KEY, point_id)
    fields = {k: v for k, v in payload.items() if not k.startswith(RESERVED_PREFIX)}
    return (tuple(label) if isinstance(label, list) else label), fields


def saved_specs(store: Store, collection: str, secrets: Mapping[str, str] | None = None
                ) -> tuple[dict[str, Spec], str | None]:
    """The specs and id column saved with a collection (credentials from ``secrets`` or the
    environment: they are never saved)."""
    require(store, collection)
    metadata = store.shape(collection).metadata
    specs = specs_from_metadata(collection, metadata, secrets)
    return specs, (metadata or {}).get("qinb", {}).get("id_column")


def _sizes(specs: Mapping[str, Spec]) -> tuple[dict[str, int], list[str], list[str]]:
    """Dense sizes, sparse names, and the dense vectors that are multivectors (chunked)."""
    dense = {n: s.vector_params().size for n, s in specs.items() if not isinstance(s, Bm25)}
    return (dense, [n for n, s in specs.items() if isinstance(s, Bm25)],
            [n for n, s in specs.items() if s.chunked])


def _storage(specs: Mapping[str, Spec]) -> dict[str, dict[str, Any]]:
    """Each vector kept on disk or quantized, and how."""
    return {n: s.storage() for n, s in specs.items() if s.storage()}


def kept_as(saved: Mapping[str, Any]) -> dict[str, Any]:
    """How a saved vector is kept (its spec's ``storage()``)."""
    return {k: saved[k] for k in ("on_disk", "quantization", "hnsw") if saved.get(k)}


def _chunking(saved: Mapping[str, Any]) -> str:
    size = saved.get("chunk_size")
    return (f"chunk_size={size}, chunk_overlap={saved.get('chunk_overlap') or 0}" if size
            else "no chunk_size")


def ensure_collection(store: Store, collection: str, specs: Mapping[str, Spec],
                      id_column: str | None, prepare: Callable[[], None] | None = None) -> bool:
    """Create the collection from the specs, or check they match it. True if created.

    A vector the collection lacks is added to it (its spec saved with the others). Raises
    SpecConflictError, before anything is written, on another model, another size, another
    column or options, or a stored vector this upsert would drop. ``prepare`` runs after the
    checks and before the first change (to load models, so that their errors change nothing).
    """
    if not store.exists(collection):
        dense, sparse, multi = _sizes(specs)
        if prepare is not None:
            prepare()
            prepare = None
        try:
            store.create(collection, dense, sparse, specs_to_metadata(specs, id_column), multi,
                         _storage(specs))
            return True
        except Exception:
            if not store.exists(collection):
                raise
            # another notebook created it meanwhile: these specs are checked against it below
    shape = store.shape(collection)
    saved = ((shape.metadata or {}).get("qinb") or {}).get("vectors", {})
    problems = []
    new: dict[str, Spec] = {}
    for name, spec in specs.items():
        old = saved.get(name, {})
        old_model = old.get("model", "?")
        if name not in shape.dense and name not in shape.sparse:
            new[name] = spec
        elif (name in shape.dense and spec.kind == "bm25") or (name in shape.sparse and spec.kind != "bm25"):
            kind = "dense" if name in shape.dense else "sparse"
            problems.append(f"vector {name!r} is {kind} in the collection but {spec.kind} here")
        elif name in shape.dense and (
            shape.dense[name] != spec.size or (old and old_model.lower() != spec.model.lower())
        ):
            problems.append(
                f"vector {name!r}: the collection has {old_model} ({shape.dense[name]}-d), "
                f"this upsert has {spec.model} ({spec.size}-d)"
            )
        elif (name in shape.multi) != spec.chunked or (old and _chunking(old) != _chunking(
                spec.to_dict())):
            # passages of another length are other vectors: mixing them would rank unfairly
            problems.append(
                f"vector {name!r}: the collection has {_chunking(old) if old else 'passages'}, "
                f"this upsert {_chunking(spec.to_dict())}; changing it re-embeds every row, so "
                "upsert into a new collection (or under a new vector name)")
        elif old and kept_as(old) != spec.storage():
            problems.append(
                f"vector {name!r}: the collection keeps it {kept_as(old) or 'in RAM, full precision'}, "
                f"this upsert {spec.storage() or 'in RAM, full precision'}; how a vector is kept "
                "is set when it is created, so upsert into a new collection")
        elif old and (old.get("column"), public(old.get("options") or {})) != (
                spec.column, public(spec.model_options)):
            # credentials are left out: never shown, and a rotated key is no conflict
            problems.append(
                f"vector {name!r}: the collection embeds column {old.get('column')!r} with options "
                f"{public(old.get('options') or {})}, this upsert column {spec.column!r} with "
                f"{public(spec.model_options)}"
            )
    for name in [*shape.dense, *shape.sparse]:
        if name not in specs:
            problems.append(f"the collection has vector {name!r}, which this upsert would drop; "
                            "pass its spec too")
    for name, spec in new.items():
        if spec.storage():
            problems.append(
                f"vector {name!r} ({spec.storage()}) would be added to an existing collection, "
                "which gives a new vector the collection's own storage (in RAM, full precision "
                "on Qdrant Edge): upsert into a new collection with every vector")
    if problems:
        raise SpecConflictError(
            f"the specs conflict with collection {collection!r}; nothing was written:\n  - "
            + "\n  - ".join(problems)
            + "\nUse another collection name, or delete this one with qinb.connect().delete(name)."
        )
    if prepare is not None:
        prepare()
    # metadata an older qinb saved with credentials in it is rewritten without them
    scrub = any(public(v.get("options") or {}) != (v.get("options") or {}) for v in saved.values())
    if new or scrub:
        if new:
            dense, sparse, multi = _sizes(new)
            store.add_vectors(collection, dense, sparse, multi)
        old_id_column = (shape.metadata.get("qinb") or {}).get("id_column")
        store.save_metadata(collection, {**shape.metadata, **specs_to_metadata(specs, old_id_column)})
    return False


def dense_vectors(store: Store, collection: str, using: str, *, sample: int,
                  seed: int = 0) -> tuple[list[PointId], Any]:
    """Ids and a matrix of the stored vectors ``using`` (a chunked row's is the mean of its
    passages); a random sample above ``sample`` points."""
    ids: list[PointId] = []
    rows: list[Any] = []
    for records, _ in store.pages(collection, payload=False, vectors=[using]):
        for record in records:
            vector = record.vectors.get(using)
            if isinstance(vector, np.ndarray) and vector.size:
                ids.append(record.id)
                # a chunked row (one vector per passage) is the mean of its passages
                rows.append(vector.mean(axis=0) if vector.ndim == 2 else vector)
    matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
    if len(ids) > sample:
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), sample, replace=False))
        ids, matrix = [ids[i] for i in keep], matrix[keep]
    return ids, matrix


def sample_payloads(store: Store, collection: str, limit: int,
                    exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The payloads of up to ``limit`` points, for facets, without the ``exclude`` keys."""
    records, _ = store.scroll(collection, limit=limit, exclude=exclude)
    return [r.payload for r in records]
