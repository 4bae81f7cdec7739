"""What the search widget shows, as pure functions: hit cards as escaped HTML, payload facets
and the filter they make. No ipywidgets here, so other front ends and the tests share them."""

from __future__ import annotations

import functools
import html
import re
import textwrap
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from qinb._evaluate import Judged, judged_hits
from qinb._search import PASSAGE_COLUMNS, SCORE_PREFIX
from qinb.errors import QinbError
from qinb.images import THUMBNAIL_SUFFIX, thumbnail_column
from qinb.spec import Spec
from qinb.store import Store, sample_payloads

__all__ = ["Facet", "card_html", "detail_html", "facet_filter", "facets", "highlight", "middle",
           "passages_html", "score_columns", "status_html"]

MAX_CHOICES = 20
MAX_TEXT_CHOICE = 80  # longer texts are prose, not a field to filter on
MAX_TYPED = 10_000  # values a type-ahead filter offers
SHOWN_FIELDS = 3  # payload fields on a hit card
CARD_CSS = """<style>
.qinb-weak{color:#a15c00;margin-top:2px}
.qinb-card{border:1px solid #ddd;border-radius:6px;padding:6px;font:12px sans-serif;
  height:270px;box-sizing:border-box;overflow:hidden}
.qinb-card img{width:100%;height:150px;object-fit:cover;border-radius:4px;display:block}
.qinb-snippet{height:150px;overflow:hidden;color:#333;white-space:normal}
.qinb-head{margin-top:4px}.qinb-head b{color:#dc244c}
.qinb-field{color:#555;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.qinb-error{color:#b00020;font-weight:bold}
.qinb-card.qinb-hit-relevant{border:2px solid #2f9e44}
.qinb-relevant{color:#2f9e44;font-weight:bold}
.qinb-missed{color:#b00020}
.qinb-why{color:#555;font-size:11px}
.qinb-snippet mark{background:#ffe08a;padding:0 1px}
.qinb-detail{border:1px solid #bbb;border-radius:6px;padding:8px;font:13px sans-serif}
.qinb-detail img{max-width:480px;max-height:480px;display:block;margin-bottom:6px}
.qinb-detail .qinb-text{max-height:300px;overflow:auto;white-space:pre-wrap}
.qinb-passages div{margin-bottom:6px}.qinb-passages .qinb-best{background:#fff4cc}
.qinb-detail td{padding:1px 8px 1px 0;vertical-align:top;word-break:break-all}
</style>"""


def middle(text: str, width: int) -> str:
    """``text`` shortened in the middle to ``width`` characters: a long dotted name, path, URL
    or id keeps its start and its end instead of collapsing to "…"."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head):]}"


WORD = re.compile(r"\w+")


def score_columns(columns: Sequence[Any]) -> dict[str, Any]:
    """Each vector's name -> the hits column holding its own score."""
    return {str(c)[len(SCORE_PREFIX):]: c for c in columns if str(c).startswith(SCORE_PREFIX)}


def highlight(text: str, query: str, options: Mapping[str, Any] | None = None,
              width: int = 320) -> str:
    """An escaped snippet of ``text`` around the words that match ``query`` as BM25 sees them
    (the same tokenizer, stemmer and stopwords: "planets" matches "planet", "the" nothing),
    with those words in ``<mark>``. The window of ``width`` characters holding the most
    matches is shown, not the start of a long text."""
    from qinb import models

    bm25 = models.bm25_model(tuple(sorted((options or {"language": "english"}).items())))
    wanted = frozenset(bm25.embed_query(query).indices)
    seen: dict[str, bool] = {}

    def matches(word: str) -> bool:
        if word not in seen:
            seen[word] = bool(frozenset(bm25.embed_query(word).indices) & wanted)
        return seen[word]

    words = [(m.start(), m.end()) for m in WORD.finditer(text)
             if wanted and matches(m.group().lower())]
    start = 0
    if words and len(text) > width:
        # the window starting a little before a match that holds the most matches
        best = max(range(len(words)), key=lambda i: sum(
            1 for _, b in words[i:] if b <= words[i][0] + width - 40))
        start = max(0, min(words[best][0] - 40, len(text) - width))
        start = text.rfind(" ", 0, start) + 1 if start else 0
    end = min(len(text), start + width)
    if end < len(text) and " " in text[start:end]:
        end = text.rfind(" ", start, end)
    out, at = [], start
    for a, b in words:
        if a >= start and b <= end:
            out += [html.escape(text[at:a]), f"<mark>{html.escape(text[a:b])}</mark>"]
            at = b
    out.append(html.escape(text[at:end]))
    return ("… " if start else "") + "".join(out) + (" …" if end < len(text) else "")


