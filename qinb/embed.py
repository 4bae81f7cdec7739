"""Local resolution of inference objects into vectors, each distinct object embedded once.

Dense documents go through fastembed (from a local model directory when one is known); BM25
documents through qdrant-edge-py's offline ``Bm25``, which makes the same token ids as the
Qdrant server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from qdrant_client import models

from qinb import models as registry
from qinb.spec import Spec

__all__ = ["Embedder", "Vector", "identity"]

Vector = list[float] | models.SparseVector
CHUNK = 64  # small enough that the progress bar moves on long texts


def options_of(doc: models.Document) -> dict[str, Any]:
    """A Document's options as a plain dict (they may be a ``models.Bm25Config``)."""
    if isinstance(doc.options, models.Bm25Config):
        return doc.options.model_dump(exclude_none=True)
    return dict(doc.options or {})


def identity(doc: models.Document) -> tuple[str, str, str]:
    """What makes two inference objects the same: model, text and model options."""
    options = {k: v for k, v in options_of(doc).items() if k not in registry.RUNTIME_OPTIONS}
    return (doc.model.lower(), doc.text, json.dumps(options, sort_keys=True, default=str))


class Embedder:
    """Turns inference objects into vectors locally, remembering every vector it made.

    One instance lives for one upsert or query, so that identical objects across the whole
    DataFrame (and across named vectors) are embedded once.
    """

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self._done: dict[tuple[str, str, str], Vector] = {}

    def resolve(self, spec: Spec, docs: Sequence[models.Document], *, query: bool = False,
                desc: str = "embedding") -> tuple[list[Vector], int]:
        """Vectors for ``docs`` (in order) and how many distinct objects were embedded now."""
        keys = [identity(d) for d in docs]
        todo: dict[tuple[str, str, str], models.Document] = {}
        for key, doc in zip(keys, docs, strict=True):
            if key not in self._done and key not in todo:
                todo[key] = doc
        if todo:
            pending = list(todo.items())
            made = self._embed(spec, [d for _, d in pending], query=query, desc=desc)
            for (key, _), vector in zip(pending, made, strict=True):
                self._done[key] = vector
        return [self._done[k] for k in keys], len(todo)

    def _embed(self, spec: Spec, docs: list[models.Document], *, query: bool,
               desc: str) -> list[Vector]:
        from tqdm.auto import tqdm

        out: list[Vector] = []
        bar = tqdm(total=len(docs), desc=desc, unit="obj", disable=not self.progress or len(docs) < 2)
        try:
            for start in range(0, len(docs), CHUNK):
                chunk = docs[start:start + CHUNK]
                out.extend(_embed_chunk(spec, chunk, query=query))
                bar.update(len(chunk))
        finally:
            bar.close()
        return out


def _embed_chunk(spec: Spec, docs: list[models.Document], *, query: bool) -> Iterable[Vector]:
    texts = [d.text for d in docs]
    if spec.kind == "bm25":
        bm25 = registry.bm25_model(tuple(sorted(options_of(docs[0]).items())))
        embed = bm25.embed_query if query else bm25.embed_document
        sparse = [embed(t) for t in texts]
        return [models.SparseVector(indices=list(s.indices), values=list(s.values)) for s in sparse]
    model = registry.text_model(docs[0].model, spec.runtime_options)
    arrays: Iterable[Any] = model.query_embed(texts) if query else model.embed(texts)
    return [a.tolist() for a in arrays]
