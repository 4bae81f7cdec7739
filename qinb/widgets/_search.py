"""The search widget: query box, image upload, vector and fusion choice, filters, hit cards."""

from __future__ import annotations

import html
import textwrap
import time
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from qinb import cards
from qinb._evaluate import Judged, judgements
from qinb._search import search as run_search
from qinb.errors import QinbError, require
from qinb.images import ImageCellError, load, thumbnail_column
from qinb.spec import Bm25, Image
from qinb.store import as_store, saved_specs
from qinb.viz import display_urls, hit_images, thumbnail

require("ipywidgets", "widgets")
import ipywidgets as W  # noqa: E402

ANY = "(any)"


class SearchWidget(W.VBox):  # type: ignore[misc]
    """Search a qinb collection by text or image and look at the hits as cards.

    Configured from the collection's saved specs alone. Drive it from code too:
    ``w.search("red shoes")``, ``w.search(image=Path("shoe.jpg"))``, then read ``w.results``.

    Parameters
    ----------
    collection : str
    client : QdrantClient, optional
        Default: the embedded store of :func:`qinb.connect`.
    df : DataFrame, optional
        The source frame: hits are labelled with its index and "more like this" uses row labels.
    limit : int
        Initial number of hits.
    secrets : dict, optional
        Credential options for a server's model provider, as :func:`qinb.search` takes them.
    queries, qrels : Series and DataFrame, optional
        Labelled queries, as :func:`qinb.evaluate` takes them: a dropdown picks one, its hits
        are marked relevant or not, and the relevant rows it missed are named.
    fetch_urls : bool, optional
        Fetch the pictures behind http(s) URLs in hits' payloads to show them (default
        :func:`qinb.viz.display_urls`: on unless ``QINB_DISPLAY_URLS=0``). Turn it off for
        collections from sources you do not trust.

    Examples
    --------
    >>> w = qinb.SearchWidget("photos", df=df)
    >>> w                                  # shows it in the notebook
    >>> w.search("a cat on a sofa"); w.results.head()
    """

    def __init__(self, collection: str, client: Any = None, df: pd.DataFrame | None = None,
                 limit: int = 12, secrets: Mapping[str, str] | None = None,
                 queries: pd.Series | None = None, qrels: pd.DataFrame | None = None,
                 fetch_urls: bool | None = None) -> None:
        self.collection = collection
        self._fetch_urls = display_urls() if fetch_urls is None else fetch_urls
        self.client = as_store(client)
        self.df = df
        self._secrets = secrets  # never shown: not a trait, so not in the widget state
        self.specs, _ = saved_specs(self.client, collection, secrets)
        self._qrels = qrels
        self._judged: tuple[str, Judged] | None = None  # the labelled query's text, its judgements
        self.results = pd.DataFrame(columns=["score", "rank", "id"])
        self._last: dict[str, Any] | None = None
        self._facets = cards.facets(self.client, collection, self.specs)

        self.query = W.Text(placeholder="search…  (Enter)", continuous_update=False,
                            layout=W.Layout(width="50%"))
        self.button = W.Button(description="Search", icon="search", button_style="primary")
        self.image_path = W.Text(placeholder="image path or URL", continuous_update=False)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Image query")
        self.vectors = W.SelectMultiple(options=list(self.specs), value=list(self.specs),
                                        description="vectors", rows=min(4, len(self.specs)))
        self.fusion = W.ToggleButtons(options=["rrf", "dbsf"], value="rrf", description="fusion")
        self.limit = W.BoundedIntText(value=limit, min=1, max=100, description="hits",
                                      layout=W.Layout(width="140px"))
        # MMR: 0 is the plain ranking; higher trades relevance for hits unlike each other
        self.diverse = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.1, description="diverse",
                                     continuous_update=False, layout=W.Layout(width="260px"))
        self.filters = {f.key: self._filter_control(f) for f in self._facets}
        self.labelled = W.Dropdown(
            options=[("a labelled query…", None)] + [
                (f"{qid}: {textwrap.shorten(str(q), 70, placeholder='…')}", qid)
                for qid, q in (queries.items() if queries is not None else [])],
            value=None, description="labelled", layout=W.Layout(width="60%"))
        self._queries = queries
        self.asked = W.HTML()  # what the hits answer when it is not the text in the box
        self.detail = W.VBox()  # one hit in full, opened from its card
        self._close = W.Button(description="close", layout=W.Layout(width="auto"))
        self._close.on_click(lambda _: setattr(self.detail, "children", ()))
        self.chips = W.HBox(layout=W.Layout(flex_flow="row wrap"))  # the active filters
        self._quiet = False  # set while the widget itself changes the query box
        self._searched_at = 0.0
        self.status = W.HTML()
        self.title = W.HTML()  # the collection's name and how many points it holds
        self._show_title()
        self.cards = W.GridBox(layout=W.Layout(
            grid_template_columns="repeat(auto-fill, minmax(190px, 1fr))", grid_gap="8px"))

        self.query.observe(lambda _: None if self._quiet else self.search(self.query.value),
                           "value")
        # Enter on unchanged text searches again (the value did not change, so no event above)
        self.query.on_msg(self._on_query_message)
        self.button.on_click(lambda _: self.search(self.query.value))
        self.image_path.observe(self._on_image_path, "value")
        self.upload.observe(self._on_upload, "value")
        for control in [self.vectors, self.fusion, self.limit, self.diverse,
                        *self.filters.values()]:
            control.observe(lambda _: self._rerun(), "value")

        self.labelled.observe(self._on_labelled, "value")

        has_images = any(isinstance(s, Image) for s in self.specs.values())
        rows = [W.HBox([self.query, self.button])]
        if queries is not None and qrels is not None:
            rows.append(self.labelled)
        if has_images:
            rows.append(W.HBox([self.upload, self.image_path]))
        rows.append(W.HBox([self.vectors, W.VBox([self.fusion, W.HBox([self.limit, self.diverse])])]))
        if self.filters:
            rows.append(W.HBox(list(self.filters.values()), layout=W.Layout(flex_flow="row wrap")))
        super().__init__([W.HTML(cards.CARD_CSS), self.title, *rows, self.asked, self.chips, self.status,
                          self.detail, self.cards])

    def _filter_control(self, facet: cards.Facet) -> W.Widget:
        if facet.kind == "choice":
            return W.Dropdown(options=[ANY, *facet.choices], value=ANY, description=facet.key)
        if facet.kind == "text":
            return W.Combobox(options=list(facet.choices), value="", ensure_option=True,
                              placeholder=f"type one of {len(facet.choices)}…",
                              description=facet.key)
        # the readout holds the whole range ("27 – 8546", "0.25 – 12.50"), never cut
        wide = dict(description=facet.key, continuous_update=False,
                    style={"description_width": "initial"}, layout=W.Layout(width="420px"))
        if facet.integer:
            return W.IntRangeSlider(value=(int(facet.low), int(facet.high)), min=int(facet.low),
                                    max=int(facet.high), **wide)
        return W.FloatRangeSlider(value=(facet.low, facet.high), min=facet.low, max=facet.high,
                                  step=(facet.high - facet.low) / 100, readout_format=".2f",
                                  **wide)

    def filter(self) -> dict[str, Any]:
        """The payload filter the filter controls describe, as ``qinb.search`` takes it."""
        chosen = {k: (None if c.value in (ANY, "") else c.value) for k, c in self.filters.items()}
        return cards.facet_filter(chosen, self._facets)

    def search(self, text: str | None = None, *, image: Any = None,
               like: Hashable | None = None) -> pd.DataFrame:
        """Run a text, image or "more like this" query with the current controls; show the hits."""
        if text is None and image is None and like is None:
            return self.results
        if isinstance(text, str) and not text.strip() and image is None and like is None:
            self.status.value = ('<span class="qinb-error">the query is empty: type some words'
                                 + (" (the hits below are for the last query)"
                                    if len(self.results) else "") + "</span>")
            return self.results
        self._last = {"text": text, "image": image, "like": like}
        using = list(self.vectors.value)
        if image is not None:
            using = [n for n in using if isinstance(self.specs[n], Image)] or [
                n for n, s in self.specs.items() if isinstance(s, Image)]
        started = time.perf_counter()
        try:
            hits = run_search(self.collection, image if image is not None else text, like=like,
                              using=using or None, limit=self.limit.value, filter=self.filter(),
                              fusion=self.fusion.value, diverse=self.diverse.value or None,
                              client=self.client, df=self.df, secrets=self._secrets)
        except QinbError as exc:
            return self._fail(str(exc))
        except Exception as exc:  # a notebook user sees words, never a traceback
            return self._fail(f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        target = _rank_of(self.results, like) if like is not None else ""
        self._show_query(text, image, like, target)
        self.results = hits
        what = (f"more like {target}{cards.middle(str(like), 40)}" if like is not None
                else "image query" if image is not None else "text query")
        judged = self._judged[1] if self._judged and self._judged[0] == text else None
        status, grades = cards.status_html(hits, what, using, elapsed, judged)
        self.status.value = status
        self._show_title()  # another cell may have upserted or deleted rows since
        self._show_filters()
        self._show(hits, grades)
        return hits

    def _show_title(self) -> None:
        count = self.client.count(self.collection)
        self.title.value = (f'<span class="qinb-title"><b>{html.escape(self.collection)}</b> · '
                            f'{count:,} {"point" if count == 1 else "points"}</span>')

    def _open(self, label: Hashable, row: pd.Series, image: str | None,
              text: str | None) -> None:
        """The detail view of one hit: larger picture, whole text, every field."""
        pictures = [row.get(c) for c in (s.column for s in self.specs.values() if isinstance(s, Image))]
        larger = next((thumbnail(p, 480, fetch=self._fetch_urls) for p in pictures
                       if isinstance(p, str) and p and not p.startswith("<")), None)
        passages = self.results.attrs.get("passages", {}).get(row["id"])
        self.detail.children = (W.HTML(cards.detail_html(label, row, larger or image, text=text,
                                                         passages=passages)), self._close)

    def _show_query(self, text: str | None, image: Any, like: Hashable | None,
                    target: str = "") -> None:
        """The query area shows what the hits answer: the text in the box, else the picture or
        the row they are like (the box is emptied, without searching)."""
        self._searched_at = time.monotonic()
        self._quiet = True
        try:
            self.query.value = text or ""  # a search from code shows its text too
        finally:
            self._quiet = False
        if text is not None:
            self.asked.value = ""
            return
        if like is not None:
            self.asked.value = (f"<b>more like</b> {html.escape(target)}"
                                f"{html.escape(cards.middle(str(like), 60))}")
            return
        try:
            preview = load(image).thumbnail(64)
        except ImageCellError:
            preview = None
        picture = (f'<img src="{preview}" style="height:48px;vertical-align:middle"> '
                   if preview else "")
        self.asked.value = f"{picture}<b>image query</b>"

    def _show_filters(self) -> None:
        """The active filters as chips; clicking one removes that filter."""
        chips = []
        by_key = {f.key: f for f in self._facets}
        for key, value in self.filter().items():  # the active filters, as the search gets them
            shown = (f"{key}: {value['gte']:g} – {value['lte']:g}" if isinstance(value, dict)
                     else f"{key}: {value}")
            control, facet = self.filters[key], by_key[key]
            chip = W.Button(description=f"{cards.middle(shown, 40)}  ✕", tooltip="remove this filter",
                            layout=W.Layout(width="auto"))
            chip.on_click(lambda _, c=control, f=facet: setattr(c, "value", _cleared(f)))
            chips.append(chip)
        self.chips.children = tuple(chips)

    def _on_query_message(self, _: Any, content: dict[str, Any], buffers: Any) -> None:
        if content.get("event") != "submit":
            return
        # Enter with new text has just searched through the value change; Enter on the same
        # text searches again
        if time.monotonic() - self._searched_at > 1.0 or self.query.value != (self._last or {}).get("text"):
            self.search(self.query.value)

    def _fail(self, message: str) -> pd.DataFrame:
        self.results = pd.DataFrame(columns=["score", "rank", "id"])
        self.status.value = f'<span class="qinb-error">{html.escape(message)}</span>'
        self.cards.children = ()
        return self.results

    def _rerun(self) -> None:
        if self._last is not None:
            self.search(**self._last)

    def _show(self, hits: pd.DataFrame, grades: list[int | None] | None = None) -> None:
        text = next((s.column for s in self.specs.values() if not isinstance(s, Image)), None)
        _, fields = cards.hit_columns(hits)
        pictures = [thumbnail_column(s.column) for s in self.specs.values()
                    if isinstance(s, Image)]
        pictures += [s.column for s in self.specs.values() if isinstance(s, Image)]
        children = []
        grades = grades or [None] * len(hits)
        query = (self._last or {}).get("text")
        bm25 = next((s.model_options for s in self.specs.values() if isinstance(s, Bm25)), None)
        images = hit_images(hits, pictures, fetch_urls=self._fetch_urls)
        for (label, row), image, grade in zip(hits.iterrows(), images, grades, strict=True):
            more = W.Button(description="more like this", layout=W.Layout(width="auto"))
            target = label if self.df is not None else row["id"]
            more.on_click(lambda _, t=target: self.search(like=t))
            details = W.Button(description="details", layout=W.Layout(width="auto"))
            details.on_click(lambda _, lb=label, r=row, i=image: self._open(lb, r, i, text))
            card = W.HTML(cards.card_html(label, row, image, text=text, fields=fields,
                                          relevance=grade, query=query, bm25=bm25))
            children.append(W.VBox([card, W.HBox([more, details])]))
        self.cards.children = tuple(children)

    def _on_labelled(self, change: dict[str, Any]) -> None:
        qid = change["new"]
        if qid is None or self._queries is None or self._qrels is None:
            self._judged = None
            return
        text = str(self._queries[qid])
        self._judged = (text, judgements(self._qrels, qid))
        if self.query.value == text:
            self.search(text)
        else:
            self.query.value = text  # searches, through the query box

    def _on_image_path(self, change: dict[str, Any]) -> None:
        value = str(change["new"]).strip()
        if value:
            is_url = value.startswith(("http://", "https://"))
            from qdrant_client import models

            spec = next((s for s in self.specs.values() if isinstance(s, Image)), None)
            model = spec.model if spec else ""
            self.search(image=models.Image(image=value, model=model) if is_url else Path(value))

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if files:
            self.search(image=bytes(files[0]["content"]))


def _cleared(facet: cards.Facet) -> Any:
    """The value of a filter control that filters nothing."""
    if facet.kind == "choice":
        return ANY
    if facet.kind == "text":
        return ""
    return (int(facet.low), int(facet.high)) if facet.integer else (facet.low, facet.high)


def _rank_of(hits: pd.DataFrame, label: Hashable) -> str:
    """ "#3 " when ``label`` is among the hits shown (by row label or point id), else ""."""
    keys = list(hits.index) if label in hits.index else list(hits.get("id", []))
    return f"#{keys.index(label) + 1} " if label in keys else ""


def widget(collection: str, *, client: Any = None, df: pd.DataFrame | None = None,
           limit: int = 12, secrets: Mapping[str, str] | None = None,
           queries: pd.Series | None = None, qrels: pd.DataFrame | None = None,
           fetch_urls: bool | None = None) -> SearchWidget:
    """A :class:`SearchWidget` for ``collection`` (the twin of ``df.qdrant.widget``)."""
    return SearchWidget(collection, client=client, df=df, limit=limit, secrets=secrets,
                        queries=queries, qrels=qrels, fetch_urls=fetch_urls)
