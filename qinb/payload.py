"""DataFrame cells to payload values, by one conversion table.

Every value becomes JSON the same way in every process, so a payload's hash is stable and a
re-run skips what is stored. A value with no entry in the table fails its row (with a reason in
``report.failed``) instead of being stored as something else.

==========================================================  ==================================
cell                                                        stored as
==========================================================  ==================================
None, NaN, NaT, ``pd.NA``, infinities                       null
bool, ``np.bool_``                                          bool
int, ``np.integer`` (signed 64-bit)                         int (larger: text of its digits)
float, ``np.floating``                                      float
``Decimal``                                                 as an int if whole, else float
str                                                         str (invalid Unicode fails the row)
datetime, date, time, ``pd.Timestamp``, ``np.datetime64``   ISO 8601 text
timedelta, ``pd.Timedelta``, ``np.timedelta64``             seconds, as a float
bytes                                                       hex text
list, tuple, ``np.ndarray``, ``pd.Series``                  list (each item by this table)
set, frozenset                                              list, sorted
dict                                                        object with text keys
PIL image                                                   a 128 px JPEG data URI
anything else                                               fails the row
==========================================================  ==================================

Qdrant Edge keeps a float to within one unit in its last place: about one float in ten that
needs all 17 significant digits comes back with the 17th changed (relative error < 3e-16).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RESERVED_PREFIX", "PayloadValueError", "check_text", "convert"]

RESERVED_PREFIX = "_qinb"
INT64 = 2**63
MAX_DEPTH = 32


class PayloadValueError(ValueError):
    """A value the conversion table has no entry for; the message is the reason shown."""


def check_text(text: str) -> str | None:
    """Why ``text`` cannot be stored or embedded (a lone surrogate), or None if it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"text is not valid Unicode (a lone surrogate {text[exc.start]!r} at position "
                f"{exc.start}); fix or drop that character")
    return None


def convert(value: Any, depth: int = 0) -> Any:
    """The JSON value ``value`` is stored as (see the table above); PayloadValueError if none."""
    if depth > MAX_DEPTH:
        raise PayloadValueError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        reason = check_text(value)
        if reason:
            raise PayloadValueError(reason)
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        number = int(value)
        return number if -INT64 <= number < INT64 else str(number)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value():
            return convert(int(value))  # past 64 bits: the text of its digits, as for an int
        fraction = float(value)
        return None if math.isinf(fraction) else fraction
    if isinstance(value, (dt.timedelta, np.timedelta64)):  # pd.Timedelta is a timedelta
        seconds = pd.Timedelta(value).total_seconds()
        return None if math.isnan(seconds) else float(seconds)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
        return None if value is pd.NaT else value.isoformat()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):  # pd.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(convert(key, depth + 1))
            if name in out:
                raise PayloadValueError(f"two keys of a dict are both {name!r} as text")
            out[name] = convert(item, depth + 1)
        return out
    if isinstance(value, (set, frozenset)):
        items = [convert(v, depth + 1) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple, np.ndarray, pd.Series, pd.Index)):
        return [convert(v, depth + 1) for v in value]
    if _is_pil(value):
        return _pil_thumbnail(value)
    raise PayloadValueError(
        f"cannot store a {type(value).__name__} in a payload; convert the column to text or "
        "numbers first (for example df[column].astype(str))")


def _is_pil(value: Any) -> bool:
    from qinb.images import is_pil

    return is_pil(value)


def _pil_thumbnail(image: Any) -> str:
    from qinb.images import ImageCellError, load

    try:
        thumbnail = load(image).thumbnail()
    except ImageCellError as exc:
        raise PayloadValueError(f"a PIL image that cannot be stored: {exc}") from None
    assert thumbnail is not None  # an in-memory image always has bytes
    return thumbnail
