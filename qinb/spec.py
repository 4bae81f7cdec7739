"""Vector specs: which column becomes which named vector, with which model.

A spec gives the collection schema (dense size from the model's description, BM25 as a sparse
vector with ``modifier=IDF``), makes one ``models.Document`` per cell, and is saved in the
collection metadata so that a search configures itself from the collection alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import models

from qinb import models as registry
from qinb.errors import ArgumentError, CollectionError, QueryError

__all__ = ["Bm25", "Image", "Spec", "Text", "missing_secrets", "public", "scrub_metadata",
           "specs_from_metadata", "specs_to_metadata"]

METADATA_KEY = "qinb"
METADATA_VERSION = 1
QUANTIZATIONS = (None, "int8", "binary")


def _check_hnsw(hnsw: Mapping[str, Any] | None, chunk_size: int | None) -> None:
    if hnsw is None:
        return
    if not isinstance(hnsw, Mapping) or set(hnsw) - {"m", "ef_construct"}:
        raise ArgumentError(f"hnsw takes a dict of m and ef_construct, for example "
                            f"{{'m': 32, 'ef_construct': 200}}; not {hnsw!r}")
    for key, least in (("m", 0), ("ef_construct", 4)):
        value = hnsw.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ArgumentError(f"hnsw {key} must be a whole number, at least {least}, "
                                f"not {value!r}")
    if chunk_size is not None:
        raise ArgumentError("hnsw= and chunk_size= cannot go together: passages are searched "
                            "without a graph (a graph on them finds a third of the true top 10)")


def public(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options without credentials: what is saved, shown and compared."""
    return {k: v for k, v in options.items() if not registry.is_secret(k)}


def _repr(spec: Any, fields: Mapping[str, Any]) -> str:
    """A spec's repr with credentials masked: reprs end up in saved notebooks."""
    shown = dict(fields)
    if spec.options:
        shown["options"] = {k: "***" if registry.is_secret(k) else v
                            for k, v in spec.options.items()}
    return f"{type(spec).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _split_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split options into (model options, runtime options that stay on this machine)."""
    model_opts: dict[str, Any] = {}
    runtime: dict[str, Any] = {}
    for key, value in (options or {}).items():
        (runtime if key in registry.RUNTIME_OPTIONS else model_opts)[key] = value
    return model_opts, runtime


