"""Matplotlib views of search results: a hits grid, score bars, a 2-D map of the stored vectors.

No ipywidgets here: these functions run in any notebook, script or test, and the widgets call
them too.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import textwrap
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from qinb.errors import QueryError, require
from qinb.images import THUMBNAIL_SUFFIX

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from qdrant_client import QdrantClient

    from qinb.store import Store

__all__ = ["hit_images", "image_columns", "plot_hits", "plot_map", "plot_scores"]

THUMB = 160
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
MAP_SAMPLE = 100_000


def _pyplot() -> Any:
    require("matplotlib", "plots")
    import matplotlib.pyplot as plt

    return plt


def display_urls() -> bool:
    """Whether pictures behind http(s) URLs in payloads are fetched for display (cards, plots).

    On by default; set the environment variable ``QINB_DISPLAY_URLS=0`` (or pass
    ``fetch_urls=False``) for collections from sources you do not trust: each fetch is then
    skipped, and the card shows its text.
    """
    return os.environ.get("QINB_DISPLAY_URLS", "1").strip().lower() not in ("0", "false", "off", "no")


@functools.lru_cache(maxsize=512)
def thumbnail(reference: str, size: int = THUMB, fetch: bool = True) -> str | None:
    """A small JPEG data URI for an image path, URL or data URI; downscaled once and cached.
    URLs are fetched under the same rules as image cells (http(s) only, size cap, deadline)."""
    from qinb.images import ImageCellError, is_url, load

    if reference.startswith("data:image/jpeg") and len(reference) < 40_000:
        return reference  # a stored thumbnail is already small
    if is_url(reference) and not fetch:
        return None
    try:
        return load(reference).thumbnail(size)
    except ImageCellError:
        return None


def image_columns(hits: pd.DataFrame) -> list[str]:
    """Columns that hold pictures: stored thumbnails first, then image paths or URLs."""
    thumbs = [str(c) for c in hits.columns if str(c).endswith(THUMBNAIL_SUFFIX)]
    sources = [
        str(c) for c in hits.columns
        if str(c) not in thumbs and hits[c].dropna().map(
            lambda v: isinstance(v, str) and v.lower().split("?")[0].endswith(IMAGE_SUFFIXES)).any()
    ]
    return thumbs + sources


def hit_images(hits: pd.DataFrame, columns: list[str] | None = None, *,
               fetch_urls: bool | None = None) -> list[str | None]:
    """For each hit, a thumbnail data URI if the row has a picture in ``columns`` (default:
    :func:`image_columns`). Pictures are read several at once; URLs only if ``fetch_urls``
    (default :func:`display_urls`)."""
    from concurrent.futures import ThreadPoolExecutor

    from qinb.images import URL_WORKERS

    columns = image_columns(hits) if columns is None else columns
    fetch = display_urls() if fetch_urls is None else fetch_urls
    candidates = [[v for v in (row.get(c) for c in columns)
                   if isinstance(v, str) and v and not v.startswith("<")]
                  for _, row in hits.iterrows()]
    references = list(dict.fromkeys(v for row in candidates for v in row))
    with ThreadPoolExecutor(max_workers=URL_WORKERS, thread_name_prefix="qinb-thumb") as pool:
        made = dict(zip(references, pool.map(lambda r: thumbnail(r, THUMB, fetch), references),
                        strict=True))
    return [next((made[v] for v in row if made[v]), None) for row in candidates]


def _literal(text: str) -> str:
    """Payload text as matplotlib shows it literally: "$5 and $10" is no mathtext."""
    return text.replace("$", r"\$")


def _decode(uri: str) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def _caption(row: pd.Series, text_columns: list[str], width: int) -> str:
    for column in text_columns:
        value = row.get(column)
        if isinstance(value, str) and value:
            return textwrap.shorten(value, width * 4, placeholder="…")
    return ""


def plot_hits(hits: pd.DataFrame, *, columns: int = 4, text: str | list[str] | None = None,
              width: float = 3.0, fetch_urls: bool | None = None) -> Figure:
    """A grid of hit cards: the thumbnail or a text snippet, with rank, score and row label.

    Parameters
    ----------
    hits : DataFrame
        What :func:`qinb.search` returned.
    columns : int
        Cards per row.
    text : str or list of str, optional
        Columns to take the snippet from; default the first text column.
    width : float
        Inches per card.
    fetch_urls : bool, optional
        Fetch pictures behind http(s) URLs in the payload (default :func:`display_urls`: on
        unless ``QINB_DISPLAY_URLS=0``). Payload text is shown as it is (``$`` is no math).

    Examples
    --------
    >>> qinb.plot_hits(df.qdrant.search("photos", "a cat"))
    """
    plt = _pyplot()
    if hits.empty:
        raise QueryError("no hits to plot: the search returned nothing")
    from qinb.cards import hit_columns

    text_columns = [text] if isinstance(text, str) else list(text or hit_columns(hits)[0])
    images = hit_images(hits, fetch_urls=fetch_urls)
    rows = -(-len(hits) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, width * 1.15 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, row), image in zip(axes.flat, hits.iterrows(), images, strict=False):
        ax.set_title(f"#{row['rank']}  {row['score']:.3f}\n{_literal(_label(label))}", fontsize=9)
        if image:
            ax.imshow(_decode(image))
        else:
            ax.text(0.02, 0.98, _literal(textwrap.fill(_caption(row, text_columns, 28), 28)),
                    va="top", ha="left", fontsize=8, wrap=True, transform=ax.transAxes)
            ax.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, transform=ax.transAxes,
                                       edgecolor="0.7"))
    fig.tight_layout()
    return cast("Figure", fig)


def _label(label: Hashable) -> str:
    return textwrap.shorten(str(label), 30, placeholder="…")


def plot_scores(hits: pd.DataFrame, *, label: str | None = None) -> Figure:
    """Horizontal bars of the hits' scores, best at the top.

    Examples
    --------
    >>> qinb.plot_scores(df.qdrant.search("docs", "planets"), label="title")
    """
    plt = _pyplot()
    if hits.empty:
        raise QueryError("no hits to plot: the search returned nothing")
    names = [_label(v) for v in (hits[label] if label else hits.index)]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(hits) + 1))
    ax.barh(range(len(hits)), hits["score"], color="#dc244c")
    ax.set_yticks(range(len(hits)),
                  [_literal(f"#{r} {n}") for r, n in zip(hits["rank"], names, strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("score")
    fig.tight_layout()
    return cast("Figure", fig)


def project(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA to two dimensions: (coordinates, mean, components) for projecting more points."""
    mean = vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    components = vt[:2]
    return (vectors - mean) @ components.T, mean, components


