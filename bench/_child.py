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
    """Print the result as the last line, with this process's peak RSS in MB."""
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)
