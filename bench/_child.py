"""Run one benchmark variant in a fresh process, so each has its own peak RSS."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def run(script: Path, variant: str, *args: str) -> dict[str, float]:
    """Run ``script --run variant args`` and return what it printed last (a JSON object) with
    the child's peak RSS in MB."""
    out = subprocess.run([sys.executable, str(script), "--run", variant, *args], check=True,
                         capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(result: dict[str, float]) -> None:
    """Print the result as the last line, with this process's peak RSS in MB: VmHWM, the high
    water mark of this program's own memory (getrusage's ru_maxrss keeps the parent's peak
    across fork and exec, so a child of a large parent would report the parent's size)."""
    with open("/proc/self/status") as status:
        line = next((x for x in status if x.startswith("VmHWM:")), None)
    peak = int(line.split()[1]) if line else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["rss_mb"] = peak / 1024
    print(json.dumps(result), flush=True)


class AnonPeak:
    """The peak of this process's anonymous resident memory (its heap: Python objects, arrays,
    the engine's own allocations), sampled every ``every`` seconds. Peak RSS also counts the
    file pages a memory-mapped engine has touched, which are page cache the kernel can reclaim."""

    def __init__(self, every: float = 0.05) -> None:
        import threading

        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(every,), daemon=True)
        self._thread.start()

    def _watch(self, every: float) -> None:
        while not self._stop.wait(every):
            self.mb = max(self.mb, self.now())

    @staticmethod
    def now() -> float:
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("RssAnon:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, self.now())
        return self.mb
