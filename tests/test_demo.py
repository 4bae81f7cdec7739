"""The demo command, run as a newcomer runs it: a subprocess on an embedded store."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_prints_dense_bm25_and_hybrid_hits(tmp_path, warm_cache):
    env = {**os.environ, "QINB_STORE": str(tmp_path / "store"), "QINB_CACHE": warm_cache}
    run = [sys.executable, "-m", "qinb.cli", "demo", "--quiet"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "created collection 'python-docs': 79 rows, 79 upserted" in out
    assert out.count("--- dense") == out.count("--- bm25") == out.count("--- hybrid") == 3
    loop_block = out.split("=== 'loop over the items of a list'")[1].split("===")[0]
    hybrid_top = loop_block.split("--- hybrid")[1].strip().splitlines()[2]
    assert hybrid_top.split()[0] == "for"
    # the store persists: a second run finds the collection and embeds nothing
    second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert "79 unchanged" in second.stdout and "0 embedded" in second.stdout


def test_make_finds_the_models_where_the_library_does_and_lab_runs_as_root(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "QINB_MODELS"}
    env["HOME"] = str(tmp_path)
    # what `make models` would build, and where: the library's own default, no variable set
    plan = subprocess.run(["make", "-n", "-C", str(root), "models", "lab"], env=env,
                          capture_output=True, text=True, check=True).stdout
    assert ".venv/bin/qinb models" in plan
    lab = next(line for line in plan.splitlines() if "jupyter lab" in line)
    assert lab.endswith("--allow-root") == (os.getuid() == 0)
    check = subprocess.run([sys.executable, "-c", "from qinb import models; print(models.models_dir())"],
                           env=env, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == str(tmp_path / ".qinb" / "models")
    where = subprocess.run(["make", "-s", "-C", str(root), "--eval", "where: ; @echo $(MODELS)",
                            "where"], env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip() == check.stdout.strip()  # one place, found by both
