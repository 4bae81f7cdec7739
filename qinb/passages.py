"""Long cells -> passages with character spans, counted in the model's own tokens.

A dense text model reads a window (512 tokens for all-MiniLM-L6-v2) and cuts the rest. With
``chunk_size`` a cell is split on natural boundaries (paragraphs, sentences, words) by
``semantic-text-splitter``, counting with the model's own tokenizer; without it, texts past the
window are counted, so that nothing is cut silently.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qinb import models as registry
from qinb.errors import ArgumentError, ModelError, require

__all__ = ["MAX_MATRIX_FLOATS", "Window", "cut", "max_passages", "spans", "splitter",
           "window"]

# a Qdrant server takes at most this many floats in one multivector (Qdrant Edge up to 32 MiB)
MAX_MATRIX_FLOATS = 1_048_576
SPECIAL_TOKENS = 2  # [CLS] and [SEP]: the window holds this many fewer tokens of text


@dataclass(frozen=True)
class Window:
    """A model's tokenizer (truncation and padding off, so it counts whole texts) and the
    number of text tokens the model reads (None: it reads everything)."""

    tokenizer: Any
    tokens: int | None

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, without the special tokens the model adds."""
        encoded = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encoded]

    def beyond(self, texts: Sequence[str]) -> list[int]:
        """The token counts of the texts longer than the window (the model cuts these)."""
        if self.tokens is None:
            return []
        # a token covers at least one character: a text no longer than the window fits it
        long = [t for t in texts if len(t) > self.tokens]
        return [n for n in self.count(long) if n > self.tokens] if long else []


@functools.lru_cache(maxsize=8)
def _window(model: str, runtime: tuple[tuple[str, Any], ...]) -> Window:
    require("tokenizers", "local")
    import tokenizers

    # read from the model's files, the model itself unloaded; this copy is ours to change
    inner = registry.text_tokenizer(model, dict(runtime))
    if not isinstance(inner, tokenizers.Tokenizer):
        raise ModelError(f"fastembed gives no tokenizer for {model!r}, so its texts cannot be "
                         "counted or split into passages; use another model or no chunk_size")
    truncation = inner.truncation
    limit = int(truncation["max_length"]) - SPECIAL_TOKENS if truncation else None
    # as fastembed reads it, it cuts at the window and pads: without either it counts whole texts
    inner.no_truncation()
    inner.no_padding()
    return Window(inner, limit)


def window(model: str, runtime: dict[str, Any] | None = None) -> Window:
    """The tokenizer and window of a fastembed text model (read from its files and cached)."""
    return _window(model, tuple(sorted((runtime or {}).items())))


def cut(model: str, texts: Sequence[str], runtime: dict[str, Any] | None = None
        ) -> tuple[int | None, list[int]]:
    """The model's window and the token counts of ``texts`` longer than it (the model reads
    only their start). (None, []) where the model's tokenizer cannot be had or it reads
    everything: counting what a model cuts must never stop the upsert or search it reports on."""
    try:
        found = window(model, runtime)
    except ModelError:
        return None, []
    return found.tokens, found.beyond(texts)


@functools.lru_cache(maxsize=8)
def _splitter(model: str, runtime: tuple[tuple[str, Any], ...], size: int, overlap: int) -> Any:
    require("semantic_text_splitter", "local")
    from semantic_text_splitter import TextSplitter

    found = _window(model, runtime)
    if found.tokens is not None and size > found.tokens:
        raise ArgumentError(
            f"chunk_size={size} is longer than {model}'s window of {found.tokens} tokens, so each "
            f"passage would be cut again; use chunk_size={found.tokens} or less")
    return TextSplitter.from_huggingface_tokenizer(found.tokenizer, size, overlap)


def splitter(model: str, size: int, overlap: int = 0, runtime: dict[str, Any] | None = None) -> Any:
    """The splitter of passages of ``size`` of the model's tokens (loaded and cached); an
    ArgumentError when ``size`` exceeds the model's window."""
    return _splitter(model, tuple(sorted((runtime or {}).items())), size, overlap)


def spans(text: str, model: str, size: int, overlap: int = 0,
          runtime: dict[str, Any] | None = None) -> list[tuple[int, int]]:
    """Character spans (start, end) of the passages of ``text``: each at most ``size`` of the
    model's tokens, ``overlap`` tokens shared with the one before, split where the text has
    paragraphs, then sentences, then words."""
    chunks = splitter(model, size, overlap, runtime).chunk_indices(text)
    found = [(start, start + len(chunk)) for start, chunk in chunks]
    # a text of whitespace only has no passage; the cell checks refuse it before this
    return found or [(0, len(text))]


def max_passages(dim: int) -> int:
    """The most passages one row may have: a server's cap on the floats of one multivector."""
    return MAX_MATRIX_FLOATS // dim
