"""Peak RSS of an image upsert: ordinary pictures, the longest and thinnest qinb accepts (20:1),
and 196-byte 20000x2 PNGs, which CLIP's resize would turn into gigabytes (qinb refuses them).
The raw variant gives ONE thin PNG to fastembed directly, as qinb did before it bounded them
(sixteen of them get the process killed at 24 GB).

The image model is the STAND-IN CLIP vision model (qinb.standin) with CLIP's own preprocessing
(resize the short side to 224, centre crop): the memory goes to the preprocessing, which is the
real one. Each variant runs in its own process.

    .venv/bin/python bench/hostile_images.py
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _child import report, run

import qinb

IMAGES = 16


def png(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (seed * 13 % 256, 90, 160)).save(out, format="PNG")
    return out.getvalue()


SHAPES = {"ordinary": (640, 480), "thin-accepted": (4480, 224), "thin-hostile": (20000, 2)}


def variant(name: str) -> dict[str, float]:
    import pandas as pd

    from qinb import standin

    standin.register_clip(Path(tempfile.mkdtemp()))
    shape = SHAPES[name.removeprefix("raw-")]
    cells = [png(*shape, seed=i) for i in range(IMAGES)]
    start = time.perf_counter()
    if name.startswith("raw-"):
        from PIL import Image

        model = qinb.models.image_model(qinb.models.CLIP_VISION)
        list(model.embed([Image.open(io.BytesIO(cells[0]))], batch_size=1))
        stored, failed = 1, 0
    else:
        store = qinb.connect(tempfile.mkdtemp())
        df = pd.DataFrame({"photo": cells})
        result = df.qdrant.upsert("img", vectors={"image": qinb.Image("photo")}, client=store,
                                  errors="skip", progress=False)
        stored, failed = result.upserted, result.failed_rows
    return {"seconds": time.perf_counter() - start, "stored": stored, "failed": failed,
            "bytes_per_image": len(cells[0])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    args = parser.parse_args()
    if args.run:
        report(variant(args.run))
        return
    os.environ["QINB_CACHE"] = tempfile.mkdtemp()
    results = {}
    for name in ["ordinary", "thin-accepted", "thin-hostile", "raw-thin-hostile"]:
        try:
            results[name] = run(Path(__file__), name)
        except Exception as exc:  # the raw baseline may be killed by the kernel
            results[name] = {"rss_mb": float("nan"), "stored": 0, "failed": 0, "seconds": 0,
                             "bytes_per_image": 0, "error": str(exc)[-200:]}
    base = results["ordinary"]["rss_mb"]
    print(f"{IMAGES} images per variant, STAND-IN CLIP vision model, CLIP's preprocessing")
    print(f"{'variant':18} {'bytes/img':>9} {'stored':>6} {'failed':>6} {'peak RSS MB':>11} "
          f"{'x ordinary':>10} {'s':>6}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:18} killed: {r['error']}")
            continue
        print(f"{name:18} {r['bytes_per_image']:9.0f} {r['stored']:6.0f} {r['failed']:6.0f} "
              f"{r['rss_mb']:11.0f} {r['rss_mb'] / base:10.2f} {r['seconds']:6.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