@dataclass(frozen=True)
class Facet:
    """A payload field worth filtering on: a few choices, many texts (typed ahead), or a
    numeric range (of whole numbers when ``integer``)."""

    key: str
    kind: str  # "choice", "text" or "range"
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    sampled: bool = False  # choices or range from a sample of the points, not all of them


def hit_columns(hits: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Which columns a hit card shows, one rule for the widget's cards and plot_hits: the
    columns its snippet comes from (the passage that matched, then the text the vectors were
    made from as search recorded it, else the text columns longest first), and up to
    SHOWN_FIELDS other payload fields."""
    texts = list(hits.attrs.get("texts") or _longest_texts(hits))
    if PASSAGE_COLUMNS[0] in hits.columns:
        texts = [PASSAGE_COLUMNS[0], *texts]
    sources = set(hits.attrs.get("sources") or texts)
    scores = set(score_columns(list(hits.columns)).values())
    fields = [c for c in hits.columns if c not in ("score", "rank", "id", *PASSAGE_COLUMNS)
              and c not in sources and c not in scores and c not in texts
              and not str(c).endswith(THUMBNAIL_SUFFIX)][:SHOWN_FIELDS]
    return texts, fields


def _longest_texts(hits: pd.DataFrame) -> list[str]:
    """Columns holding text (not pictures as data URIs), longest on average first."""
    lengths = {}
    for column in hits.columns:
        values = hits[column].dropna()
        if str(column).endswith(THUMBNAIL_SUFFIX) or values.empty or column in PASSAGE_COLUMNS:
            continue
        if all(isinstance(v, str) for v in values) and not values.iloc[0].startswith("data:"):
            lengths[column] = values.str.len().mean()
    return sorted(lengths, key=lambda c: -lengths[c])


def facets(store: Store, collection: str, specs: Mapping[str, Spec],
           sample: int = 1000) -> list[Facet]:
    """Facets: low-cardinality fields and numeric ranges. A sample of the payloads says which
    fields are worth it; their choices and ranges come from the whole collection (the
    engine's facet counts and ordered reads, on a payload index made for them), or from the
    sample where the store cannot give them (then ``sampled``)."""
    sources = {s.column for s in specs.values()}
    # thumbnails are the heavy part of a payload and never a facet
    thumbnails = [thumbnail_column(s.column) for s in specs.values() if s.kind == "image"]
    values: dict[str, list[Any]] = {}
    for payload in sample_payloads(store, collection, sample, exclude=thumbnails):
        for key, value in payload.items():
            if key.startswith("_qinb") or key.endswith(THUMBNAIL_SUFFIX) or key in sources:
                continue
            if value is not None:
                values.setdefault(key, []).append(value)
    found = []
    for key, seen in values.items():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            integer = all(isinstance(v, int) for v in seen)
            whole = _whole(functools.partial(store.extent, collection, key,
                                             "integer" if integer else "float"))
            low, high = whole or (min(seen), max(seen))
            if low < high:
                found.append(Facet(key, "range", low=float(low), high=float(high),
                                   integer=integer, sampled=whole is None))
        elif all(isinstance(v, str) for v in seen) or all(isinstance(v, bool) for v in seen):
            kind = "keyword" if isinstance(seen[0], str) else "bool"
            counted = _whole(functools.partial(store.facet, collection, key, kind,
                                               limit=MAX_TYPED + 1))
            distinct = sorted({v for v, _ in counted} if counted else set(seen), key=str)
            sampled = counted is None or len(distinct) > MAX_TYPED
            if 1 < len(distinct) <= MAX_CHOICES:
                found.append(Facet(key, "choice", tuple(distinct), sampled=sampled))
            elif len(distinct) > MAX_CHOICES and kind == "keyword" \
                    and max(map(len, distinct)) <= MAX_TEXT_CHOICE:
                # too many for a dropdown: typed ahead
                found.append(Facet(key, "text", tuple(distinct[:MAX_TYPED]), sampled=sampled))
    return found


def _whole(read: Callable[[], Any]) -> Any:
    """What the store says of the whole collection, or None where it cannot say (a server
    that refuses a payload index to a read-only key, a field of mixed types)."""
    try:
        return read()
    except QinbError:
        return None


def facet_filter(chosen: Mapping[str, Any], available: list[Facet]) -> dict[str, Any]:
    """The filter dict for the chosen facet values; ``None`` or a full range means any."""
    where: dict[str, Any] = {}
    for facet in available:
        value = chosen.get(facet.key)
        if value is None:
            continue
        if facet.kind in ("choice", "text"):
            where[facet.key] = value
        elif tuple(value) != (facet.low, facet.high):
            where[facet.key] = {"gte": value[0], "lte": value[1]}
    return where


def card_html(label: Hashable, row: pd.Series, image: str | None, *, text: str | None,
              fields: list[str], relevance: int | None = None, query: str | None = None,
              bm25: Mapping[str, Any] | None = None) -> str:
    """One hit card: thumbnail or snippet, rank, score, label and a few payload fields, and for
    a labelled query whether the hit is relevant (``relevance`` > 0). With a text ``query`` the
    snippet is where its words are, marked as BM25 with ``bm25`` options matches them; a hit of
    a chunked vector shows the passage that matched (``passage``) rather than the text's start.

    Everything from the payload is escaped: a caption of ``<img src=x onerror=...>`` shows as text.
    """
    passage = row.get(PASSAGE_COLUMNS[0])
    passage = passage if isinstance(passage, str) else None
    if image:
        top = f'<img src="{html.escape(image, quote=True)}" alt="{html.escape(str(label))}">'
    else:
        whole = passage if passage is not None else row.get(text, "") if text else ""
        body = " ".join(str(whole or "").split())
        # the part of a long text where the query's words are, with them marked
        snippet = (highlight(body, query, bm25) if query and body else
                   html.escape(textwrap.shorten(body, 320, placeholder="…")))
        top = f'<div class="qinb-snippet">{snippet}</div>'
    relevant = relevance is not None and relevance > 0
    # long values are shortened in the middle, never erased; the whole is one hover away
    lines = [
        f'<div class="qinb-card{" qinb-hit-relevant" if relevant else ""}">{top}',
        f'<div class="qinb-head" title="{html.escape(str(label), quote=True)}">'
        f'<b>#{int(row["rank"])}</b> {float(row["score"]):.3f} · '
        f"{html.escape(middle(str(label), 40))}</div>",
    ]
    per_vector = {name: row[c] for name, c in score_columns(list(row.index)).items()}
    if len(per_vector) > 1:
        # why it matched: each vector's own score; a vector that did not find the hit shows "–"
        parts = [f"{html.escape(n)} {'–' if pd.isna(v) else f'{float(v):.3g}'}"
                 for n, v in per_vector.items()]
        lines.append(f'<div class="qinb-why">{" · ".join(parts)}</div>')
    if passage is not None:
        lines.append(f'<div class="qinb-why">best passage {float(row[PASSAGE_COLUMNS[1]]):.3f}</div>')
    if relevant:
        lines.append(f'<div class="qinb-relevant">✓ relevant ({relevance})</div>')
    for field in fields:
        value = row.get(field)
        if value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        whole = " ".join(str(value).split())
        shown = (textwrap.shorten(whole, 60, placeholder="…") if " " in whole[:60]
                 else middle(whole, 60))
        lines.append(f'<div class="qinb-field" title="{html.escape(whole, quote=True)}">'
                     f'{html.escape(str(field))}: {html.escape(shown)}</div>')
    return "\n".join(lines) + "</div>"


def detail_html(label: Hashable, row: pd.Series, image: str | None, *, text: str | None,
                passages: Sequence[tuple[int, int, float]] | None = None) -> str:
    """One hit in full: the larger picture, the whole text, every payload field, the scores.
    With ``passages`` (start, end, score) the text is shown passage by passage, each with its
    score and the best one marked. Everything from the payload is escaped."""
    parts = [f'<div class="qinb-detail"><b>#{int(row["rank"])}</b> '
             f'{float(row["score"]):.4f} · {html.escape(str(label))}']
    if image:
        parts.append(f'<img src="{html.escape(image, quote=True)}" alt="{html.escape(str(label))}">')
    if text and isinstance(row.get(text), str) and passages:
        parts.append(passages_html(row[text], passages))
    elif text and isinstance(row.get(text), str):
        parts.append(f'<div class="qinb-text">{html.escape(row[text])}</div>')
    cells = []
    for key, value in row.items():
        if (key in ("score", "rank", *PASSAGE_COLUMNS) or key == text
                or str(key).endswith(THUMBNAIL_SUFFIX)):
            continue
        if value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        cells.append(f"<tr><td><b>{html.escape(str(key))}</b></td>"
                     f"<td>{html.escape(str(value))}</td></tr>")
    parts.append(f"<table>{''.join(cells)}</table></div>")
    return "".join(parts)


def passages_html(text: str, passages: Sequence[tuple[int, int, float]]) -> str:
    """A text as its passages, each with its score against the query, the best one marked."""
    best = max(range(len(passages)), key=lambda i: passages[i][2])
    rows = []
    for i, (start, end, score) in enumerate(passages):
        mark = ' class="qinb-best"' if i == best else ""
        rows.append(f"<div{mark}><span class=\"qinb-why\">passage {i + 1} · {score:.3f}</span> "
                    f"{html.escape(text[start:end])}</div>")
    return f'<div class="qinb-text qinb-passages">{"".join(rows)}</div>'


def status_html(hits: pd.DataFrame, what: str, using: Sequence[str], elapsed_ms: float,
                judged: Judged | None = None) -> tuple[str, list[int | None]]:
    """The status line under the query (escaped HTML) and, for a labelled query, each hit's
    relevance: how many hits, of what, by which vectors, how fast; a vector that found none of
    the hits ("bm25 matched nothing": a nonsense query looks like one); relevant found and
    missed."""
    status = html.escape(f"{len(hits)} hits · {what} · by {', '.join(using)} · {elapsed_ms:.0f} ms")
    silent = [name for name, c in score_columns(list(hits.columns)).items()
              if len(hits) and hits[c].isna().all()]
    if silent:
        status += html.escape(f" · {', '.join(silent)} matched nothing")
    if hits.attrs.get("weak"):  # a nonsense query must not look like a good one
        status += f'<div class="qinb-weak">⚠ {html.escape(hits.attrs["weak"])}</div>'
    if not judged:
        return status, [None] * len(hits)
    grades, missed = judged_hits(hits, judged)
    relevant = sum(1 for _, grade in judged.values() if grade > 0)
    status += f" · {sum(1 for g in grades if g)} of {relevant} relevant found"
    if missed:
        names = ", ".join(html.escape(str(m)) for m in missed)
        status += f' · <span class="qinb-missed">missed: {names}</span>'
    return status, grades
