"""Opening stores: ``qinb.connect`` and what every ``client=`` argument accepts."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from pathlib import Path
from typing import Any, Literal

from qdrant_client import QdrantClient

from qinb.errors import ArgumentError, CollectionError, QinbError, StoreError, StoreLockedError
from qinb.store.base import Store
from qinb.store.client import ClientStore
from qinb.store.edge import EdgeStore
from qinb.store.faults import disk_fault, disk_kind

__all__ = ["as_store", "close_all", "connect", "default_path"]

_open: dict[tuple[str, str], Store] = {}
_wrapped: weakref.WeakKeyDictionary[QdrantClient, ClientStore] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def default_path() -> Path:
    """Directory of the embedded default store (``QINB_STORE``, else ``~/.qinb/store``)."""
    return Path(os.environ.get("QINB_STORE") or Path.home() / ".qinb" / "store").expanduser()


def _is_local_mode_store(path: Path) -> bool:
    """A directory qdrant-client's local mode wrote (qinb before Qdrant Edge)."""
    return (path / "meta.json").is_file() and (path / "collection").is_dir()


def connect(path: str | os.PathLike[str] | None = None, *, url: str | None = None,
            api_key: str | None = None, cloud_inference: bool = False,
            engine: Literal["edge", "local"] | None = None, hold: float = 2.0, wait: float = 30.0,
            **kwargs: Any) -> Store:
    """A store: the embedded Qdrant Edge store by default, ``":memory:"``, or a server.

    Every ``client=`` argument of qinb takes what this returns, or a ``QdrantClient`` you made.
    Opening the same path twice in one process returns the same store.

    Parameters
    ----------
    path : str or Path, optional
        Directory of an embedded store (default :func:`default_path`), or ``":memory:"``
        (qdrant-client's local mode in memory, gone with the kernel).
    url, api_key : str, optional
        A Qdrant server, cluster or Qdrant Cloud; extra keyword arguments go to ``QdrantClient``.
    cloud_inference : bool
        Let the server embed the inference objects (Qdrant Cloud Inference).
    engine : {"edge", "local"}, optional
        For a path: Qdrant Edge (default; fast at any size, one process at a time per
        collection) or qdrant-client's local mode (Qdrant's whole client API on a file store;
        scans every point). A store local mode wrote earlier opens with local mode.
    hold, wait : float
        Edge only: seconds an idle collection stays open in this process, and seconds to wait
        for one that another process holds.

    Examples
    --------
    >>> store = qinb.connect()                                 # embedded, persistent
    >>> store = qinb.connect(":memory:")
    >>> store = qinb.connect(url="https://xyz.cloud.qdrant.io", api_key="...", cloud_inference=True)
    >>> store.client                                           # the QdrantClient, for a server
    """
    if url is not None:
        if path is not None:
            raise ArgumentError("pass either path= (embedded store) or url= (server), not both")
        client = QdrantClient(url=url, api_key=api_key, cloud_inference=cloud_inference, **kwargs)
        return ClientStore(client, where=url)
    if cloud_inference:
        raise ArgumentError("cloud_inference=True needs a server: pass url= and api_key=")
    if engine not in (None, "edge", "local"):
        raise ArgumentError(f"engine must be 'edge' or 'local', not {engine!r}")
    if str(path) == ":memory:":
        return ClientStore(QdrantClient(location=":memory:", **kwargs), where=":memory:")
    where = Path(path).expanduser() if path is not None else default_path()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_fault(exc, where, f"making the store folder {where}") or ArgumentError(
            f"cannot make the store folder {where} ({type(exc).__name__}: {exc}): pass a "
            "path= that is a folder, or one that can be made") from exc
    key = str(where.resolve())
    chosen = engine or ("local" if _is_local_mode_store(where) else "edge")
    with _lock:
        if getattr(_open.get((key, chosen)), "closed", False):
            del _open[key, chosen]  # closed by the user: open it again
        if (key, chosen) not in _open:
            _open[key, chosen] = (EdgeStore(key, hold=hold, wait=wait) if chosen == "edge"
                                  else _local(key, **kwargs))
        return _open[key, chosen]


def _local(path: str, **kwargs: Any) -> Store:
    try:
        return ClientStore(QdrantClient(path=path, **kwargs), where=path)
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise _local_fault(path, exc) from exc
        raise StoreLockedError(
            f"the local-mode store at {path} is open in another process (another notebook "
            "kernel or script). Close that kernel or call .close() on its store there, use "
            "another path, or the default engine (Qdrant Edge), which notebooks can share"
        ) from None
    except Exception as exc:
        raise _local_fault(path, exc) from exc


def _local_fault(path: str, exc: Exception) -> QinbError:
    """Why local mode could not open the store at ``path``: its disk, else damaged files."""
    detail = f"{type(exc).__name__}: {exc}"
    if disk_kind(exc) in ("read-only", "permission"):
        # read-only or no permission: local mode locks a file in the folder to open it at all
        return StoreError(
            f"the local-mode store at {path} cannot be opened: qdrant-client's local mode "
            f"writes a lock file in its folder even to search or read it ({detail}). Copy the "
            "store to a folder you can write (cp -r) and connect to the copy, or mount it "
            "read-write")
    found = disk_fault(exc, Path(path), f"opening the local-mode store at {path}")
    return found or CollectionError(
        f"the local-mode store at {path} cannot be opened: its files look damaged ({detail}). "
        "Restore the folder from a copy if there is one; otherwise move it away and upsert "
        "the tables again")


def as_store(client: Store | QdrantClient | None) -> Store:
    """The store a ``client=`` argument means: None is the default embedded store."""
    if client is None:
        return connect()
    if isinstance(client, Store):
        return client
    if isinstance(client, QdrantClient):
        # one store per client, so that its locks are shared by every call that passes it
        with _lock:
            if client not in _wrapped:
                _wrapped[client] = ClientStore(client)
            return _wrapped[client]
    raise ArgumentError(f"client= takes a store from qinb.connect() or a QdrantClient, "
                    f"not {type(client).__name__}")


def close_all() -> None:
    """Close every store this process opened, releasing their locks for others."""
    with _lock:
        while _open:
            _open.popitem()[1].close()


# stores close before the interpreter tears down the modules they use
atexit.register(close_all)