def plot_map(collection: str, *, using: str, hits: pd.DataFrame | None = None,
             query: Any = None, client: Store | QdrantClient | None = None,
             sample: int = MAP_SAMPLE, seed: int = 0) -> Figure:
    """A 2-D PCA map of the stored vectors ``using``, with hits and the query highlighted.

    A row of a chunked vector (``chunk_size=``) is the mean of its passage vectors.

    Above ``sample`` points a random sample is drawn (the hits are always shown).

    Examples
    --------
    >>> hits = df.qdrant.search("docs", "planets", using="text")
    >>> qinb.plot_map("docs", using="text", hits=hits, query="planets")
    """
    from qinb.query import query_vector
    from qinb.store import as_store, dense_vectors

    plt = _pyplot()
    client = as_store(client)
    ids, matrix = dense_vectors(client, collection, using, sample=sample, seed=seed)
    if len(ids) < 3:
        raise QueryError(f"vector {using!r} of {collection!r} has {len(ids)} points; a map needs 3")
    coords, mean, components = project(matrix)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(coords[:, 0], coords[:, 1], s=12, c="0.75", label=f"{len(ids)} points")
    if hits is not None and len(hits):
        where = {pid: i for i, pid in enumerate(ids)}
        picked = [(where[h], r) for h, r in zip(hits["id"], hits["rank"], strict=True) if h in where]
        if picked:
            xy = coords[[i for i, _ in picked]]
            ax.scatter(xy[:, 0], xy[:, 1], s=40, c="#dc244c", label="hits")
            for (x, y), (_, rank) in zip(xy, picked, strict=True):
                ax.annotate(str(rank), (x, y), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    if query is not None:
        vector = np.asarray(query_vector(collection, query, using=using, client=client))
        qx, qy = (vector - mean) @ components.T
        ax.scatter([qx], [qy], marker="*", s=250, c="#038fe1", label="query")
    ax.set_title(_literal(f"{collection} · {using} · PCA"))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return cast("Figure", fig)
