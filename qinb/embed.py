"""Local resolution of inference objects into vectors, each distinct object embedded once.

Dense documents go through fastembed (from a local model directory when one is known), images
through fastembed's image models, BM25 documents through qdrant-edge-py's offline ``Bm25``,
which makes the same token ids as the Qdrant server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qdrant_client import models

from qinb import models as registry
from qinb.images import ImageCell

__all__ = ["Embedder", "Item", "Vector", "document_item", "image_item"]

Vector = list[float] | models.SparseVector
Key = tuple[str, str, str]
CHUNK = 64  # small enough that the progress bar moves on long texts


@dataclass(frozen=True)
class Item:
    """One inference object, what makes it unique, and the input a local model needs."""

    obj: models.Document | models.Image
    key: Key
    data: str | ImageCell


def options_of(obj: models.Document | models.Image) -> dict[str, Any]:
    """An object's options as a plain dict (they may be a ``models.Bm25Config``)."""
    if isinstance(obj.options, models.Bm25Config):
        return obj.options.model_dump(exclude_none=True)
    return dict(obj.options or {})


def _key(model: str, content: str, obj: models.Document | models.Image) -> Key:
    # runtime options change how a model runs, never what it computes
    options = {k: v for k, v in options_of(obj).items() if k not in registry.RUNTIME_OPTIONS}
    return (model.lower(), content, json.dumps(options, sort_keys=True, default=str))


def document_item(doc: models.Document) -> Item:
    """The item of a text document: identified by model, text and model options."""
    return Item(doc, _key(doc.model, doc.text, doc), doc.text)


def image_item(obj: models.Image, cell: ImageCell) -> Item:
    """The item of an image: identified by model, the sha256 of its bytes and model options."""
    return Item(obj, _key(obj.model, f"sha256:{cell.digest}", obj), cell)


class Embedder:
    """Turns items into vectors locally, remembering every vector it made.

    One instance lives for one upsert or query, so that identical objects across the whole
    DataFrame (and across named vectors) are embedded once.
    """

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self._done: dict[Key, Vector] = {}

    def resolve(self, items: Sequence[Item], *, runtime: dict[str, Any] | None = None,
                query: bool = False, desc: str = "embedding") -> tuple[list[Vector], int]:
        """Vectors for ``items`` (in order) and how many distinct objects were embedded now."""
        todo: dict[Key, Item] = {}
        for item in items:
            if item.key not in self._done and item.key not in todo:
                todo[item.key] = item
        if todo:
            pending = list(todo.values())
            made = self._embed(pending, runtime or {}, query=query, desc=desc)
            for item, vector in zip(pending, made, strict=True):
                self._done[item.key] = vector
        return [self._done[i.key] for i in items], len(todo)

    def _embed(self, items: list[Item], runtime: dict[str, Any], *, query: bool,
               desc: str) -> list[Vector]:
        from tqdm.auto import tqdm

        out: list[Vector] = []
        bar = tqdm(total=len(items), desc=desc, unit="obj", disable=not self.progress or len(items) < 2)
        try:
            for start in range(0, len(items), CHUNK):
                chunk = items[start:start + CHUNK]
                out.extend(_embed_chunk(chunk, runtime, query=query))
                bar.update(len(chunk))
        finally:
            bar.close()
        return out


def _embed_chunk(items: list[Item], runtime: dict[str, Any], *, query: bool) -> Iterable[Vector]:
    first = items[0].obj
    if isinstance(first, models.Image):
        model = registry.image_model(first.model, runtime)
        cells = [i.data for i in items if isinstance(i.data, ImageCell)]
        return [a.tolist() for a in model.embed([c.pil() for c in cells])]
    texts = [str(i.data) for i in items]
    if first.model.lower() == registry.BM25_MODEL:
        bm25 = registry.bm25_model(tuple(sorted(options_of(first).items())))
        embed = bm25.embed_query if query else bm25.embed_document
        sparse = [embed(t) for t in texts]
        return [models.SparseVector(indices=list(s.indices), values=list(s.values)) for s in sparse]
    model = registry.text_model(first.model, runtime)
    arrays: Iterable[Any] = model.query_embed(texts) if query else model.embed(texts)
    return [a.tolist() for a in arrays]
