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
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ImageCell", "ImageCellError", "is_url", "load", "load_urls", "thumbnail_column"]

URL_TIMEOUT = 10.0  # seconds between two reads
URL_DEADLINE = 30.0  # seconds for a whole URL, however slowly it trickles
URL_WORKERS = 8  # URLs fetched at once
MAX_BYTES = 20 * 1024 * 1024
# image models scale the short side to ~224 pixels: a 20000x2 image would become 2.2 million
# pixels wide and take gigabytes, so long thin images are refused
MAX_ASPECT = 20
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
    """Raise ImageCellError unless Pillow can fully decode ``data`` within its pixel limit, and
    its shape is one an image model can resize without a blow-up."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                _check_size(*image.size)
                image.load()
        except ImageCellError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageCellError(f"image too large (decompression bomb guard): {exc}") from None
        except UnidentifiedImageError:
            raise ImageCellError("not an image: Pillow knows no image format in these bytes"
                                 ) from None
        except Exception as exc:
            raise ImageCellError(f"not a readable image ({type(exc).__name__}: {exc})") from None


def _check_size(width: int, height: int) -> None:
    if not width or not height:
        raise ImageCellError(f"empty image ({width}x{height} pixels)")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageCellError(
            f"image of {width}x{height} pixels is too long and thin: an image model scales its "
            f"short side up to ~224 pixels, which would take gigabytes; crop or pad it to an "
            f"aspect ratio under {MAX_ASPECT}:1")


def _fetch(url: str) -> bytes:
    import httpx

    deadline = time.monotonic() + URL_DEADLINE
    try:
        with httpx.stream("GET", url, timeout=URL_TIMEOUT, follow_redirects=True) as response:
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ImageCellError(f"URL {url} is larger than {MAX_BYTES // 2**20} MB")
                if time.monotonic() > deadline:
                    raise ImageCellError(f"URL {url} took longer than {URL_DEADLINE:.0f} s")
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
        data, source = _png(value), "<PIL image>"
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
        elif decoded is not None and (text.startswith("data:") or not _exists(text)):
            data, source = decoded, "<base64>"
            if not text.startswith("data:") and not _known_format(data):
                raise ImageCellError(f"a text of {len(text)} characters is not a path, URL or "
                                     "base64 image")
        else:
            data, source = _read_file(text)
    else:
        raise ImageCellError(
            f"not an image: {type(value).__name__}; use a path, URL, PIL image, bytes or base64")
    if len(data) > MAX_BYTES:
        raise ImageCellError(f"image of {len(data) // 2**20} MB is larger than {MAX_BYTES // 2**20} MB")
    _check(data)
    return ImageCell(data, source, url, hashlib.sha256(data).hexdigest())


def _png(image: Any) -> bytes:
    """An in-memory PIL image as PNG bytes; modes PNG cannot hold (CMYK, F...) become RGB."""
    _check_size(*image.size)
    if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        try:
            image = image.convert("RGB")
        except Exception as exc:
            raise ImageCellError(f"a PIL image in mode {image.mode} that cannot become RGB "
                                 f"({type(exc).__name__}: {exc})") from None
    out = io.BytesIO()
    try:
        image.save(out, format="PNG")
    except Exception as exc:
        raise ImageCellError(f"a PIL image that cannot be saved ({type(exc).__name__}: {exc})"
                             ) from None
    return out.getvalue()


def _read_file(text: str) -> tuple[bytes, str]:
    path = Path(text).expanduser()
    try:
        if not path.is_file():
            raise ImageCellError(f"file not found: {_short(text)}")
        return path.read_bytes(), str(path)
    except OSError as exc:
        # a long text is no path: say what it is instead of "File name too long"
        what = (f"a text of {len(text)} characters is not a path, URL or base64 image"
                if len(text) > 255 else f"cannot read {path}: {exc.strerror or exc}")
        raise ImageCellError(what) from None


def _known_format(data: bytes) -> bool:
    """Whether Pillow recognises an image format in ``data`` (without decoding it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False
    except Exception:  # the full check after this says what is wrong
        return True


def _exists(text: str) -> bool:
    try:
        return Path(text).exists()
    except OSError:  # a name too long for the file system is no file
        return False


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else f"{text[:width - 20]}…{text[-19:]}"


def load_urls(urls: list[str]) -> dict[str, ImageCell | ImageCellError]:
    """Fetch several http(s) URLs at once (at most ``URL_WORKERS``), each under the same
    rules as :func:`load`; a failure is returned as its ImageCellError."""
    from concurrent.futures import ThreadPoolExecutor

    def one(url: str) -> ImageCell | ImageCellError:
        try:
            return load(url)
        except ImageCellError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=URL_WORKERS, thread_name_prefix="qinb-fetch") as pool:
        return dict(zip(urls, pool.map(one, urls), strict=True))


def is_url(value: Any) -> bool:
    """Whether a cell is an http(s) URL."""
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))


def is_pil(value: Any) -> bool:
    """Whether ``value`` is a PIL image, without importing PIL (none exists unless it was)."""
    image = sys.modules.get("PIL.Image")
    return image is not None and isinstance(value, image.Image)
