"""The Qdrant Edge engine: Qdrant's own engine in-process, the embedded default.

A store is a directory; each collection is a subdirectory holding the Edge shard (``shard/``)
and qinb's metadata beside it (``qinb.json``, written atomically). Edge lets one process hold a
shard at a time, so a shard is opened for an operation and released after ``hold`` seconds
without use, or at once after each operation while another process waits for it (it leaves a
``waiting.<pid>`` mark): notebooks on one store take turns, in the order they began to wait,
instead of locking each other out. A process holds a shard only while it holds the ``flock`` on
``shard.lock`` (see edge_handle.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import models

from qinb.errors import CollectionError, QinbError, StoreError
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
from qinb.store.edge_filter import edge_filter, index_types
from qinb.store.edge_handle import Handle, write_json
from qinb.store.faults import MARGIN, disk_fault, ensure_room, ensure_space, fault, used_bytes

__all__ = ["EdgeStore"]

META_FILE = "qinb.json"
INDEX_AFTER = 20_000  # points: below this a full scan is as fast as the index (measured in bench/)
# a segment's dense vectors are given a graph from this size on (Edge's optimizer is told the same)
INDEX_KB = 10_000
# candidates per hit a quantized search rescores with the full vectors (measured in bench/)
OVERSAMPLING = 2.0
# candidates a graph search keeps (Qdrant's default: the graph's ef_construct, 100). On 100k
# real MiniLM vectors (bench/dense_index.py) recall@10 went from 0.983 to 0.995-0.998, and from
# 0.977 to 0.995 on the int8 copy, for about 0.1-0.4 ms a query; brute force took 10 ms
HNSW_EF = 256


def _multi(multi: bool) -> Any:
    import qdrant_edge as E

    return E.MultiVectorConfig(E.MultiVectorComparator.MaxSim) if multi else None


def _dense_params(size: int, multi: bool, storage: Mapping[str, Any] | None = None) -> Any:
    import qdrant_edge as E

    # no HNSW graph for a multivector: a graph on row-to-row MaxSim found 0.32 of the true
    # top 10 for a one-passage query, and took 6 minutes for 20k rows (bench/multivector_hnsw.py);
    # a full scan is exact
    storage = storage or {}
    # Qdrant's defaults (m=16, ef_construct=100) unless the spec says otherwise, with the graph
    # on disk too where the vectors are
    hnsw = {"m": 16, "ef_construct": 100, **(storage.get("hnsw") or {})}
    graph = (E.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000) if multi else
             E.HnswIndexConfig(**hnsw, full_scan_threshold=10_000,
                               on_disk=bool(storage.get("on_disk")))
             if storage.get("on_disk") or storage.get("hnsw") else None)
    return E.EdgeVectorParams(size=size, distance=E.Distance.Cosine, multivector_config=_multi(multi),
                              hnsw_config=graph, on_disk=bool(storage.get("on_disk")),
                              quantization_config=_quantization(storage.get("quantization"),
                                                                  bool(storage.get("on_disk"))))


def _quantization(kind: str | None, on_disk: bool) -> Any:
    """A quantized copy: in RAM beside full vectors in RAM, memory-mapped beside full vectors
    on disk (the kernel keeps the pages searches use, and takes them back when memory is short)."""
    import qdrant_edge as E

    if kind == "int8":
        return E.ScalarQuantizationConfig(E.ScalarType.Int8, quantile=0.99, always_ram=not on_disk)
    if kind == "binary":
        return E.BinaryQuantizationConfig(always_ram=not on_disk)
    return None


def _search_params(probe: Probe) -> Any:
    import qdrant_edge as E

    if not (probe.exact or probe.quantized or probe.graph):
        return None
    rescore = (E.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)
               if probe.quantized else None)
    return E.SearchParams(exact=probe.exact, quantization=rescore,
                          hnsw_ef=HNSW_EF if probe.graph and not probe.exact else None)


def _remove_leftovers(directory: Path) -> None:
    """Remove the temporary segments of an index build that was killed: no build runs while
    this process holds the shard, and the engine never reads them again."""
    for leftover in (directory / "shard" / "temp_segments").glob("*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                leftover.unlink()


def _unindexed(directory: Path) -> list[str]:
    """Vectors with INDEX_KB or more in a segment that does not keep them as asked yet: dense
    vectors (not multivectors: they are searched exactly) with no graph, and sparse vectors
    asked to be on disk whose inverted index is still the appendable segment's, in RAM. Read
    from the segments' own configs."""
    found = []
    wanted: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        wanted = json.loads((directory / "shard" / "edge_config.json").read_text()).get(
            "sparse_vectors") or {}
    on_disk = {n for n, params in wanted.items() if params.get("on_disk")}
    for config in (directory / "shard" / "segments").glob("*/segment.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            segment = json.loads(config.read_text())["config"]
            pending = [n for n, params in segment["vector_data"].items()
                       if params["index"]["type"] == "plain" and not params.get("multivector_config")]
            pending += [n for n, params in (segment.get("sparse_vector_data") or {}).items()
                        if n in on_disk and params["index"]["index_type"] == "MutableRam"]
            for name in pending:
                # blocks on disk, not file sizes: the storage files are made ahead, sparse
                used = sum(f.stat().st_blocks * 512 for f in (config.parent / f"vector_storage-{name}")
                           .rglob("*") if f.is_file())
                if used >= INDEX_KB * 1024:
                    found.append(name)
    return found


def _ensure_index(shard: Any, key: str, kind: str, schema: Any = None) -> None:
    """A payload index of ``kind`` on ``key``, made once (facets and ordering need one)."""
    import qdrant_edge as E

    kinds = {"keyword": E.PayloadSchemaType.Keyword, "integer": E.PayloadSchemaType.Integer,
             "float": E.PayloadSchemaType.Float, "bool": E.PayloadSchemaType.Bool}
    if key not in (shard.info().payload_schema if schema is None else schema):
        shard.update(E.UpdateOperation.create_field_index(key, kinds[kind]))


def _to_edge(vector: StoredVector) -> Any:
    import qdrant_edge as E

    if isinstance(vector, models.SparseVector):
        return E.SparseVector(list(vector.indices), list(vector.values))
    if isinstance(vector, np.ndarray):
        # Edge takes a list of floats in about half the time it takes an array (1,500 384-d
        # vectors: 13 against 30 ms)
        return vector.tolist()
    return vector


def edge_points(points: Sequence[Point]) -> list[Any]:
    """The engine's points of qinb's points, as an upsert writes them."""
    import qdrant_edge as E

    return [E.Point(p.id, {n: _to_edge(v) for n, v in p.vectors.items()}, p.payload)
            for p in points]


def _from_edge(vector: Any) -> StoredVector:
    if isinstance(vector, list):
        return np.asarray(vector, dtype=np.float32)
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _payload_selector(payload: bool | Sequence[str], exclude: Sequence[str] = ()) -> Any:
    import qdrant_edge as E

    if exclude:
        return E.PayloadSelector.Exclude(list(exclude))
    return payload if isinstance(payload, bool) else E.PayloadSelector.Include(list(payload))


class EdgeStore(Store):
    """Collections in a directory, each a Qdrant Edge shard.

    Parameters
    ----------
    path : str or Path
        The store directory (created if missing).
    hold : float
        Seconds an idle shard stays open, so that a run of searches does not reopen it each
        time; after that, other processes can use it. 0 releases it after every operation.
    wait : float
        Seconds to wait for a shard another process holds before raising StoreLockedError.
    """

    def __init__(self, path: str | os.PathLike[str], *, hold: float = 2.0, wait: float = 30.0) -> None:
        self.path = Path(path).expanduser().resolve()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fault(exc, self.path, "making the store's folder") from exc
        self.hold = hold
        self.wait = wait
        self._handles: dict[str, Handle] = {}
        self._lock = threading.Lock()

    def where(self) -> str:
        return str(self.path)

    def _dir(self, collection: str) -> Path:
        if (not collection or collection.startswith(".") or any(c in collection for c in '/\\:*?"<>|')
                or collection != collection.strip()):
            raise CollectionError(
                f"collection name {collection!r} cannot be a directory name; use letters, digits, "
                "'-' and '_' (no '/', no leading '.')")
        return self.path / collection

    def _handle(self, collection: str) -> Handle:
        with self._lock:
            if collection not in self._handles:
                self._handles[collection] = Handle(self._dir(collection), self.hold, self.wait)
            return self._handles[collection]

    @contextlib.contextmanager
    def _shard(self, collection: str) -> Iterator[Any]:
        if not (self._dir(collection) / META_FILE).exists():
            raise CollectionError(f"collection {collection!r} does not exist in {self.path}")
        with self._handle(collection).use() as shard:
            try:
                yield shard
            except QinbError:
                raise
            except Exception as exc:
                # the engine's own errors reach the user in qinb's words, with where it happened
                raise disk_fault(exc, self._dir(collection), f"collection {collection!r}") \
                    or StoreError(f"the embedded store at {self.path} failed on collection "
                                  f"{collection!r} ({type(exc).__name__}: {exc})") from exc

    @contextlib.contextmanager
    def _files(self, collection: str, doing: str) -> Iterator[None]:
        """qinb's own files of a collection (its metadata, its folder): an OS error in
        qinb's words."""
        try:
            yield
        except QinbError:
            raise
        except OSError as exc:
            raise fault(exc, self._dir(collection), doing, collection) from exc

    def _meta(self, collection: str) -> dict[str, Any]:
        path = self._dir(collection) / META_FILE
        with self._files(collection, f"reading {path}"):
            text = path.read_text()
        try:
            data: dict[str, Any] = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("dense"), dict):
                raise ValueError("not qinb's metadata")
        except ValueError as exc:
            raise CollectionError(
                f"collection {collection!r}: its metadata {path} is damaged ({exc}). Restore "
                f"the folder from a copy if there is one; otherwise qinb.drop({collection!r}) "
                "and upsert the table again") from exc
        return data

    def collections(self) -> list[str]:
        # ".<name>.creating..." directories are collections still being made
        return sorted(p.parent.name for p in self.path.glob(f"*/{META_FILE}")
                      if not p.parent.name.startswith("."))

    def exists(self, collection: str) -> bool:
        return (self._dir(collection) / META_FILE).exists()

    def create(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
               metadata: Mapping[str, Any], multi: Sequence[str] = (),
               storage: Mapping[str, Mapping[str, Any]] | None = None) -> None:

        directory = self._dir(collection)
        ensure_space(self.path, MARGIN, f"creating collection {collection!r}")
        try:
            self._create(collection, directory, dense, sparse, metadata, multi, storage)
        except QinbError:
            raise
        except Exception as exc:
            raise fault(exc, self.path, f"creating collection {collection!r}") from exc

    def _create(self, collection: str, directory: Path, dense: Mapping[str, int],
                sparse: Sequence[str], metadata: Mapping[str, Any], multi: Sequence[str],
                storage: Mapping[str, Mapping[str, Any]] | None) -> None:
        import qdrant_edge as E

        if directory.exists() and not (directory / META_FILE).exists():
            shutil.rmtree(directory)  # left by a delete cut short, or an older qinb's create
        # made aside and moved into place in one step: another process creating the same
        # collection at the same moment either wins the move or finds the whole collection
        staging = self.path / f".{collection}.creating.{os.getpid()}.{threading.get_ident()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            config = E.EdgeConfig(
                optimizers=E.EdgeOptimizersConfig(indexing_threshold=INDEX_KB),
                vectors={n: _dense_params(s, n in multi, (storage or {}).get(n))
                         for n, s in dense.items()},
                sparse_vectors={n: E.EdgeSparseVectorParams(
                    modifier=E.Modifier.Idf,
                    on_disk=True if (storage or {}).get(n, {}).get("on_disk") else None)
                    for n in sparse})
            E.EdgeShard.create(str(staging / "shard"), config).close()
            write_json(staging / META_FILE, {"dense": dict(dense), "sparse": sorted(sparse),
                                              "multi": sorted(multi), "metadata": dict(metadata)})
            os.rename(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def add_vectors(self, collection: str, dense: Mapping[str, int], sparse: Sequence[str],
                    multi: Sequence[str] = (),
                    storage: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        import qdrant_edge as E

        meta = self._meta(collection)
        with self._shard(collection) as shard:
            for name, size in dense.items():
                shard.update(E.UpdateOperation.create_dense_vector(
                    name, size, E.Distance.Cosine, multivector_config=_multi(name in multi)))
            for name in sparse:
                shard.update(E.UpdateOperation.create_sparse_vector(name, modifier=E.Modifier.Idf))
        meta["dense"].update(dense)
        meta["sparse"] = sorted({*meta["sparse"], *sparse})
        meta["multi"] = sorted({*meta.get("multi", []), *multi})
        with self._files(collection, f"saving the vectors of collection {collection!r}"):
            write_json(self._dir(collection) / META_FILE, meta)

    def shape(self, collection: str) -> Shape:
        if not self.exists(collection):
            raise CollectionError(f"collection {collection!r} does not exist in {self.path}")
        meta = self._meta(collection)
        return Shape(dense=meta["dense"], sparse=frozenset(meta["sparse"]), metadata=meta["metadata"],
                     multi=frozenset(meta.get("multi", [])))

    def save_metadata(self, collection: str, metadata: Mapping[str, Any]) -> None:
        meta = self._meta(collection)
        meta["metadata"] = dict(metadata)
        with self._files(collection, f"saving the metadata of collection {collection!r}"):
            write_json(self._dir(collection) / META_FILE, meta)

    def delete(self, collection: str) -> None:
        directory = self._dir(collection)
        with self._lock:
            handle = self._handles.pop(collection, None)
        if handle is not None:
            handle.release()
        # the metadata first, so that a delete cut short leaves no half collection behind
        with self._files(collection, f"deleting collection {collection!r}"), \
                contextlib.suppress(FileNotFoundError):
            (directory / META_FILE).unlink()
        shutil.rmtree(directory, ignore_errors=True)

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        import qdrant_edge as E

        ensure_room(self.path, collection, points)
        made = edge_points(points)
        with self._shard(collection) as shard:
            shard.update(E.UpdateOperation.upsert_points(made))

    def delete_points(self, collection: str, ids: Sequence[PointId]) -> None:
        import qdrant_edge as E

        with self._shard(collection) as shard:
            shard.update(E.UpdateOperation.delete_points(list(ids)))

    def update(self, collection: str, points: Sequence[Point]) -> None:
        import qdrant_edge as E

        ensure_room(self.path, collection, points)
        with self._shard(collection) as shard:
            with_vectors = [E.PointVectors(p.id, {n: _to_edge(v) for n, v in p.vectors.items()})
                            for p in points if p.vectors]
            if with_vectors:
                shard.update(E.UpdateOperation.update_vectors(with_vectors))
            for p in points:
                shard.update(E.UpdateOperation.overwrite_payload([p.id], p.payload))

    def retrieve(self, collection: str, ids: Sequence[PointId], *,
                 payload: bool | Sequence[str] = True,
                 vectors: bool | Sequence[str] = False) -> list[Record]:
        with self._shard(collection) as shard:
            raw = shard.retrieve(list(ids), with_payload=_payload_selector(payload),
                                 with_vector=vector_selector(vectors))
        return records(raw, _from_edge)

    def scroll(self, collection: str, *, limit: int, offset: PointId | None = None,
               payload: bool | Sequence[str] = True, exclude: Sequence[str] = (),
               vectors: bool | Sequence[str] = False,
               filter: models.Filter | None = None) -> tuple[list[Record], PointId | None]:
        import qdrant_edge as E

        request = E.ScrollRequest(offset=offset, limit=limit, filter=edge_filter(filter),
                                  with_payload=_payload_selector(payload, exclude),
                                  with_vector=vector_selector(vectors))
        with self._shard(collection) as shard:
            raw, after = shard.scroll(request)
        return records(raw, _from_edge), None if after is None else plain_id(after)

    def count(self, collection: str) -> int:
        import qdrant_edge as E

        with self._shard(collection) as shard:
            return int(shard.count(E.CountRequest(exact=True)))

    def query(self, collection: str, probes: Sequence[Probe], *, limit: int,
              filter: models.Filter | None = None) -> list[list[Hit]]:
        import qdrant_edge as E

        flt = edge_filter(filter)
        batch = E.QueryBatchRequest([E.QueryRequest(
            limit=limit, query=E.Query.Nearest(_to_edge(p.vector), using=p.using), filter=flt,
            with_payload=False, params=_search_params(p)) for p in probes])
        with self._shard(collection) as shard:
            self._index_payload(shard, filter)
            answers = shard.query_batch(batch)
        return [[Hit(plain_id(h.id), float(h.score), {}) for h in hits] for hits in answers]

    def scores(self, collection: str, probes: Sequence[Probe],
               ids: Sequence[PointId]) -> dict[str, dict[PointId, float]]:
        import qdrant_edge as E

        only = E.Filter(must=[E.HasIdCondition(set(ids))])
        batch = E.QueryBatchRequest([E.QueryRequest(
            limit=len(ids), query=E.Query.Nearest(_to_edge(p.vector), using=p.using), filter=only,
            with_payload=False) for p in probes])
        with self._shard(collection) as shard:
            answers = shard.query_batch(batch)
        return {p.using: {plain_id(h.id): float(h.score) for h in hits}
                for p, hits in zip(probes, answers, strict=True)}

    def facet(self, collection: str, key: str, kind: str, *, limit: int) -> list[tuple[Any, int]]:
        import qdrant_edge as E

        with self._shard(collection) as shard:
            _ensure_index(shard, key, kind)
            found = shard.facet(E.FacetRequest(key, limit=limit, exact=True))
        return [(hit.value, int(hit.count)) for hit in found.hits]

    def extent(self, collection: str, key: str, kind: str) -> tuple[float, float] | None:
        import qdrant_edge as E

        ends: list[Any] = []
        with self._shard(collection) as shard:
            _ensure_index(shard, key, kind)
            for direction in (E.Direction.Asc, E.Direction.Desc):
                first, _ = shard.scroll(E.ScrollRequest(
                    limit=1, order_by=E.OrderBy(key, direction=direction), with_payload=[key]))
                ends.extend(r.payload.get(key) for r in first)
        return extent_of(ends)

    @staticmethod
    def _index_payload(shard: Any, flt: models.Filter | None) -> None:
        """Index the payload fields a filter uses, once, where the collection is large enough
        for a scan to be slow."""

        wanted = index_types(flt)
        if not wanted:
            return
        info = shard.info()
        if info.points_count < INDEX_AFTER:
            return
        for key, kind in wanted.items():
            _ensure_index(shard, key, kind, info.payload_schema)

    def finish(self, collection: str, progress: bool = True) -> None:
        """Build the HNSW index once the collection is large enough for it to pay: when a
        segment holds INDEX_KB or more of dense vectors with no graph yet (or of sparse vectors
        meant to be on disk, still indexed in RAM). (The shard's own ``indexed_vectors_count``
        cannot tell: it counts sparse vectors, indexed as they come.)"""
        with self._shard(collection) as shard:
            _remove_leftovers(self._dir(collection))
            if shard.info().points_count < INDEX_AFTER or not _unindexed(self._dir(collection)):
                return
            from qinb.progress import progress_bar

            # the optimizer writes each segment anew beside the old one
            ensure_space(self.path, used_bytes(self._dir(collection) / "shard" / "segments"),
                         f"building the index of collection {collection!r}")
            with progress_bar(total=1, desc=f"indexing {collection!r}", unit="index",
                              disable=not progress, bar_format="{desc}: {elapsed}") as bar:
                shard.optimize()
                bar.update(1)

    def close(self) -> None:
        with self._lock:
            handles = list(self._handles.values())
        for handle in handles:
            handle.release()
