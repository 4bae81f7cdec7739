"""Image cells and queries: paths, URLs, PIL images, bytes or base64, each normalised once.

Every image is read into memory once, checked with Pillow (corrupt files and decompression
bombs are refused) and identified by the sha256 of its bytes, so the same picture behind two
paths is embedded once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ImageCell", "ImageCellError", "load", "thumbnail_column"]

URL_TIMEOUT = 10.0
MAX_BYTES = 20 * 1024 * 1024
# Qdrant's request limit is 32 MB; one base64 image stays well below it
MAX_WIRE_BYTES = 8 * 1024 * 1024
THUMBNAIL_SIZE = 128
THUMBNAIL_SUFFIX = "_thumbnail"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class ImageCellError(ValueError):
    """A cell that is not a usable image; the message is the reason shown to the user."""


@dataclass(frozen=True)
class ImageCell:
    """One image's bytes, where it came from, and the sha256 that identifies it."""

    data: bytes
    source: str  # path or URL; "<bytes>" or "<PIL image>" for in-memory images
    url: str | None
    digest: str

    def pil(self) -> Any:
        from PIL import Image

        return Image.open(io.BytesIO(self.data))

    def wire(self) -> str:
        """What a server gets: the URL as it is, otherwise base64 (downscaled if very large)."""
        if self.url is not None:
            return self.url
        data = self.data
        if len(data) > MAX_WIRE_BYTES:
            data = _jpeg(self.pil(), 2048)
        return base64.b64encode(data).decode()

    def thumbnail(self, size: int = THUMBNAIL_SIZE) -> str | None:
        """A small JPEG as a data URI, for payloads and hit cards (None for an unfetched URL)."""
        if not self.data:
            return None
        return "data:image/jpeg;base64," + base64.b64encode(_jpeg(self.pil(), size)).decode()


def thumbnail_column(column: str) -> str:
    """The payload key of an image column's stored thumbnail."""
    return f"{column}{THUMBNAIL_SUFFIX}"


def _jpeg(image: Any, size: int) -> bytes:
    image = image.convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _check(data: bytes) -> None:
    """Raise ImageCellError unless Pillow can fully decode ``data`` within its pixel limit."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageCellError(f"image too large (decompression bomb guard): {exc}") from None
        except Exception as exc:
            raise ImageCellError(f"not a readable image ({type(exc).__name__}: {exc})") from None


def _fetch(url: str) -> bytes:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=URL_TIMEOUT, follow_redirects=True) as response:
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ImageCellError(f"URL {url} is larger than {MAX_BYTES // 2**20} MB")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise ImageCellError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None


def _from_base64(text: str) -> bytes | None:
    body = text.split(",", 1)[1] if text.startswith("data:") else text
    if len(body) < 64 or not re.fullmatch(r"[A-Za-z0-9+/=\s]+", body[:4096]):
        return None
    try:
        return base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        return None


def load(value: Any, *, fetch: bool = True) -> ImageCell:
    """Normalise one image cell or query; raise ImageCellError with a reason on a bad one.

    With ``fetch=False`` an http(s) URL is kept as it is, for a server to fetch.
    """
    from qdrant_client import models

    url = None
    if isinstance(value, models.Image):
        value = value.image
    if is_pil(value):
        out = io.BytesIO()
        value.save(out, format="PNG")
        data, source = out.getvalue(), "<PIL image>"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data, source = bytes(value), "<bytes>"
    elif isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        scheme = _SCHEME.match(text) if isinstance(text, str) else None
        decoded = _from_base64(text) if isinstance(value, str) and not scheme else None
        if scheme and scheme.group(1).lower() in ("http", "https"):
            if not fetch:
                return ImageCell(b"", text, text, hashlib.sha256(text.encode()).hexdigest())
            data, source, url = _fetch(text), text, text
        elif scheme:
            raise ImageCellError(
                f"unsupported URL scheme {scheme.group(1)!r} in {text!r}: use http(s), a path, "
                "bytes or a PIL image")
        elif decoded is not None and (text.startswith("data:") or not Path(text).exists()):
            data, source = decoded, "<base64>"
        else:
            path = Path(text).expanduser()
            if not path.is_file():
                raise ImageCellError(f"file not found: {path}")
            data, source = path.read_bytes(), str(path)
    else:
        raise ImageCellError(
            f"not an image: {type(value).__name__}; use a path, URL, PIL image, bytes or base64")
    if len(data) > MAX_BYTES:
        raise ImageCellError(f"image of {len(data) // 2**20} MB is larger than {MAX_BYTES // 2**20} MB")
    _check(data)
    return ImageCell(data, source, url, hashlib.sha256(data).hexdigest())


def is_pil(value: Any) -> bool:
    """Whether ``value`` is a PIL image, without importing PIL (none exists unless it was)."""
    image = sys.modules.get("PIL.Image")
    return image is not None and isinstance(value, image.Image)
