"""The frame that killed a notebook: 5,000 docstrings of the standard library, upserted with a
dense and a BM25 vector, against raw fastembed embedding the same texts with its defaults.
Each in its own process; peak RSS side by side.

    .venv/bin/python bench/docstrings.py        # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import report, run

import qinb

ROWS = 5000


def docstrings() -> pd.DataFrame:
    """Up to 5,000 distinct docstrings of stdlib functions and classes, longest kinds included."""
    seen: dict[str, str] = {}
    warnings.simplefilter("ignore")
    for info in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if info.name.startswith(("_", "test", "idlelib", "tkinter", "turtle", "antigravity", "this")):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:
            continue
        for name, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
            if doc and len(doc) > 40 and doc not in seen.values():
                seen[f"{info.name}.{name}"] = doc
        if len(seen) >= ROWS:
            break
    items = list(seen.items())[:ROWS]
    return pd.DataFrame({"doc": [d for _, d in items]}, index=pd.Index([n for n, _ in items], name="name"))


def variant(name: str) -> dict[str, float]:
    df = docstrings()
    model = qinb.models.text_model(qinb.models.MINILM)
    list(model.embed(["warm up"]))
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    start = time.perf_counter()
    if name == "fastembed":
        list(model.embed(df["doc"].tolist()))
    else:
        df.qdrant.upsert("docs", client=qinb.connect(tempfile.mkdtemp()), progress=False,
                         vectors={"text": qinb.Text("doc"), "bm25": qinb.Bm25("doc")})
    return {"seconds": time.perf_counter() - start, "rows": len(df),
            "chars": float(df["doc"].str.len().mean())}


def main() -> None:
    me = Path(__file__)
    q = run(me, "qinb")
    print(f"{q['rows']:.0f} docstrings, {q['chars']:.0f} characters on average")
    print(f"  qinb upsert, dense + BM25:            {q['seconds']:6.1f} s  peak RSS {q['rss_mb']:6.0f} MB")
    try:
        f = run(me, "fastembed")
    except subprocess.CalledProcessError as exc:
        # seen here: the kernel's out-of-memory killer at 24 GB, as in the notebook that died
        print(f"  raw fastembed (defaults), dense only: died (exit {exc.returncode}; -9 is the "
              "out-of-memory killer)")
        return
    print(f"  raw fastembed (defaults), dense only: {f['seconds']:6.1f} s  peak RSS {f['rss_mb']:6.0f} MB")
    print(f"  qinb: {f['seconds'] / q['seconds']:.2f}x the speed, {f['rss_mb'] / q['rss_mb']:.1f}x less memory")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    args = parser.parse_args()
    if args.run:
        report(variant(args.run))
    else:
        main()
