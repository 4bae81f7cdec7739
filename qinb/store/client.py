"""The qdrant-client engine: a Qdrant server or cluster, Qdrant Cloud (with or without cloud
inference), or qdrant-client's local mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from qinb.store.base import (
    Hit,
    Point,
    PointId,
    Probe,
    Record,
    Shape,
    Store,
    StoredVector,
    plain_id,
)

__all__ = ["ClientStore"]

FUSIONS = {"rrf": models.Fusion.RRF, "dbsf": models.Fusion.DBSF}


def _wire(vector: StoredVector) -> Any:
    """A vector as qdrant-client takes it: dense arrays become lists."""
    return vector.tolist() if isinstance(vector, np.ndarray) else vector


def _read(vector: Any) -> StoredVector:
    if isinstance(vector, list) and (not vector or not isinstance(vector[0], list)):
        return np.asarray(vector, dtype=np.float32)
    return vector


def _selector(payload: bool | Sequence[str], exclude: Sequence[str] = ()) -> Any:
    if exclude:
        return models.PayloadSelectorExclude(exclude=list(exclude))
    return payload if isinstance(payload, bool) else list(payload)


def _vectors(vectors: bool | Sequence[str]) -> bool | list[str]:
    return vectors if isinstance(vectors, bool) else list(vectors)


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

    def where(self) -> str:
        if self._where:
            return self._where
        inner = getattr(self.client, "_client", None)
        url = getattr(inner, "rest_uri", None)
        return str(url) if url else "qdrant-client local mode"

    def collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    def exists(self, collection: str) -> bool:
        return bool(self.client.collection_exists(collection))

    def create(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
               metadata: Mapping[str, Any]) -> None:
        self.client.create_collection(
            collection,
            vectors_config={n: models.VectorParams(size=s, distance=models.Distance.COSINE)
                            for n, s in dense.items()},
            sparse_vectors_config={n: models.SparseVectorParams(modifier=models.Modifier.IDF)
                                   for n in sparse},
            metadata=dict(metadata))

    def add_vectors(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str]) -> None:
        for name, size in dense.items():
            self.client.create_vector_name(collection, name, models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=size, distance=models.Distance.COSINE)))
        for name in sparse:
            self.client.create_vector_name(collection, name, models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))

    def shape(self, collection: str) -> Shape:
        config = self.client.get_collection(collection).config
        vectors = config.params.vectors if isinstance(config.params.vectors, dict) else {}
        return Shape(dense={n: v.size for n, v in vectors.items()},
                     sparse=frozenset(config.params.sparse_vectors or {}),
                     metadata=dict(config.metadata or {}))

    def save_metadata(self, collection: str, metadata: Mapping[str, Any]) -> None:
        self.client.update_collection(collection, metadata=dict(metadata))

    def delete(self, collection: str) -> None:
        self.client.delete_collection(collection)

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        self.client.upsert(collection, wait=True, points=[
            models.PointStruct(id=p.id, payload=p.payload,
                               vector={n: _wire(v) for n, v in p.vectors.items()})
            for p in points])

    def update(self, collection: str, points: Sequence[Point]) -> None:
        with_vectors = [p for p in points if p.vectors]
        if with_vectors:
            self.client.update_vectors(collection, wait=True, points=[
                models.PointVectors(id=p.id, vector={n: _wire(v) for n, v in p.vectors.items()})
                for p in with_vectors])
        self.client.batch_update_points(collection, wait=True, update_operations=[
            models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(
                payload=p.payload, points=[p.id])) for p in points])

    def _records(self, raw: Sequence[Any]) -> list[Record]:
        return [Record(plain_id(r.id), dict(r.payload or {}),
                       {n: _read(v) for n, v in (r.vector or {}).items()}
                       if isinstance(r.vector, dict) else {}) for r in raw]

    def retrieve(self, collection: str, ids: Sequence[PointId], *,
                 payload: bool | Sequence[str] = True,
                 vectors: bool | Sequence[str] = False) -> list[Record]:
        return self._records(self.client.retrieve(collection, list(ids), with_payload=_selector(payload),
                                                  with_vectors=_vectors(vectors)))

    def scroll(self, collection: str, *, limit: int, offset: PointId | None = None,
               payload: bool | Sequence[str] = True, exclude: Sequence[str] = (),
               vectors: bool | Sequence[str] = False) -> tuple[list[Record], PointId | None]:
        page, after = self.client.scroll(collection, limit=limit, offset=offset,
                                         with_payload=_selector(payload, exclude),
                                         with_vectors=_vectors(vectors))
        return self._records(page), None if after is None else plain_id(after)

    def count(self, collection: str) -> int:
        return int(self.client.count(collection, exact=True).count)

    def query(self, collection: str, probes: Sequence[Probe], *, limit: int,
              filter: models.Filter | None = None, fusion: str | None = None,
              depth: int = 50) -> list[Hit]:
        if len(probes) == 1:
            response = self.client.query_points(
                collection, query=_wire(probes[0].vector), using=probes[0].using, limit=limit,
                query_filter=filter, with_payload=True)
        else:
            prefetch = [models.Prefetch(query=_wire(p.vector), using=p.using, limit=depth,
                                        filter=filter) for p in probes]
            response = self.client.query_points(
                collection, prefetch=prefetch, limit=limit, query_filter=filter,
                query=models.FusionQuery(fusion=FUSIONS[fusion or "rrf"]), with_payload=True)
        return [Hit(plain_id(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    def close(self) -> None:
        self.client.close()
