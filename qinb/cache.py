"""The persistent embedding cache: the same object is never embedded twice, across collections
and kernel restarts.

An object's identity is (model, semantic options, content); its vector is kept on disk under
``$QINB_CACHE``, by default ``<default store>/.cache/embeddings``, bounded in size (the vectors
stored first go first: keeping the order of use would write to the cache on every read, which
made reading 1,050 vectors 4-5x slower). Dense text and image vectors are cached; BM25 is
computed faster than it can be read back, so it is not.

A cache that cannot be used (a full or read-only disk, a damaged file) steps aside: one
``QinbWarning`` says so, and objects are embedded as if it were empty; it never fails a row.

>>> qinb.cache.info()          # where, how many vectors, how many bytes
>>> qinb.cache.clear()
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SIZE_LIMIT", "clear", "info", "path"]

SIZE_LIMIT = 2 * 2**30  # bytes on disk before the vectors stored first are evicted
_open: dict[str, Any] = {}
_broken: set[str] = set()  # caches that failed in this process: skipped from then on
_lock = threading.Lock()


def path() -> Path:
    """Where the cache lives: ``$QINB_CACHE``, else ``.cache/embeddings`` in the default store."""
    from qinb.store import default_path

    return Path(os.environ.get("QINB_CACHE") or default_path() / ".cache" / "embeddings").expanduser()


def _cache() -> Any:
    import diskcache

    where = str(path())
    with _lock:
        if where not in _open:
            _open[where] = diskcache.Cache(where, size_limit=SIZE_LIMIT,
                                           eviction_policy="least-recently-stored")
        return _open[where]


def get_many(keys: Iterable[str]) -> dict[str, np.ndarray]:
    """The cached vectors among ``keys`` (none where the cache cannot be read)."""
    found: dict[str, np.ndarray] = {}
    if str(path()) in _broken:
        return found
    try:
        cache = _cache()
        with cache.transact():
            for key in keys:
                raw = cache.get(key)
                if raw is not None:
                    found[key] = np.frombuffer(raw, dtype=np.float32)
    except Exception as exc:  # an optimisation that fails steps aside, whatever its error
        _step_aside(exc)
        return {}
    return found


def put_many(vectors: Mapping[str, np.ndarray]) -> None:
    """Remember vectors by key (nothing, where the cache cannot be written)."""
    if str(path()) in _broken:
        return
    try:
        cache = _cache()
        with cache.transact():
            for key, vector in vectors.items():
                cache.set(key, np.asarray(vector, dtype=np.float32).tobytes())
    except Exception as exc:
        _step_aside(exc)


def _step_aside(exc: Exception) -> None:
    """Skip this cache for the rest of the process, saying so once."""
    from qinb.errors import warn

    where = str(path())
    with _lock:
        _broken.add(where)
        cache = _open.pop(where, None)
    if cache is not None:
        with contextlib.suppress(Exception):
            cache.close()
    warn(f"the embedding cache at {where} cannot be used ({type(exc).__name__}: {exc}), so it "
         "is skipped in this process: rows are embedded and stored as usual, without reusing "
         "earlier vectors. Free space or fix the folder (qinb.cache.clear(), or QINB_CACHE= "
         "another place) and restart the kernel to use it again")


def info() -> dict[str, Any]:
    """Where the cache is, how many vectors it holds and their size on disk in bytes."""
    cache = _cache()
    return {"path": str(path()), "vectors": len(cache), "bytes": int(cache.volume()),
            "size_limit": SIZE_LIMIT}


def clear() -> int:
    """Forget every cached vector; returns how many there were."""
    return int(_cache().clear())


def close() -> None:
    """Close the cache files this process opened (and try the broken ones again)."""
    with _lock:
        _broken.clear()
        while _open:
            _open.popitem()[1].close()
