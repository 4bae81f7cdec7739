"""The qdrant-client engine: a Qdrant server or cluster, Qdrant Cloud (with or without cloud
inference), or qdrant-client's local mode."""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from qdrant_client import QdrantClient, models

from qinb.errors import QinbError, QueryError, StoreError
from qinb.store.base import (
    Hit,
    Point,
    PointId,
    Probe,
    Record,
    Shape,
    Store,
    StoredVector,
    extent_of,
    plain_id,
    records,
    vector_selector,
)
from qinb.store.edge import HNSW_EF, OVERSAMPLING
from qinb.store.faults import MARGIN, disk_fault, ensure_room, ensure_space

INDEXING_THRESHOLD_KB = 20_000  # Qdrant's default: segments past it get their graph

__all__ = ["ClientStore"]

RETRY_STATUSES = (429, 503)
TRIES = 4  # one call and three retries of a busy server
BACKOFF = 1.0  # seconds before the first retry when the server does not say (doubling)
MAX_WAIT = 30.0  # a longer Retry-After is reported, not waited for
F = TypeVar("F", bound=Callable[..., Any])


def _status(exc: BaseException) -> tuple[int | None, float | None]:
    """The HTTP status of a failed call and the seconds its Retry-After asks for."""
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import UnexpectedResponse

    if isinstance(exc, ResourceExhaustedResponse):
        return 429, float(exc.retry_after_s)
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code, _retry_after(exc.headers.get("Retry-After"))
    return None, None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return None if when is None else max(0.0, when.timestamp() - time.time())


def _detail(exc: BaseException) -> str:
    """What the server said, or what went wrong on the way, in one short line."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        try:
            said = json.loads(exc.content)["status"]["error"]
        except Exception:
            said = exc.content[:200].decode("utf-8", "replace").strip() or exc.reason_phrase
        return f"{exc.status_code} {exc.reason_phrase}: {said}".strip(": ")
    if isinstance(exc, ResponseHandlingException):
        exc = exc.source
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _advice(status: int | None, exc: BaseException) -> str:
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if status in (401, 403):
        return "the server refused the credentials: check api_key="
    if status in RETRY_STATUSES:
        return f"the server stayed busy over {TRIES} tries: try again later, or lower batch_size="
    if isinstance(source, httpx.TimeoutException):
        return "the server did not answer in time: try again, or pass timeout= to qinb.connect"
    if isinstance(source, (httpx.ConnectError, httpx.NetworkError, ConnectionError)):
        return "cannot reach it: check that the server runs and that the URL is right"
    if status is not None and status >= 500:
        return "the server failed: see its log, then try again"
    return "see the detail above"


def _guarded(what: str, *, write: bool = False) -> Callable[[F], F]:
    """Run an engine call with retries of a busy server (429/503, honouring Retry-After), and
    turn every failure into a StoreError (a QueryError for a query the server refused) that
    names the store, the call and the status."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def call(self: ClientStore, *args: Any, **kwargs: Any) -> Any:
            described = what.format(args[0] if args else kwargs.get("collection"))
            if self.closed:
                raise StoreError(f"{described} in {self.where()}: this store was closed; "
                                 "qinb.connect() with the same arguments gives an open one")
            for attempt in range(TRIES):
                try:
                    with self._lock:
                        return method(self, *args, **kwargs)
                except QinbError:
                    raise
                except Exception as exc:
                    status, wait = _status(exc)
                    if status in RETRY_STATUSES and attempt + 1 < TRIES:
                        wait = BACKOFF * 2**attempt if wait is None else wait
                        if wait <= MAX_WAIT:
                            time.sleep(wait)
                            continue
                    raise self._error(described, exc, status, write) from exc
            raise AssertionError("unreachable")  # the last try returns or raises

        return call  # type: ignore[return-value]

    return wrap


def _wire(vector: StoredVector) -> Any:
    """A vector as qdrant-client takes it: dense arrays become lists."""
    return vector.tolist() if isinstance(vector, np.ndarray) else vector


def _read(vector: Any) -> StoredVector:
    """Dense vectors (a list) and multivectors (a list of lists) as numpy arrays."""
    if isinstance(vector, list):
        return np.asarray(vector, dtype=np.float32)
    return vector


