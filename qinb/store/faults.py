"""Faults of the disk under an embedded store, in qinb's words: the OS's or the engine's error
for an opening or a write becomes the :class:`~qinb.errors.QinbError` that says what happened
and what to do; and the free-space check before each write, so that the engine never meets a
full disk (Qdrant Edge dies of SIGBUS writing a memory-mapped file on one)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qinb.errors import CollectionError, QinbError, StoreError

__all__ = ["MARGIN", "disk_fault", "disk_kind", "ensure_room", "ensure_space", "fault", "point_bytes",
           "used_bytes"]

MARGIN = 8 * 2**20  # bytes kept free beyond a write's needs: the engine's files grow by pages
WRITE_FACTOR = 3  # a point goes to the write-ahead log and to its segment, with room to spare

_SIGNS: dict[str, tuple[int, tuple[str, ...]]] = {  # the OS's errno, or words in the engine's
    # own text ("os error 28") and sqlite's (local mode, the embedding cache)
    "full": (errno.ENOSPC, ("No space left on device", "os error 28", "database or disk is full")),
    "read-only": (errno.EROFS, ("Read-only file system", "os error 30")),
    "permission": (errno.EACCES, ("Permission denied", "os error 13")),
}


def disk_kind(exc: BaseException) -> str | None:
    """"full", "read-only" or "permission" when the disk caused ``exc``, else None."""
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    for kind, (number, words) in _SIGNS.items():
        if code == number or any(w in text for w in words):
            return kind
    if code == errno.EPERM:
        return "permission"
    return None


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} kB"


def _free(path: Path) -> int | None:
    for at in (path, *path.parents):
        try:
            return shutil.disk_usage(at).free
        except OSError:
            continue
    return None


def disk_fault(exc: BaseException, path: Path, doing: str) -> QinbError | None:
    """The error for ``exc`` raised at ``path`` while ``doing`` (a phrase: "opening collection
    'c'") when the disk is the cause (full, read-only, no permission), else None."""
    detail = f"{type(exc).__name__}: {exc}"
    kind = disk_kind(exc)
    if kind == "full":
        return StoreError(
            f"{doing} failed: the disk of {path} is full ({_mb(_free(path) or 0)} free). What "
            "was written before is kept: free some space, or move the store with "
            "qinb.connect(path=...), and run it again")
    if kind == "read-only":
        return StoreError(
            f"{doing} failed: {path} is on a read-only filesystem ({detail}). Qdrant Edge opens "
            "a collection for writing, also to search or read it, so a read-only store can be "
            "listed (qinb.collections) but not searched, read or written; copy the store to a "
            "writable folder (cp -r) and connect to the copy, or mount it read-write")
    if kind == "permission":
        return StoreError(
            f"{doing} failed: no permission to write in {path} ({detail}). Qdrant Edge writes "
            "to a collection's folder also to search or read it: give this user write "
            "permission there, or copy the store to a folder of your own and connect to it")
    return None


def fault(exc: BaseException, path: Path, doing: str, collection: str | None = None,
          opening: bool = False) -> QinbError:
    """The error for ``exc``: a disk fault, else, for an opening, damaged files (the engine
    could not load them), else the engine's own error with where it happened."""
    found = disk_fault(exc, path, doing)
    if found is not None:
        return found
    detail = f"{type(exc).__name__}: {exc}"
    if opening and collection is not None:
        return CollectionError(
            f"collection {collection!r} at {path} cannot be opened: its files look damaged "
            f"({detail}). Restore the folder from a copy if there is one; otherwise "
            f"qinb.drop({collection!r}) and upsert the table again")
    return StoreError(f"{doing} at {path} failed ({detail})")


def ensure_space(path: Path, needed: int, doing: str) -> None:
    """Raise StoreError before ``doing`` when the disk of ``path`` has less than ``needed``
    bytes free, with MARGIN to spare."""
    free = _free(path)
    if free is not None and free < needed + MARGIN:
        raise StoreError(
            f"{doing} needs about {_mb(needed + MARGIN)} free on the disk of {path}, which has "
            f"{_mb(free)}: it was not started, and what was written before is kept. Free some "
            "space, or move the store with qinb.connect(path=...), and run it again")


def ensure_room(path: Path, collection: str, points: Sequence[Any]) -> None:
    """Refuse writing ``points`` (each with ``.vectors`` and ``.payload``) to ``collection``
    when the disk of ``path`` has no room for them, before the engine meets the full disk."""
    needed = point_bytes([v for p in points for v in p.vectors.values()],
                         [p.payload for p in points])
    ensure_space(path, needed, f"writing {len(points)} points to collection {collection!r}")


def point_bytes(vectors: Sequence[object], payloads: Sequence[object]) -> int:
    """About what writing these vectors and payloads takes on disk."""
    total = 0
    for vector in vectors:
        if isinstance(vector, np.ndarray):
            total += vector.size * 4
        else:
            total += len(getattr(vector, "indices", ()) or ()) * 8 + 64
    total += sum(len(json.dumps(p, default=str)) for p in payloads)
    return total * WRITE_FACTOR


def used_bytes(directory: Path) -> int:
    """The bytes the files under ``directory`` take on disk (sparse files count what they hold)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total
