"""Holding an Edge shard in one process at a time: opened on use, released when idle (by one
reaper thread per process) or at once when another process waits for it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from qinb.errors import StoreLockedError

__all__ = ["Handle", "write_json"]

HOLDER_FILE = "holder.json"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)  # key order is the order of the vectors
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Handle:
    """One collection's shard: opened on use, closed after ``hold`` idle seconds by the reaper
    thread (one per process, so an operation costs no thread of its own)."""

    def __init__(self, directory: Path, hold: float, wait: float) -> None:
        self.directory = directory
        self.hold = hold
        self.wait = wait
        self.lock = threading.RLock()
        self.shard: Any = None
        self.last_used = 0.0
        _watch(self)

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        with self.lock:
            if self.shard is None:
                self.shard = self._load()
            try:
                yield self.shard
            finally:
                self.last_used = time.monotonic()
                if self.hold <= 0 or self._others_waiting():
                    self.release()

    def reap(self) -> None:
        """Release the shard if it has been idle for ``hold`` seconds, or another process waits
        for it; never while an operation runs."""
        if self.shard is None or not self.lock.acquire(blocking=False):
            return
        try:
            if self.shard is not None and (time.monotonic() - self.last_used >= self.hold
                                           or self._others_waiting()):
                self.release()
        finally:
            self.lock.release()

    def _others_waiting(self) -> bool:
        """Whether another process is waiting for this shard: then it is released after each
        operation instead of held, so a busy reader does not starve a writer elsewhere."""
        now = time.time()
        for mark in self.directory.glob("waiting.*"):
            with contextlib.suppress(OSError):
                if mark.name != f"waiting.{os.getpid()}" and now - mark.stat().st_mtime < self.wait + 5:
                    return True
        return False

    def release(self) -> None:
        with self.lock:
            if self.shard is not None:
                shard, self.shard = self.shard, None
                with contextlib.suppress(OSError):
                    (self.directory / HOLDER_FILE).unlink()
                shard.flush()
                shard.close()

    def _load(self) -> Any:
        import qdrant_edge as E

        deadline = time.monotonic() + self.wait
        delay = 0.05
        mark = self.directory / f"waiting.{os.getpid()}"
        while True:
            try:
                shard = E.EdgeShard.load(str(self.directory / "shard"))
            except Exception as exc:
                if "WouldBlock" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    mark.unlink(missing_ok=True)
                    raise StoreLockedError(self._locked_message()) from None
                mark.touch()  # asks the holder to let go after its current operation
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            mark.unlink(missing_ok=True)
            write_json(self.directory / HOLDER_FILE, {
                "pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "program": " ".join(sys.argv)[:200]})
            return shard

    def _locked_message(self) -> str:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((self.directory / HOLDER_FILE).read_text())
            since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
            if info["pid"] == os.getpid() and info["host"] == socket.gethostname():
                return (
                    f"the collection at {self.directory} is held by this process (since "
                    f"{since}) through another store object: one made before an "
                    "importlib.reload of qinb, or an EdgeStore made by hand on the same path. "
                    "Call .close() on that store, or use the one qinb.connect() returns")
            holder = (f" by process {info['pid']} on {info['host']} ({info['program']}), "
                      f"since {since}")
        return (
            f"the collection at {self.directory} stayed in use{holder} for {self.wait:.0f} s. Another "
            "kernel or script is writing to it or holding it open: wait for its upsert to finish "
            "and run this again, or call qinb.connect().close() there; use another path with "
            "qinb.connect(path=...) to work apart, or a Qdrant server for shared access"
        )


# kept through importlib.reload: the reaper thread running already must keep seeing the
# shards this process holds, or they are never released and look held by "another process"
_handles: weakref.WeakSet[Handle] = globals().get("_handles") or weakref.WeakSet()
_reaper: threading.Thread | None = globals().get("_reaper")
_reaper_lock: threading.Lock = globals().get("_reaper_lock") or threading.Lock()
REAP_EVERY = 0.2  # seconds between looks at the open shards


def _watch(handle: Handle) -> None:
    """Let the reaper thread release ``handle`` when it is idle (the thread starts once)."""
    global _reaper
    with _reaper_lock:
        _handles.add(handle)
        if _reaper is None:
            _reaper = threading.Thread(target=_reap_forever, name="qinb-edge-reaper", daemon=True)
            _reaper.start()


def _reap_forever() -> None:
    while True:
        time.sleep(REAP_EVERY)
        for handle in list(_handles):
            with contextlib.suppress(Exception):  # a failing release is retried next round
                handle.reap()


