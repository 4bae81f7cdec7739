"""Holding an Edge shard in one process at a time: opened on use, released when idle (by one
reaper thread per process) or at once when another process waits for it.

A process holds the shard only while it holds an exclusive ``flock`` on ``shard.lock`` beside it,
taken before the shard is loaded and let go after it is closed. Edge's own lock is not enough:
loading reads the segments before Edge finds the shard taken, so a load while another process
writes could read a half-written segment ("failed to load segment ... unexpected end of file")."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from qinb.errors import QinbError, StoreLockedError

__all__ = ["Handle", "write_json"]

HOLDER_FILE = "holder.json"
LOCK_FILE = "shard.lock"
LIVE = 2.0  # seconds a waiting mark counts after it was last touched


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
        self.lock_fd: int | None = None  # our flock on LOCK_FILE, held exactly while shard is open
        self.last_used = 0.0
        _watch(self)

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        with self.lock:
            if self.shard is None:
                self.shard = self._opening(self._load)
            try:
                yield self.shard
            finally:
                self.last_used = time.monotonic()
                if self.hold <= 0 or self._others_waiting():
                    self._opening(self.release)

    def _opening(self, step: Callable[[], Any]) -> Any:
        """Opening or closing the shard (its lock, the marks, the engine's load and flush):
        a failure in qinb's words, naming the folder; a failed load means damaged files."""
        from qinb.store.faults import fault

        try:
            return step()
        except (QinbError, KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # also a panic of the engine
            name = self.directory.name
            raise fault(exc, self.directory, f"opening collection {name!r}", name,
                        opening=step == self._load) from exc

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
        return bool(self._waiters())

    def _waiters(self) -> dict[int, float]:
        """Other processes waiting for this shard: pid -> the time each began to wait. A mark
        not touched for LIVE seconds is left by a process that stopped waiting or died."""
        now, found = time.time(), {}
        for mark in self.directory.glob("waiting.*"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(mark.name.split(".", 1)[1])
                if pid != os.getpid() and now - mark.stat().st_mtime < LIVE:
                    found[pid] = float(json.loads(mark.read_text())["since"])
        return found

    def release(self) -> None:
        with self.lock:
            if self.shard is not None:
                shard, self.shard = self.shard, None
                try:
                    with contextlib.suppress(OSError):
                        (self.directory / HOLDER_FILE).unlink()
                    shard.flush()
                    shard.close()
                finally:
                    self._unlock()

    def _try_lock(self) -> bool:
        """Take the flock on LOCK_FILE without waiting; False when another holder has it."""
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.lock_fd = fd
        return True

    def _unlock(self) -> None:
        fd, self.lock_fd = self.lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor lets go of the flock

    def _load(self) -> Any:
        """Open the shard once this process holds the flock. Waiting processes go in the order
        they began to wait, and one that just let go for a waiter does not take it straight
        back, so two notebooks sharing a collection take turns."""
        deadline = time.monotonic() + self.wait
        delay = 0.02
        mark = self.directory / f"waiting.{os.getpid()}"
        since: float | None = None  # when this process began to wait
        try:
            while True:
                others = self._waiters()
                if since is None and others:
                    since = time.time()
                    write_json(mark, {"since": since})
                ahead = since is not None and any(
                    (t, pid) < (since, os.getpid()) for pid, t in others.items())
                if not ahead:
                    shard = self._open()
                    if shard is not None:
                        write_json(self.directory / HOLDER_FILE, {
                            "pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                            "program": " ".join(sys.argv)[:200]})
                        return shard
                if time.monotonic() >= deadline:
                    raise StoreLockedError(self._locked_message()) from None
                if since is None:
                    since = time.time()
                    write_json(mark, {"since": since})
                else:
                    os.utime(mark)  # still waiting: asks the holder to let go after its operation
                time.sleep(delay)
                delay = min(delay * 1.5, 0.2)
        finally:
            with contextlib.suppress(OSError):  # on a read-only disk there is none to remove
                mark.unlink(missing_ok=True)

    def _open(self) -> Any:
        """The shard, or None while another process holds it."""
        import qdrant_edge as E

        if not self._try_lock():
            return None
        try:
            return E.EdgeShard.load(str(self.directory / "shard"))
        except BaseException as exc:
            self._unlock()
            if "WouldBlock" in str(exc):  # Edge's own lock: held by a program that is not qinb
                return None
            raise

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


