"""Vectors for the objects a chunk's changes need: from the cache, embedded here, or the
objects themselves for a server that embeds them. A chunked vector's passages are resolved
as objects of their own (identical passages once) and stacked into one matrix per row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qinb.embed import Embedder, Item
from qinb.errors import QinbError
from qinb.ingest.changes import Change, Changes
from qinb.ingest.plan import Row
from qinb.objects import Passages
from qinb.spec import Spec, Text
from qinb.store import PointId

__all__ = ["Resolved", "resolve"]


@dataclass
class Resolved:
    """Per (point id, vector name) the vector to write; the rows that failed, with the first
    reason, as (row label, column, reason); and per vector the counts of
    :data:`qinb.ingest.report.COUNTS`."""

    vectors: dict[tuple[PointId, str], Any] = field(default_factory=dict)
    failed: dict[PointId, tuple[Hashable, str, str]] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)


def resolve(changes: Changes, specs: Mapping[str, Spec], embedder: Embedder,
            cloud: bool) -> Resolved:
    """Resolve every vector the changes need, vector by vector; a row whose object cannot be
    embedded is failed, and its other vectors are not embedded."""
    out = Resolved()
    for name, spec in specs.items():
        counts = out.counts.setdefault(name, Counter())
        chosen = [c for c in changes.writes if name in c.embed and c.row.id not in out.failed]
        rows = [c.row for c in chosen]
        if isinstance(spec, Text) and spec.chunked:
            counts["local"] = 1  # a server embeds one Document per vector: passages are local
            _passages(embedder, name, spec, chosen, out, counts)
            continue
        items = [c.items[name] for c in chosen]
        plain = [i for i in items if isinstance(i, Item)]
        counts["objects"] += len(plain)
        counts["local"] = int(not cloud)
        if cloud:
            out.vectors.update({(r.id, name): i.obj for r, i in zip(rows, plain, strict=True)})
            continue
        if spec.kind == "text":
            _count_truncated(spec, plain, counts, out.windows, name)
        vectors, reasons = _embed(embedder, name, spec, plain, counts)
        for i, (row, vector) in enumerate(zip(rows, vectors, strict=True)):
            if i in reasons:
                out.failed.setdefault(row.id, (row.label, spec.column, reasons[i]))
            else:
                out.vectors[row.id, name] = vector
    return out


def _passages(embedder: Embedder, name: str, spec: Text, chosen: Sequence[Change],
              out: Resolved, counts: Counter[str]) -> None:
    """Each row's passages embedded as objects of their own, stacked into its matrix."""
    cells: list[tuple[Row, Passages]] = []
    for change in chosen:
        row, cell = change.row, change.items[name]
        assert isinstance(cell, Passages)
        if cell.error:
            out.failed.setdefault(row.id, (row.label, spec.column, cell.error))
        else:
            cells.append((row, cell))
    items = [item for _, cell in cells for item in cell.items]
    counts["objects"] += len(items)
    counts["passages"] += len(items)
    vectors, reasons = _embed(embedder, name, spec, items, counts)
    start = 0
    for row, cell in cells:
        end = start + len(cell.items)
        bad = [reasons[i] for i in range(start, end) if i in reasons]
        if bad:
            out.failed.setdefault(row.id, (row.label, spec.column, f"a passage: {bad[0]}"))
        else:
            out.vectors[row.id, name] = np.vstack(vectors[start:end])
        start = end


def _count_truncated(spec: Spec, items: Sequence[Item], counts: Counter[str],
                     windows: dict[str, int], name: str) -> None:
    """Count the texts longer than the model's window (it reads only their start)."""
    from qinb.passages import cut

    tokens, lengths = cut(spec.model, [str(i.data) for i in items], spec.runtime_options)
    if tokens is None or not items:
        return
    windows[name] = tokens
    counts["truncated"] += len(lengths)
    counts["longest"] = max([counts["longest"], *lengths])


def _embed(embedder: Embedder, name: str, spec: Spec, items: list[Item], counts: Counter[str]
           ) -> tuple[list[Any], dict[int, str]]:
    """Vectors for the items (None where one cannot be embedded) and the reason for each such
    item, by position."""
    vectors: list[Any] = []
    reasons: dict[int, str] = {}

    def run(start: int, part: list[Item]) -> None:
        try:
            made, fresh, cached = embedder.resolve(part, runtime=spec.runtime_options,
                                                   desc=f"embedding {name!r}")
        except QinbError:
            raise
        except Exception as exc:
            if len(part) == 1:
                vectors.append(None)
                reasons[start] = f"{spec.model} cannot embed it ({type(exc).__name__}: {exc})"
                return
            # halve until the failing objects are found; the others still get their vectors
            half = len(part) // 2
            run(start, part[:half])
            run(start + half, part[half:])
            return
        vectors.extend(made)
        counts["embedded"] += fresh
        counts["cached"] += cached

    if items:
        run(0, items)
    return vectors, reasons
