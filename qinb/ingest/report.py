"""What an upsert did: the counts each stage hands back, folded into one :class:`UpsertReport`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from qinb.errors import warn
from qinb.ingest.plan import failed_frame

__all__ = ["COUNTS", "UpsertReport", "warn_truncated"]

# per named vector: objects needed, embedded here, from the cache, passages of chunked rows,
# rows past the model's window (unchunked), and the longest of those in tokens
COUNTS = ("objects", "embedded", "cached", "passages", "truncated", "longest")


@dataclass
class UpsertReport:
    """What an upsert did.

    Attributes
    ----------
    rows : int
        Rows in the DataFrame.
    upserted : int
        Points written: new rows, and rows whose text, image or payload changed.
    unchanged : int
        Rows skipped because the stored point has the same content.
    payload_only : int
        Of the upserted, rows where only the payload changed: written without any inference.
    objects : int
        Inference objects the written points needed (one per row and named vector whose
        object is new or changed; one per passage for a chunked vector).
    embedded : int
        Distinct objects actually embedded here (0 when the server embeds them).
    cached : int
        Distinct objects whose vectors came from the persistent embedding cache.
    shared : int
        Objects needed more than once in this upsert (identical cells or passages), embedded
        once: ``embedded + cached + shared == objects`` when embedding here.
    passages : int
        Passages of the rows written for chunked vectors (``chunk_size=``).
    truncated : int
        Rows whose text is longer than its model's window, for vectors without ``chunk_size``:
        the model reads only the start of these (a ``QinbWarning`` says so).
    failed : DataFrame
        One row per problem: ``row`` (index label), ``column``, ``reason``. A row may have
        several problems.
    failed_rows : int
        Rows not stored because of a problem; ``upserted + unchanged + failed_rows == rows``.
    deleted : int
        With ``delete_missing=True``: points deleted because their ids are not in the source,
        so that the collection holds ``rows`` points (fewer by failed rows never stored).
    avg_len : dict of str to float
        The length each ``Bm25(avg_len="auto")`` vector uses: measured on the rows when it is
        created, the saved one after.
    vectors : DataFrame
        Per named vector: ``objects``, ``embedded``, ``cached``, ``passages``, ``truncated``
        and ``longest`` (tokens of the longest truncated text).
    """

    collection: str
    rows: int = 0
    upserted: int = 0
    unchanged: int = 0
    payload_only: int = 0
    objects: int = 0
    embedded: int = 0
    cached: int = 0
    failed: pd.DataFrame = field(default_factory=lambda: failed_frame([]))
    vectors: pd.DataFrame = field(default_factory=pd.DataFrame)
    created: bool = False
    failed_rows: int = 0
    deleted: int = 0
    passages: int = 0
    truncated: int = 0
    shared: int = 0
    windows: dict[str, int] = field(default_factory=dict, repr=False)
    avg_len: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"{'created' if self.created else 'updated'} collection {self.collection!r}: "
            f"{self.rows} rows, {self.upserted} upserted"
            f"{f' ({self.payload_only} payload only)' if self.payload_only else ''}, "
            f"{self.unchanged} unchanged, {self.failed_rows} failed"
            + (f"; {self.deleted} deleted (not in the source)" if self.deleted else ""),
            f"inference objects: {self.objects} needed, {self.embedded} embedded, "
            f"{self.cached} from the cache"
            + (f", {self.shared} shared by identical cells" if self.shared else ""),
        ]
        for fitted, length in self.avg_len.items():
            lines.append(f"vector {fitted!r}: BM25 avg_len {length:.1f} tokens (fitted)")
        if self.passages:
            lines.append(f"passages: {self.passages} (chunked vectors: "
                         f"{', '.join(self._chunked())})")
        for name, row in self._truncated().iterrows():
            lines.append(f"vector {name!r}: {int(row['truncated'])} texts longer than the model's "
                         f"window of {self.windows.get(str(name), '?')} tokens (longest "
                         f"{int(row['longest'])}) were cut; chunk_size= keeps the rest")
        if len(self.failed):
            with pd.option_context("display.max_colwidth", 160):
                lines.append(self.failed.head(10).to_string(index=False))
        # a bad label or cell may hold a lone surrogate, which no output stream can encode
        return "\n".join(lines).encode("utf-8", "backslashreplace").decode("utf-8")

    def _chunked(self) -> list[str]:
        if "passages" not in self.vectors:
            return []
        return [str(n) for n, v in self.vectors["passages"].items() if v]

    def _truncated(self) -> pd.DataFrame:
        if "truncated" not in self.vectors:
            return pd.DataFrame()
        return self.vectors[self.vectors["truncated"] > 0]

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"

    def add_counts(self, table: dict[str, Counter[str]]) -> None:
        """Fold the per-vector counts of the stages into the report (``local`` marks the
        vectors embedded here rather than by a server)."""
        self.vectors = pd.DataFrame.from_dict(
            {n: {k: int(c[k]) for k in COUNTS} for n, c in table.items()}, orient="index"
        ).rename_axis("vector")
        totals = self.vectors.sum() if len(self.vectors) else pd.Series(0, index=list(COUNTS))
        self.objects, self.embedded = int(totals["objects"]), int(totals["embedded"])
        self.cached, self.passages = int(totals["cached"]), int(totals["passages"])
        self.truncated = int(totals["truncated"])
        self.shared = sum(c["objects"] - c["embedded"] - c["cached"] for c in table.values()
                          if c["local"])


def warn_truncated(report: UpsertReport) -> None:
    """One warning per upsert naming the vectors whose texts the model cut at its window."""
    cut = report._truncated()
    if not len(cut):
        return
    parts = [f"{int(r['truncated'])} rows of {name!r} (longest {int(r['longest'])} tokens, window "
             f"{report.windows.get(str(name), '?')})" for name, r in cut.iterrows()]
    warn(
        f"texts longer than the model's window were cut, and their ends are invisible to dense "
        f"search: {'; '.join(parts)}. Pass chunk_size= to the qinb.Text spec (for example "
        "qinb.Text(column, chunk_size=256, chunk_overlap=32)) to search every word; "
        "report.vectors has the counts")
