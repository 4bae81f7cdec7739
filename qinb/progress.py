"""Progress bars that suit where the output goes: a widget in a notebook, a bar in a terminal,
and plain lines in a log file or a pipe, where a bar's carriage returns and cursor moves would
come out as lines of escape codes. Imported where a bar is made, never by ``import qinb``."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm as std_tqdm
from tqdm.auto import tqdm

__all__ = ["LINE_EVERY", "progress_bar"]

LINE_EVERY = 15.0  # seconds between the lines of a bar written to a file


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar (the same arguments) for where this process's output goes."""
    if _plain():
        return _Lines(iterable, **{"mininterval": LINE_EVERY, **kwargs})
    return tqdm(iterable, **kwargs)


def _plain() -> bool:
    """Whether progress goes to a file or a pipe: neither a terminal nor a Jupyter kernel
    (whose output stream is no terminal either, and shows tqdm.auto's widget)."""
    stream = sys.stderr
    if type(stream).__module__.split(".")[0] == "ipykernel":
        return False
    return not (hasattr(stream, "isatty") and stream.isatty())


class _Discard:
    """Where tqdm's own writes go (a carriage return, the newline after a bar): nowhere."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _Lines(std_tqdm):  # type: ignore[misc]
    """A bar written as whole lines, one every ``mininterval`` seconds and one at the end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.out = kwargs.get("file") or sys.stderr
        super().__init__(*args, **{**kwargs, "file": _Discard()})

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        self.out.write((msg or self.__str__()).strip() + "\n")
        self.out.flush()
        return True