def _dense_config(size: int, multi: bool, storage: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """A dense vector's config; a multivector (chunked passages) is searched exactly, without
    an HNSW graph (m=0), as on Qdrant Edge: see ``_dense_params`` in ``edge.py``. ``storage``
    may put the vectors on disk and keep a quantized copy in RAM."""
    config: dict[str, Any] = {"size": size, "distance": models.Distance.COSINE}
    if multi:
        config.update(hnsw_config=models.HnswConfigDiff(m=0), multivector_config=models.MultiVectorConfig(
            comparator=models.MultiVectorComparator.MAX_SIM))
    storage = storage or {}
    graph = {**(storage.get("hnsw") or {}), **({"on_disk": True} if storage.get("on_disk") else {})}
    if storage.get("on_disk"):  # the vectors, and their graph below
        config["on_disk"] = True
    if graph:
        config["hnsw_config"] = models.HnswConfigDiff(**{
            **(config["hnsw_config"].model_dump(exclude_none=True) if "hnsw_config" in config
               else {}), **graph})
    if storage.get("quantization") == "int8":
        config["quantization_config"] = models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
            type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
    elif storage.get("quantization") == "binary":
        config["quantization_config"] = models.BinaryQuantization(
            binary=models.BinaryQuantizationConfig(always_ram=True))
    return config


def _params(probe: Probe, local: bool) -> models.SearchParams | None:
    # local mode always searches exactly (and has no quantized copies), and warns when it is
    # told to do either
    if local or not (probe.exact or probe.quantized or probe.graph):
        return None
    rescore = (models.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)
               if probe.quantized else None)
    return models.SearchParams(exact=probe.exact or None, quantization=rescore,
                               hnsw_ef=HNSW_EF if probe.graph and not probe.exact else None)


def _selector(payload: bool | Sequence[str], exclude: Sequence[str] = ()) -> Any:
    if exclude:
        return models.PayloadSelectorExclude(exclude=list(exclude))
    return payload if isinstance(payload, bool) else list(payload)


