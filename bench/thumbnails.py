"""A page of 50 image hits: thumbnails made cold vs cached, and page weight vs the photos' weight.

Prints ratios measured side by side in one run. The hits point at 50 distinct PNG files cut from
scikit-image's photographs, as a widget page of 50 hits would.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from PIL import Image

import qinb
from qinb import viz

HITS, ROUNDS = 50, 3


def page(directory: Path) -> pd.DataFrame:
    photos = qinb.datasets.photos()["photo"].tolist()
    paths = []
    for i in range(HITS):
        with Image.open(photos[i % len(photos)]) as image:
            image = image.convert("RGB")
            w, h = image.size
            crop = image.crop((i % 7, i % 5, w - i % 3, h - i % 4))  # distinct bytes per file
            path = directory / f"hit{i:02d}.png"
            crop.save(path)
            paths.append(str(path))
    return pd.DataFrame({"score": [1.0 - i / HITS for i in range(HITS)],
                         "rank": range(1, HITS + 1), "id": range(HITS), "photo": paths})


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hits = page(Path(tmp))
        cold, warm = [], []
        for _ in range(ROUNDS):  # interleaved: each round clears the cache, then reuses it
            viz.thumbnail.cache_clear()
            start = time.perf_counter()
            images = viz.hit_images(hits, ["photo"])
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            viz.hit_images(hits, ["photo"])
            warm.append(time.perf_counter() - start)
        source = sum(Path(p).stat().st_size for p in hits["photo"])
        shown = sum(len(i or "") for i in images)
    print(f"{HITS} image hits, best of {ROUNDS}:")
    print(f"  thumbnails made    {min(cold) * 1000:8.1f} ms")
    print(f"  thumbnails cached  {min(warm) * 1000:8.1f} ms   ({min(cold) / min(warm):.0f}x faster)")
    print(f"  page weight {shown / 1e6:.2f} MB of data URIs for {source / 1e6:.1f} MB of photos "
          f"({source / shown:.0f}x lighter)")


if __name__ == "__main__":
    main()
