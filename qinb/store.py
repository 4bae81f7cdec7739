"""Every call qinb makes to the engine, in one place: connect, schema, write, query.

``connect`` returns a plain ``qdrant_client.QdrantClient`` so that all of Qdrant's API works on
the collections qinb writes. Local mode scans every point; keeping the engine calls here is what
lets a faster embedded engine take over later.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from qinb.errors import CollectionError, SpecConflictError, StoreError, StoreLockedError
from qinb.spec import Bm25, Spec, Text, specs_from_metadata, specs_to_metadata

__all__ = ["connect", "default_path"]

_open: dict[str, QdrantClient] = {}
_lock = threading.Lock()
HASH_KEY = "_qinb_hash"
ROW_KEY = "_qinb_row"
MAX_REQUEST_BYTES = 24 * 2**20  # under the server's 32 MB limit, with room for the envelope


def default_path() -> Path:
    """Directory of the embedded default store (``QINB_STORE``, else ``~/.qinb/store``)."""
    return Path(os.environ.get("QINB_STORE") or Path.home() / ".qinb" / "store").expanduser()


def connect(path: str | os.PathLike[str] | None = None, *, url: str | None = None,
            api_key: str | None = None, cloud_inference: bool = False,
            **kwargs: Any) -> QdrantClient:
    """A Qdrant client: the embedded store by default, ``":memory:"``, or a server.

    Opening the same path twice in one kernel returns the same client instead of failing on the
    store's lock. Extra keyword arguments go to ``QdrantClient``.

    Parameters
    ----------
    path : str or Path, optional
        Directory of an embedded store, or ``":memory:"``. Default: :func:`default_path`.
    url, api_key : str, optional
        A Qdrant server or Qdrant Cloud cluster.
    cloud_inference : bool
        Let the server embed the inference objects (Qdrant Cloud Inference).

    Examples
    --------
    >>> client = qinb.connect()                                  # embedded, persistent
    >>> client = qinb.connect(":memory:")
    >>> client = qinb.connect(url="https://xyz.cloud.qdrant.io", api_key="...", cloud_inference=True)
    """
    if url is not None:
        if path is not None:
            raise ValueError("pass either path= (embedded store) or url= (server), not both")
        return QdrantClient(url=url, api_key=api_key, cloud_inference=cloud_inference, **kwargs)
    if cloud_inference:
        raise ValueError("cloud_inference=True needs a server: pass url= and api_key=")
    if str(path) == ":memory:":
        return QdrantClient(location=":memory:", **kwargs)
    where = Path(path).expanduser() if path is not None else default_path()
    where.mkdir(parents=True, exist_ok=True)
    key = str(where.resolve())
    with _lock:
        if key not in _open:
            try:
                _open[key] = QdrantClient(path=key, **kwargs)
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                raise StoreLockedError(
                    f"the embedded store at {key} is open in another process (another notebook "
                    "kernel or script). Close that kernel or call client.close() there, use "
                    "another path with qinb.connect(path=...), or use a Qdrant server for "
                    "shared access"
                ) from None
        return _open[key]


def close_all() -> None:
    """Close every embedded store this process opened, releasing their locks for others."""
    with _lock:
        while _open:
            _open.popitem()[1].close()


# embedded stores close before the interpreter tears down the modules they use
atexit.register(close_all)


def is_cloud(client: QdrantClient) -> bool:
    """True when the server embeds the inference objects itself."""
    return bool(getattr(client, "cloud_inference", False))


def saved_specs(client: QdrantClient, collection: str) -> tuple[dict[str, Spec], str | None]:
    """The specs and id column saved with a collection."""
    if not client.collection_exists(collection):
        known = ", ".join(c.name for c in client.get_collections().collections) or "none"
        raise CollectionError(
            f"collection {collection!r} does not exist (collections here: {known}); "
            "create it with df.qdrant.upsert"
        )
    metadata = client.get_collection(collection).config.metadata
    specs = specs_from_metadata(collection, metadata)
    return specs, (metadata or {}).get("qinb", {}).get("id_column")


def ensure_collection(client: QdrantClient, collection: str, specs: Mapping[str, Spec],
                      id_column: str | None) -> bool:
    """Create the collection from the specs, or check they match it. True if created.

    Raises SpecConflictError, before anything is written, on another model, another size, a
    vector the collection lacks or a stored vector this upsert would drop.
    """
    dense = {n: s.vector_params() for n, s in specs.items() if isinstance(s, Text)}
    sparse = {n: s.sparse_params() for n, s in specs.items() if isinstance(s, Bm25)}
    if not client.collection_exists(collection):
        client.create_collection(collection, vectors_config=dense, sparse_vectors_config=sparse,
                                 metadata=specs_to_metadata(specs, id_column))
        return True
    config = client.get_collection(collection).config
    saved = ((config.metadata or {}).get("qinb") or {}).get("vectors", {})
    have_dense = config.params.vectors if isinstance(config.params.vectors, dict) else {}
    have_sparse = config.params.sparse_vectors or {}
    problems = []
    for name, spec in specs.items():
        old = saved.get(name, {})
        old_model = old.get("model", "?")
        if name not in have_dense and name not in have_sparse:
            problems.append(f"vector {name!r} ({spec.model}) does not exist in the collection")
        elif (name in have_dense and spec.kind == "bm25") or (name in have_sparse and spec.kind != "bm25"):
            kind = "dense" if name in have_dense else "sparse"
            problems.append(f"vector {name!r} is {kind} in the collection but {spec.kind} here")
        elif name in have_dense and (
            have_dense[name].size != spec.size or (old and old_model.lower() != spec.model.lower())
        ):
            problems.append(
                f"vector {name!r}: the collection has {old_model} ({have_dense[name].size}-d), "
                f"this upsert has {spec.model} ({spec.size}-d)"
            )
        elif old and (old.get("column"), old.get("options")) != (spec.column, spec.model_options):
            problems.append(
                f"vector {name!r}: the collection embeds column {old.get('column')!r} with options "
                f"{old.get('options')}, this upsert column {spec.column!r} with {spec.model_options}"
            )
    for name in [*have_dense, *have_sparse]:
        if name not in specs:
            problems.append(f"the collection has vector {name!r}, which this upsert would drop; "
                            "pass its spec too")
    if problems:
        raise SpecConflictError(
            f"the specs conflict with collection {collection!r}; nothing was written:\n  - "
            + "\n  - ".join(problems)
            + "\nUse another collection name, or delete this one with client.delete_collection."
        )
    return False


def stored_hashes(client: QdrantClient, collection: str,
                  ids: Sequence[int | str]) -> dict[int | str, str]:
    """The content hash stored with each of ``ids`` that exists."""
    found: dict[int | str, str] = {}
    for start in range(0, len(ids), 1024):
        records = client.retrieve(collection, list(ids[start:start + 1024]),
                                  with_payload=[HASH_KEY], with_vectors=False)
        for r in records:
            if r.payload and HASH_KEY in r.payload:
                found[r.id if isinstance(r.id, int) else str(r.id)] = r.payload[HASH_KEY]
    return found


def write(client: QdrantClient, collection: str, points: Sequence[models.PointStruct],
          batch_size: int, progress: bool) -> int:
    """Upsert points in batches; on a failure say how many were written and that a re-run resumes."""
    from tqdm.auto import tqdm

    written = 0
    with tqdm(total=len(points), desc="writing", unit="pt", disable=not progress) as bar:
        for batch in batches(points, batch_size):
            try:
                client.upsert(collection, points=batch, wait=True)
            except Exception as exc:
                raise StoreError(
                    f"writing to {collection!r} failed after {written} of {len(points)} points "
                    f"({type(exc).__name__}: {exc}). The points written are complete; run the same "
                    "upsert again to write the rest (unchanged rows are skipped)"
                ) from exc
            written += len(batch)
            bar.update(len(batch))
    return written


def batches(points: Sequence[models.PointStruct], batch_size: int,
            max_bytes: int = MAX_REQUEST_BYTES) -> list[list[models.PointStruct]]:
    """Split points into batches of at most ``batch_size`` points and, where points carry images
    for a server to embed, at most ``max_bytes`` of JSON (Qdrant refuses requests over 32 MB)."""
    out: list[list[models.PointStruct]] = []
    current: list[models.PointStruct] = []
    size = 0
    for point in points:
        vectors = point.vector.values() if isinstance(point.vector, dict) else []
        heavy = any(isinstance(v, models.Image) for v in vectors)
        cost = len(point.model_dump_json()) if heavy else 0
        if current and (len(current) >= batch_size or size + cost > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(point)
        size += cost
    if current:
        out.append(current)
    return out


def query(client: QdrantClient, collection: str, **request: Any) -> list[models.ScoredPoint]:
    """Run one ``query_points`` request and return its points."""
    return client.query_points(collection, with_payload=True, **request).points


def dense_vectors(client: QdrantClient, collection: str, using: str, *, sample: int,
                  seed: int = 0) -> tuple[list[int | str], Any]:
    """Ids and a matrix of the stored vectors ``using``; a random sample above ``sample`` points."""
    import numpy as np

    ids: list[int | str] = []
    rows: list[list[float]] = []
    offset = None
    while True:
        page, offset = client.scroll(collection, limit=1024, offset=offset, with_payload=False,
                                     with_vectors=[using])
        for record in page:
            vector = record.vector.get(using) if isinstance(record.vector, dict) else None
            if isinstance(vector, list) and vector and not isinstance(vector[0], list):
                ids.append(record.id if isinstance(record.id, int) else str(record.id))
                rows.append(vector)
        if offset is None:
            break
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    if len(ids) > sample:
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), sample, replace=False))
        ids, matrix = [ids[i] for i in keep], matrix[keep]
    return ids, matrix


def has_point(client: QdrantClient, collection: str, point_id: int | str) -> bool:
    """Whether a point with this id exists."""
    return bool(client.retrieve(collection, [point_id], with_payload=False, with_vectors=False))


def sample_payloads(client: QdrantClient, collection: str, limit: int,
                    exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The payloads of up to ``limit`` points, for facets, without the ``exclude`` keys."""
    selector = models.PayloadSelectorExclude(exclude=list(exclude)) if exclude else True
    records, _ = client.scroll(collection, limit=limit, with_payload=selector, with_vectors=False)
    return [dict(r.payload or {}) for r in records]


def count(client: QdrantClient, collection: str) -> int:
    """Number of points in the collection."""
    return client.count(collection, exact=True).count
