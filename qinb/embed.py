"""Local resolution of inference objects into vectors, each distinct object embedded once.

Dense documents go through fastembed (from a local model directory when one is known), images
through fastembed's image models, BM25 documents through qdrant-edge-py's offline ``Bm25``,
which makes the same token ids as the Qdrant server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qdrant_client import models

from qinb import models as registry
from qinb.images import ImageCell

__all__ = ["Embedder", "Item", "Vector", "digest", "document_item", "image_content", "image_item",
           "object_key"]

Vector = np.ndarray | models.SparseVector
Key = tuple[str, str, str]
CHUNK = 64  # images and BM25 per batch
TOKEN_BUDGET = 512  # dense text per batch: measured fastest on CPU (bench/ingest.py), and small
MAX_BATCH = 256
MAX_TOKENS = 512  # fastembed truncates longer texts
# vectors remembered in memory during one upsert: past it, repeats come from the persistent
# cache (dense) or are recomputed (BM25, cheap); 10k vectors of 512-d are 20 MB, 50k of long
# passages (with their text in the keys) took 170 MB (bench/longdocs.py --memory)
MEMO_LIMIT = 10_000


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


def digest(key: Sequence[str] | Sequence[Key]) -> str:
    """The one digest of an inference object's identity (or of a cell's passages, in order):
    the persistent cache's key, and, cut to 24 characters, the name stored with each point that
    tells a changed cell; one function, so the two cannot drift apart."""
    return hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()


def object_key(model: str, content: str, options: Mapping[str, Any]) -> Key:
    """What makes an inference object unique: its model, its content (a text, or an image's
    sha256) and the options that change what the model computes."""
    # runtime options change how a model runs, never what it computes; a credential neither
    kept = {k: v for k, v in options.items()
            if k not in registry.RUNTIME_OPTIONS and not registry.is_secret(k)}
    return (model.lower(), content, json.dumps(kept, sort_keys=True, default=str))


def image_content(cell: ImageCell) -> str:
    """The content an image's identity is made of: the sha256 of its bytes."""
    return f"sha256:{cell.digest}"


def document_item(doc: models.Document) -> Item:
    """The item of a text document: identified by model, text and model options."""
    return Item(doc, object_key(doc.model, doc.text, options_of(doc)), doc.text)


def image_item(obj: models.Image, cell: ImageCell) -> Item:
    """The item of an image: identified by model, the sha256 of its bytes and model options."""
    return Item(obj, object_key(obj.model, image_content(cell), options_of(obj)), cell)


class Embedder:
    """Turns items into vectors locally, each distinct object once.

    Within one upsert or query an object is embedded once however often it appears; dense text
    and image vectors also go to the persistent cache (:mod:`qinb.cache`), so another collection
    or a later kernel gets them without inference. The in-memory memo is bounded, so a long
    ingest does not keep every vector of the frame.
    """

    def __init__(self, progress: bool = True, persistent: bool = True) -> None:
        self.progress = progress
        self.persistent = persistent
        self._done: dict[Key, Vector] = {}

    def resolve(self, items: Sequence[Item], *, runtime: dict[str, Any] | None = None,
                query: bool = False, desc: str = "embedding") -> tuple[list[Vector], int, int]:
        """Vectors for ``items`` (in order), how many distinct objects were embedded now and
        how many came from the persistent cache."""
        if len(self._done) > MEMO_LIMIT:
            self._done.clear()
        todo: dict[Key, Item] = {}
        for item in items:
            if item.key not in self._done and item.key not in todo:
                todo[item.key] = item
        cached = 0
        use_cache = self.persistent and not query and bool(todo) and not _is_bm25(items[0].obj)
        if use_cache:
            from qinb import cache

            keys = {k: digest(k) for k in todo}
            hits = cache.get_many(keys.values())
            for k in list(todo):
                if keys[k] in hits:
                    self._done[k] = hits[keys[k]]
                    del todo[k]
                    cached += 1
        if todo:
            pending = list(todo.values())
            made = self._embed(pending, runtime or {}, query=query, desc=desc)
            for item, vector in zip(pending, made, strict=True):
                self._done[item.key] = vector
            if use_cache:
                cache.put_many({keys[i.key]: v for i, v in zip(pending, made, strict=True)
                                if isinstance(v, np.ndarray)})
        return [self._done[i.key] for i in items], len(todo), cached

    def _embed(self, items: list[Item], runtime: dict[str, Any], *, query: bool,
               desc: str) -> list[Vector]:
        from qinb.progress import progress_bar

        out: list[Vector | None] = [None] * len(items)
        bar = progress_bar(total=len(items), desc=desc, unit="obj",
                           disable=not self.progress or len(items) < 2)
        try:
            for batch in _batches(items):
                vectors = _embed_batch([items[i] for i in batch], runtime, query=query)
                for i, vector in zip(batch, vectors, strict=True):
                    out[i] = vector
                bar.update(len(batch))
        finally:
            bar.close()
        return [v for v in out if v is not None]


def _is_bm25(obj: models.Document | models.Image) -> bool:
    return isinstance(obj, models.Document) and obj.model.lower() == registry.BM25_MODEL


def _tokens(text: str) -> int:
    """A cheap upper estimate of a text's tokens (one per three characters), at most the
    length a model truncates to."""
    return min(len(text) // 3 + 2, MAX_TOKENS)


def _batches(items: list[Item]) -> list[list[int]]:
    """Positions of ``items`` in batches. Dense text is sorted by length and batched by a token
    budget: a batch is padded to its longest text, so mixing lengths costs time and a fixed
    count of long texts costs gigabytes. Images and BM25 go in fixed-size batches."""
    first = items[0].obj
    if isinstance(first, models.Image) or _is_bm25(first):
        return [list(range(s, min(s + CHUNK, len(items)))) for s in range(0, len(items), CHUNK)]
    order = sorted(range(len(items)), key=lambda i: len(str(items[i].data)))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = _tokens(str(items[i].data))  # sorted: the newest text is the longest
        if current and ((len(current) + 1) * longest > TOKEN_BUDGET or len(current) >= MAX_BATCH):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _embed_batch(items: list[Item], runtime: dict[str, Any], *, query: bool) -> list[Vector]:
    first = items[0].obj
    if isinstance(first, models.Image):
        model = registry.image_model(first.model, runtime)
        cells = [i.data for i in items if isinstance(i.data, ImageCell)]
        return [np.asarray(a, dtype=np.float32) for a in model.embed([c.pil() for c in cells],
                                                                     batch_size=len(cells))]
    texts = [str(i.data) for i in items]
    if _is_bm25(first):
        bm25 = registry.bm25_model(tuple(sorted(options_of(first).items())))
        embed = bm25.embed_query if query else bm25.embed_document
        sparse = [embed(t) for t in texts]
        return [models.SparseVector(indices=list(s.indices), values=list(s.values)) for s in sparse]
    model = registry.text_model(first.model, runtime)
    arrays: Iterable[Any] = (model.query_embed(texts) if query
                             else model.embed(texts, batch_size=len(texts)))
    return [np.asarray(a, dtype=np.float32) for a in arrays]