class ClientStore(Store):
    """Collections behind a ``qdrant_client.QdrantClient``.

    Parameters
    ----------
    client : QdrantClient
        Any client: ``QdrantClient(url=...)``, ``QdrantClient(":memory:")``,
        ``QdrantClient(path=...)`` or one with ``cloud_inference=True``.
    where : str, optional
        How to name it in messages (default: the URL, or "local mode").
    """

    def __init__(self, client: QdrantClient, where: str | None = None) -> None:
        self.client = client
        self.cloud = bool(getattr(client, "cloud_inference", False))
        self._where = where
        # local mode is not safe from several threads (a widget callback and a running cell);
        # a server is, and takes calls from several threads at once
        self._lock: Any = threading.RLock() if self._local() else contextlib.nullcontext()
        self.closed = False
        # local mode on a path writes to this disk: its faults are named and checked for
        location = getattr(getattr(client, "_client", None), "location", None)
        self.disk = (Path(location) if self._local() and location and location != ":memory:"
                     else None)

    def _local(self) -> bool:
        from qdrant_client.local.qdrant_local import QdrantLocal

        return isinstance(getattr(self.client, "_client", None), QdrantLocal)

    def _error(self, what: str, exc: BaseException, status: int | None,
               write: bool) -> QinbError:
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException

        if self.disk is not None:
            found = disk_fault(exc, self.disk, what)
            if found is not None:
                # local mode writes point by point: part of the failed request may be stored
                return StoreError(str(found), uncertain=write)
        source = exc.source if isinstance(exc, ResponseHandlingException) else exc
        lost = write and isinstance(source, httpx.TimeoutException)
        # a cluster may apply a write and then answer 500 (a timeout waiting for replication)
        applied = write and status is not None and status >= 500
        message = (f"{what} in {self.where()} failed ({_detail(exc)}); "
                   f"{_advice(status, exc)}")
        if lost:
            message += ". The answer was lost, so this request may have been written"
        elif applied:
            message += (f". A server may apply a write it answers {status} to (a cluster does "
                        "when replication times out), so this request may have been written")
        if what.startswith("querying") and status in (400, 422):
            return QueryError(message)
        return StoreError(message, uncertain=lost or applied)

    def where(self) -> str:
        if self._where:
            return self._where
        inner = getattr(self.client, "_client", None)
        url = getattr(inner, "rest_uri", None)
        return str(url) if url else "qdrant-client local mode"

    @_guarded("listing the collections")
    def collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    @_guarded("checking collection {0!r}")
    def exists(self, collection: str) -> bool:
        return bool(self.client.collection_exists(collection))

    @_guarded("creating collection {0!r}", write=True)
    def create(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
               metadata: Mapping[str, Any], multi: Sequence[str] = (),
               storage: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        if self.disk is not None:
            ensure_space(self.disk, MARGIN, f"creating collection {collection!r}")
        self.client.create_collection(
            collection,
            vectors_config={n: models.VectorParams(**_dense_config(s, n in multi, (storage or {}).get(n)))
                            for n, s in dense.items()},
            sparse_vectors_config={n: models.SparseVectorParams(
                modifier=models.Modifier.IDF,
                index=models.SparseIndexParams(on_disk=True)
                if (storage or {}).get(n, {}).get("on_disk") else None) for n in sparse},
            # a server builds no graph while the upsert that creates it goes in: it is built
            # once, after the load (finish), rather than again and again as segments fill
            optimizers_config=None if self._local() else models.OptimizersConfigDiff(
                indexing_threshold=0),
            metadata=dict(metadata))

    @_guarded("adding vectors to collection {0!r}", write=True)
    def add_vectors(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
                    multi: Sequence[str] = (),
                    storage: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        for name, size in dense.items():
            # a vector added later takes its storage, index and quantization from the collection
            config = _dense_config(size, name in multi)
            self.client.create_vector_name(collection, name, models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=size, distance=config["distance"],
                                               multivector_config=config.get("multivector_config"))))
        for name in sparse:
            self.client.create_vector_name(collection, name, models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))

    @_guarded("reading collection {0!r}")
    def shape(self, collection: str) -> Shape:
        config = self.client.get_collection(collection).config
        vectors = config.params.vectors if isinstance(config.params.vectors, dict) else {}
        return Shape(dense={n: v.size for n, v in vectors.items()},
                     sparse=frozenset(config.params.sparse_vectors or {}),
                     metadata=dict(config.metadata or {}),
                     multi=frozenset(n for n, v in vectors.items() if v.multivector_config))

    @_guarded("saving the specs of collection {0!r}", write=True)
    def save_metadata(self, collection: str, metadata: Mapping[str, Any]) -> None:
        self.client.update_collection(collection, metadata=dict(metadata))

    @_guarded("deleting collection {0!r}", write=True)
    def delete(self, collection: str) -> None:
        self.client.delete_collection(collection)

    @_guarded("writing points to collection {0!r}", write=True)
    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        if self.disk is not None:  # local mode: a server checks its own disk
            ensure_room(self.disk, collection, points)
        self.client.upsert(collection, wait=True, points=[
            models.PointStruct(id=p.id, payload=p.payload,
                               vector={n: _wire(v) for n, v in p.vectors.items()})
            for p in points])

    @_guarded("deleting points of collection {0!r}", write=True)
    def delete_points(self, collection: str, ids: Sequence[PointId]) -> None:
        self.client.delete(collection, points_selector=models.PointIdsList(points=list(ids)),
                           wait=True)

    @_guarded("updating points of collection {0!r}", write=True)
    def update(self, collection: str, points: Sequence[Point]) -> None:
        if self.disk is not None:  # local mode: a server checks its own disk
            ensure_room(self.disk, collection, points)
        with_vectors = [p for p in points if p.vectors]
        if with_vectors:
            self.client.update_vectors(collection, wait=True, points=[
                models.PointVectors(id=p.id, vector={n: _wire(v) for n, v in p.vectors.items()})
                for p in with_vectors])
        self.client.batch_update_points(collection, wait=True, update_operations=[
            models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(
                payload=p.payload, points=[p.id])) for p in points])

    @_guarded("reading points of collection {0!r}")
    def retrieve(self, collection: str, ids: Sequence[PointId], *,
                 payload: bool | Sequence[str] = True,
                 vectors: bool | Sequence[str] = False) -> list[Record]:
        found = self.client.retrieve(collection, list(ids), with_payload=_selector(payload),
                                     with_vectors=vector_selector(vectors))
        return records(found, _read)

    @_guarded("reading points of collection {0!r}")
    def scroll(self, collection: str, *, limit: int, offset: PointId | None = None,
               payload: bool | Sequence[str] = True, exclude: Sequence[str] = (),
               vectors: bool | Sequence[str] = False,
               filter: models.Filter | None = None) -> tuple[list[Record], PointId | None]:
        page, after = self.client.scroll(collection, limit=limit, offset=offset,
                                         scroll_filter=filter,
                                         with_payload=_selector(payload, exclude),
                                         with_vectors=vector_selector(vectors))
        return records(page, _read), None if after is None else plain_id(after)

    @_guarded("reading the values of a field of collection {0!r}")
    def facet(self, collection: str, key: str, kind: str, *, limit: int) -> list[tuple[Any, int]]:
        self._ensure_index(collection, key, kind)
        found = self.client.facet(collection, key, limit=limit, exact=True)
        return [(hit.value, int(hit.count)) for hit in found.hits]

    @_guarded("reading the range of a field of collection {0!r}")
    def extent(self, collection: str, key: str, kind: str) -> tuple[float, float] | None:
        self._ensure_index(collection, key, kind)
        ends: list[Any] = []
        for direction in (models.Direction.ASC, models.Direction.DESC):
            first, _ = self.client.scroll(collection, limit=1, with_payload=[key],
                                            order_by=models.OrderBy(key=key, direction=direction))
            ends.extend((r.payload or {}).get(key) for r in first)
        return extent_of(ends)

    def _ensure_index(self, collection: str, key: str, kind: str) -> None:
        """A server facets and orders only by indexed fields; local mode needs none."""
        if self._local():
            return
        schema = self.client.get_collection(collection).payload_schema or {}
        if key not in schema:
            self.client.create_payload_index(collection, key, field_schema=models.PayloadSchemaType(kind),
                                             wait=True)

    @_guarded("counting the points of collection {0!r}")
    def count(self, collection: str) -> int:
        return int(self.client.count(collection, exact=True).count)

    @_guarded("querying collection {0!r}")
    def query(self, collection: str, probes: Sequence[Probe], *, limit: int,
              filter: models.Filter | None = None) -> list[list[Hit]]:
        answers = self.client.query_batch_points(collection, [models.QueryRequest(
            query=_wire(p.vector), using=p.using, filter=filter, limit=limit, with_payload=False,
            params=_params(p, self._local())) for p in probes])
        return [[Hit(plain_id(h.id), float(h.score), {}) for h in answer.points]
                for answer in answers]

    @_guarded("scoring the hits in collection {0!r}")
    def scores(self, collection: str, probes: Sequence[Probe],
               ids: Sequence[PointId]) -> dict[str, dict[PointId, float]]:
        only = models.Filter(must=[models.HasIdCondition(has_id=list(ids))])
        answers = self.client.query_batch_points(collection, [models.QueryRequest(
            query=_wire(p.vector), using=p.using, filter=only, limit=len(ids), with_payload=False)
            for p in probes])
        return {p.using: {plain_id(h.id): float(h.score) for h in answer.points}
                for p, answer in zip(probes, answers, strict=True)}

    @_guarded("indexing collection {0!r}", write=True)
    def finish(self, collection: str, progress: bool = True) -> None:
        """Turn the server's indexing on (Qdrant's default threshold) where the upsert that
        created the collection left it off; the server builds the graph in the background."""
        if self._local():
            return
        optimizer = self.client.get_collection(collection).config.optimizer_config
        if getattr(optimizer, "indexing_threshold", None) == 0:
            self.client.update_collection(collection, optimizers_config=models.OptimizersConfigDiff(
                indexing_threshold=INDEXING_THRESHOLD_KB))

    def close(self) -> None:
        self.closed = True
        self.client.close()