@dataclass(frozen=True, repr=False)
class Text:
    """A dense text vector: each cell of ``column`` embedded by ``model``.

    Parameters
    ----------
    column : str
        DataFrame column holding the text.
    model : str
        A fastembed text model; its size sets the vector size.
    query_model : str, optional
        Model for queries when it differs from ``model`` (it must give the same size).
    options : dict, optional
        Model options sent with each ``models.Document``; fastembed runtime options
        (``cache_dir``, ``threads``, ``specific_model_path``...) stay local. Credentials
        (options named like ``*api-key``, ``*token``, ``*secret``) go only to the server call
        that needs them: they are never saved with the collection or shown, and a search asks
        for them again (``secrets=`` or the ``QINB_<OPTION>`` environment variable).
    chunk_size : int, optional
        Split each cell into passages of at most this many of the model's own tokens, on
        natural boundaries (paragraphs, sentences, words), and store a row's passages as one
        multivector: every word of a long text is searchable, a hit is still a row, and
        search results show the passage that matched. Without it, a text longer than the
        model's window (512 tokens for all-MiniLM-L6-v2) is cut there by the model, and the
        upsert warns how many rows were.
    chunk_overlap : int
        Tokens each passage shares with the one before it (with ``chunk_size``).
    on_disk : bool
        Keep the full vectors in memory-mapped files rather than in RAM (the engine reads
        them from the page cache): for collections bigger than the memory to spare.
    quantization : {None, "int8", "binary"}
        Also keep a compact copy of each vector in RAM (``"int8"``: 4x smaller, ``"binary"``:
        32x, for models of 512 dimensions or more) that searches run on; the best candidates
        are then rescored with the full vectors. With ``on_disk=True``, the way to a million
        rows in little memory. Both are set when the vector is created.
    hnsw : dict, optional
        The HNSW graph a search of this vector runs on, as Qdrant takes it: ``m`` (links per
        point; Qdrant's default 16; more finds more and takes more memory, ``0`` builds no
        graph, so searches scan, which the int8 copy makes cheap) and ``ef_construct``
        (candidates weighed while building; default 100; more builds a better graph, slower).
        Set when the vector is created. Passages (``chunk_size``) have no graph: a graph on
        them found a third of the true top 10 (``bench/multivector_hnsw.py``).

    Examples
    --------
    >>> qinb.Text("description", model="sentence-transformers/all-MiniLM-L6-v2")
    >>> qinb.Text("body", chunk_size=256, chunk_overlap=32)      # long documents
    >>> qinb.Text("body", on_disk=True, quantization="int8")      # millions of rows
    >>> qinb.Text("body", hnsw={"m": 32, "ef_construct": 200})    # a denser graph
    """

    column: str
    model: str = registry.MINILM
    query_model: str | None = None
    options: Mapping[str, Any] | None = field(default=None, compare=False)
    chunk_size: int | None = None
    chunk_overlap: int = 0
    on_disk: bool = False
    quantization: str | None = None
    hnsw: Mapping[str, int] | None = field(default=None, compare=False)

    kind = "text"

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ArgumentError(f"quantization must be one of {', '.join(map(repr, QUANTIZATIONS))}, "
                                f"not {self.quantization!r}")
        if not isinstance(self.on_disk, bool):
            raise ArgumentError(f"on_disk must be True or False, not {self.on_disk!r}")
        _check_hnsw(self.hnsw, self.chunk_size)
        size, overlap = self.chunk_size, self.chunk_overlap
        if size is None:
            if overlap:
                raise ArgumentError("chunk_overlap= needs chunk_size= (the passage length in tokens)")
            return
        if self.kind == "image":
            raise ArgumentError("chunk_size= splits long texts; an Image vector has none to split")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ArgumentError(f"chunk_size must be a whole number of tokens, at least 8, not {size!r}")
        if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
            raise ArgumentError(f"chunk_overlap must be a whole number of tokens from 0 to "
                                f"chunk_size - 1 ({size - 1}), not {overlap!r}")

    @property
    def chunked(self) -> bool:
        """Whether each cell becomes passages (a multivector) rather than one vector."""
        return self.chunk_size is not None

    @property
    def model_options(self) -> dict[str, Any]:
        return _split_options(self.options)[0]

    @property
    def runtime_options(self) -> dict[str, Any]:
        return _split_options(self.options)[1]

    def __repr__(self) -> str:
        shown: dict[str, Any] = {"column": self.column, "model": self.model,
                                 "query_model": self.query_model}
        if self.chunk_size is not None:
            shown.update(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
        shown.update(self.storage())
        return _repr(self, shown)

    def storage(self) -> dict[str, Any]:
        """How the vector is kept and indexed, where that differs from Qdrant's defaults (in
        RAM, full precision, a graph of m=16, ef_construct=100)."""
        return {**({"on_disk": True} if self.on_disk else {}),
                **({"quantization": self.quantization} if self.quantization else {}),
                **({"hnsw": dict(sorted(self.hnsw.items()))} if self.hnsw else {})}

    @property
    def size(self) -> int:
        return registry.describe(self.model).dim

    def document(self, text: str, *, query: bool = False) -> models.Document:
        """The inference object for ``text``, as a Qdrant server would receive it."""
        model = (self.query_model or self.model) if query else self.model
        return models.Document(text=text, model=model, options=self.model_options or None)

    def vector_params(self) -> models.VectorParams:
        if self.query_model and registry.describe(self.query_model).dim != self.size:
            raise QueryError(
                f"query model {self.query_model!r} gives {registry.describe(self.query_model).dim}-d "
                f"vectors but {self.model!r} gives {self.size}-d; pick models of the same size"
            )
        return models.VectorParams(size=self.size, distance=models.Distance.COSINE)

    def to_dict(self) -> dict[str, Any]:
        chunks = ({"chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap}
                  if self.chunk_size is not None else {})
        return {
            "kind": self.kind,
            "column": self.column,
            "model": self.model,
            "query_model": self.query_model,
            "options": public(self.model_options),
            "secrets": sorted(set(self.model_options) - set(public(self.model_options))),
            "size": self.size,
            **chunks,
            **self.storage(),
        }


@dataclass(frozen=True, repr=False)
class Image(Text):
    """A dense image vector: each image cell of ``column`` embedded by a vision model.

    Cells may be paths, http(s) URLs, PIL images, bytes or base64. Text queries are embedded by
    ``query_model`` into the same space (text-to-image search).

    Examples
    --------
    >>> qinb.Image("photo", model="Qdrant/clip-ViT-B-32-vision",
    ...            query_model="Qdrant/clip-ViT-B-32-text")
    """

    model: str = registry.CLIP_VISION
    query_model: str | None = registry.CLIP_TEXT

    kind = "image"

    def image_object(self, image: str) -> models.Image:
        """The inference object for one image (a URL, base64, or a local reference)."""
        return models.Image(image=image, model=self.model, options=self.model_options or None)


@dataclass(frozen=True, repr=False)
class Bm25:
    """A sparse BM25 vector of ``column`` (Qdrant's ``qdrant/bm25``, IDF applied by the engine).

    Parameters
    ----------
    column : str
        DataFrame column holding the text.
    language : str
        Stopwords and stemmer language, as Qdrant's ``Bm25Config`` takes it.
    avg_len : float or "auto", optional
        The average document length (in tokens) BM25 normalises by; Qdrant assumes 256.
        ``"auto"`` measures it on the texts of the upsert that creates the collection and saves
        the number with the specs, so later upserts and queries agree.
    options : dict, optional
        Other ``Bm25Config`` fields: ``k``, ``b``, ``lowercase``...
    on_disk : bool
        Keep the inverted index memory-mapped on disk instead of in RAM, once the upsert ends
        (opening a collection of 300k short texts took 42 MB with it in RAM, 14 MB with it
        memory-mapped; see the README's "Tables bigger than memory").

    Examples
    --------
    >>> qinb.Bm25("description", language="english", avg_len="auto")
    >>> qinb.Bm25("description", on_disk=True)
    """

    column: str
    language: str = "english"
    avg_len: float | str | None = None
    options: Mapping[str, Any] | None = field(default=None, compare=False)
    on_disk: bool = False

    kind = "bm25"
    model = registry.BM25_MODEL
    query_model = None
    size = None
    chunk_size = None  # BM25 reads whole texts: nothing is cut
    chunked = False
    quantization = None

    def storage(self) -> dict[str, Any]:
        """Where the inverted index is kept, where that differs from Qdrant's default (RAM)."""
        return {"on_disk": True} if self.on_disk else {}

    def __post_init__(self) -> None:
        if not isinstance(self.on_disk, bool):
            raise ArgumentError(f"on_disk must be True or False, not {self.on_disk!r}")
        fine = self.avg_len in (None, "auto") or (
            isinstance(self.avg_len, (int, float)) and self.avg_len > 0)
        if not fine:
            raise ArgumentError(f"avg_len must be a positive number of tokens or 'auto', "
                                f"not {self.avg_len!r}")

    @property
    def model_options(self) -> dict[str, Any]:
        fitted = {} if self.avg_len in (None, "auto") else {"avg_len": float(self.avg_len or 0)}
        return {"language": self.language, **_split_options(self.options)[0], **fitted}

    @property
    def runtime_options(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        shown: dict[str, Any] = {"column": self.column, "language": self.language}
        if self.avg_len is not None:
            shown["avg_len"] = self.avg_len
        shown.update(self.storage())
        return _repr(self, shown)

    def document(self, text: str, *, query: bool = False) -> models.Document:
        """The inference object for ``text``, as a Qdrant server would receive it."""
        return models.Document(text=text, model=self.model, options=self.model_options)

    def measure(self, texts: list[str], sample: int = 10_000) -> float:
        """The average length in tokens, after this spec's tokenizer, stemmer and stopwords, of
        ``texts`` (an even sample of them above ``sample``)."""
        step = max(1, len(texts) // sample)
        chosen = texts[::step]
        if not chosen:
            return 256.0  # Qdrant's own assumption, for a frame with no text
        # with b=0 a term's weight is tf*(k+1)/(tf+k), whatever the length: solve it for tf
        options = {k: v for k, v in self.model_options.items() if k != "avg_len"}
        k = float(options.get("k", 1.2))
        model = registry.bm25_model(tuple(sorted({**options, "b": 0.0}.items())))
        lengths = []
        for text in chosen:
            weights = model.embed_document(text).values
            lengths.append(sum(round(w * k / (k + 1 - w)) for w in weights))
        return float(round(max(sum(lengths) / len(lengths), 1.0), 2))

    def sparse_params(self) -> models.SparseVectorParams:
        return models.SparseVectorParams(modifier=models.Modifier.IDF)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.column, "model": self.model,
                "options": public(self.model_options),
                "secrets": sorted(set(self.model_options) - set(public(self.model_options))),
                **self.storage()}


Spec = Text | Image | Bm25


def specs_to_metadata(specs: Mapping[str, Spec], id_column: str | None) -> dict[str, Any]:
    """The collection metadata that lets search rebuild the specs."""
    return {
        METADATA_KEY: {
            "version": METADATA_VERSION,
            "vectors": {name: spec.to_dict() for name, spec in specs.items()},
            "id_column": id_column,
        }
    }


def specs_from_metadata(collection: str, metadata: Mapping[str, Any] | None,
                        secrets: Mapping[str, str] | None = None) -> dict[str, Spec]:
    """Rebuild the specs saved by qinb in a collection's metadata.

    Credentials are not saved: each comes from ``secrets`` or its ``QINB_<OPTION>`` environment
    variable, else its option is None (a server that needs it is then not asked).
    """
    saved = (metadata or {}).get(METADATA_KEY)
    if not saved:
        raise CollectionError(
            f"collection {collection!r} carries no qinb specs (it was not written by qinb); "
            "pass a vector to query it with qdrant-client directly, or rebuild it with df.qdrant.upsert"
        )
    specs: dict[str, Spec] = {}
    for name, d in saved["vectors"].items():
        options = public(d.get("options") or {})
        for key in d.get("secrets") or []:
            options[key] = (secrets or {}).get(key) or os.environ.get(registry.secret_variable(key))
        if d["kind"] in ("text", "image"):
            cls = Image if d["kind"] == "image" else Text
            specs[name] = cls(d["column"], model=d["model"], query_model=d.get("query_model"),
                               options=options or None, chunk_size=d.get("chunk_size"),
                               chunk_overlap=d.get("chunk_overlap") or 0,
                               on_disk=bool(d.get("on_disk")), quantization=d.get("quantization"),
                               hnsw=d.get("hnsw"))
        elif d["kind"] == "bm25":
            language = options.pop("language", "english")
            avg_len = options.pop("avg_len", None)
            specs[name] = Bm25(d["column"], language=language, avg_len=avg_len,
                               options=options or None, on_disk=bool(d.get("on_disk")))
        else:
            raise CollectionError(
                f"collection {collection!r} has a {d['kind']!r} vector {name!r} that this "
                "version of qinb does not know; upgrade qinb"
            )
    return specs


def scrub_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Collection metadata without credentials (an older qinb saved them with the options):
    their names move to ``secrets``, their values are dropped."""
    saved = metadata.get(METADATA_KEY)
    if not isinstance(saved, Mapping):
        return dict(metadata)
    vectors = {}
    for name, d in (saved.get("vectors") or {}).items():
        options = d.get("options") or {}
        hidden = sorted({*(d.get("secrets") or []), *(set(options) - set(public(options)))})
        vectors[name] = {**d, "options": public(options), **({"secrets": hidden} if hidden else {})}
    return {**metadata, METADATA_KEY: {**saved, "vectors": vectors}}


def missing_secrets(spec: Spec) -> list[str]:
    """The credential options of ``spec`` that no argument or environment variable gave."""
    return [k for k, v in spec.model_options.items() if registry.is_secret(k) and v is None]
