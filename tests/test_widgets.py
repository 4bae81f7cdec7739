"""The search widget at the state level: set values, click, read cards, results and status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import qinb
from qinb import cards, viz

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


@pytest.fixture
def text_widget(corpus, client):
    corpus.qdrant.upsert("mixed", vectors=VECTORS, client=client, progress=False)
    return corpus.qdrant.widget("mixed", client=client, limit=4)


@pytest.fixture
def photo_widget(photos, client, clip_standins):
    photos.qdrant.upsert("photos", client=client, progress=False, thumbnails=True, vectors={
        "image": qinb.Image("photo"), "text": qinb.Text("caption"), "bm25": qinb.Bm25("caption")})
    return qinb.SearchWidget("photos", client=client, df=photos, limit=6)


def card_texts(w):
    return [box.children[0].value for box in w.cards.children]


def test_enter_in_the_query_box_searches_and_shows_ordered_cards(text_widget):
    w = text_widget
    w.query.value = "which planet orbits the Sun"  # continuous_update=False: set on Enter
    assert len(w.results) == 4 and (w.results["topic"] == "planets").all()
    cards = card_texts(w)
    assert len(cards) == 4
    for rank, (card, (label, row)) in enumerate(zip(cards, w.results.iterrows(), strict=True), start=1):
        assert f"<b>#{rank}</b> {row['score']:.3f} · {label}" in card
    assert w.status.value.startswith("4 hits · text query · by text, bm25 · ")
    assert f"<b>{w.collection}</b> · 12 points" in w.title.value and w.children[1] is w.title


def test_search_button_and_programmatic_search_agree_with_qinb_search(text_widget, corpus, client):
    w = text_widget
    w.query.value = "bake a cake"
    w.button.click()
    expected = qinb.search("mixed", "bake a cake", limit=4, client=client, df=corpus)
    assert w.results.index.tolist() == expected.index.tolist()
    assert w.search("red planet").index.tolist() == w.results.index.tolist()


def test_vector_choice_and_filters_change_the_results(text_widget, client, corpus):
    w = text_widget
    w.search("pan")
    w.vectors.value = ("bm25",)
    bm25 = qinb.search("mixed", "pan", using="bm25", limit=4, client=client, df=corpus)
    assert w.results.index.tolist() == bm25.index.tolist()
    assert "· by bm25 ·" in w.status.value
    w.vectors.value = ("text", "bm25")
    w.filters["topic"].value = "planets"
    assert (w.results["topic"] == "planets").all() and len(w.results) == 4
    w.filters["n"].value = (0.0, 1.0)
    assert sorted(w.results.index) == ["doc00", "doc01"]
    w.filters["topic"].value = "(any)"
    assert set(w.results["n"]) <= {0, 1} and len(w.results) == 4


def test_the_diversity_slider_reruns_the_query_as_search_diverse_does(text_widget, client,
                                                                     corpus):
    w = text_widget
    w.search("which planet orbits the Sun")
    plain = w.results.index.tolist()
    w.diverse.value = 0.8
    expected = qinb.search("mixed", "which planet orbits the Sun", limit=4, diverse=0.8,
                           client=client, df=corpus)
    assert w.results.index.tolist() == expected.index.tolist() != plain
    assert len(card_texts(w)) == 4
    w.diverse.value = 0.0
    assert w.results.index.tolist() == plain


def test_more_like_this_button_requeries_by_that_row(text_widget):
    w = text_widget
    w.search("simmer a sauce")
    first = w.results.index[0]
    w.cards.children[0].children[1].children[0].click()  # "more like this"
    assert first not in w.results.index
    assert w.status.value.split(" · ")[1] == f"more like #1 {first}"  # which hit, by rank
    assert w.asked.value == f"<b>more like</b> #1 {first}" and w.query.value == ""


def test_errors_show_in_plain_words(text_widget, photos):
    w = text_widget
    w.search("planets")
    w.upload.value = ({"name": "cat.png", "type": "image/png", "size": 10,
                       "content": memoryview(Path(photos.loc["chelsea", "photo"]).read_bytes()),
                       "last_modified": dt.datetime.now(dt.timezone.utc)},)
    assert 'class="qinb-error"' in w.status.value
    assert "an image query needs an image vector" in w.status.value
    assert "Traceback" not in w.status.value
    assert w.results.empty and w.cards.children == ()


def test_payload_html_is_escaped(client):
    evil = "<img src=x onerror=alert(1)>"
    df = pd.DataFrame({"text": [f"caption {evil}", "harmless"], "note": [evil, "ok"]},
                      index=[evil, "b"])
    df.qdrant.upsert("evil", vectors={"text": qinb.Text("text")}, client=client, progress=False)
    w = df.qdrant.widget("evil", client=client)
    w.search("caption")
    page = "".join(card_texts(w))
    assert "<img src=x" not in page
    # snippet, label and note field, and the label's and the field's hover titles
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") == 5


def test_image_upload_and_path_queries_show_thumbnails(photo_widget, photos):
    w = photo_widget
    data = Path(photos.loc["chelsea", "photo"]).read_bytes()
    w.upload.value = ({"name": "chelsea.png", "type": "image/png", "size": len(data),
                       "content": memoryview(data), "last_modified": dt.datetime.now(dt.timezone.utc)},)
    assert w.results.index[0] == "chelsea" and w.results["score"].iloc[0] == pytest.approx(1, abs=1e-4)
    assert "· image query · by image ·" in w.status.value
    cards = card_texts(w)
    assert len(cards) == 6 and all('<img src="data:image/jpeg;base64,' in c for c in cards)
    w.image_path.value = photos.loc["rocket", "photo"]
    assert w.results.index[0] == "rocket"
    w.image_path.value = "/no/such/picture.png"
    assert "the query image cannot be used: file not found" in w.status.value


def test_thumbnails_are_made_once(photos, client, clip_standins):
    photos.qdrant.upsert("nothumbs", vectors={"image": qinb.Image("photo")}, client=client,
                         progress=False)
    w = qinb.SearchWidget("nothumbs", client=client, df=photos, limit=6)
    viz.thumbnail.cache_clear()
    w.search(image=Path(photos.loc["coffee", "photo"]))
    assert viz.thumbnail.cache_info().misses == 6
    w.search(image=Path(photos.loc["rocket", "photo"]))  # the same six hits, in another order
    assert viz.thumbnail.cache_info().misses == 6 and viz.thumbnail.cache_info().hits == 6
    assert all(len(c) < 40_000 for c in card_texts(w))  # a downscaled JPEG, not the photo


def test_text_query_on_a_photo_collection_uses_every_selected_vector(photo_widget):
    w = photo_widget
    w.search("a rocket standing on its launch pad")
    assert w.results.index[0] == "rocket"  # text and BM25 match the caption
    assert "· by image, text, bm25 ·" in w.status.value


def test_a_labelled_query_marks_the_relevant_hits_and_names_the_missed(corpus, client):
    corpus.qdrant.upsert("mixed", vectors=VECTORS, client=client, progress=False)
    queries = pd.Series({"q1": "the moons Phobos and Deimos", "q2": "bake a cake"})
    qrels = pd.DataFrame({"query": ["q1", "q1", "q2"], "row": ["doc01", "doc05", "doc08"],
                          "relevance": [2, 1, 2]})
    w = qinb.widget("mixed", client=client, df=corpus, limit=1, queries=queries, qrels=qrels)
    assert [label for label, _ in w.labelled.options][1:] == [
        "q1: the moons Phobos and Deimos", "q2: bake a cake"]
    w.labelled.value = "q1"
    assert w.query.value == "the moons Phobos and Deimos"
    assert w.results.index.tolist() == ["doc01"]  # Mars
    assert "qinb-hit-relevant" in card_texts(w)[0] and "✓ relevant (2)" in card_texts(w)[0]
    assert w.status.value.endswith(
        '· 1 of 2 relevant found · <span class="qinb-missed">missed: doc05</span>')
    w.limit.value = 12  # a control change re-runs the labelled query: nothing missed now
    assert "2 of 2 relevant found" in w.status.value and "missed" not in w.status.value
    assert sum("✓ relevant" in card for card in card_texts(w)) == 2
    w.query.value = "pasta"  # a query of one's own: no marks
    assert "relevant" not in w.status.value
    assert not any("✓ relevant" in card for card in card_texts(w))


def test_the_query_area_shows_what_the_hits_answer(photo_widget, photos):
    w = photo_widget
    w.search("a cat")  # from code: the box shows it as if typed
    assert w.asked.value == "" and w.query.value == "a cat"
    data = Path(photos.loc["chelsea", "photo"]).read_bytes()
    w.upload.value = ({"name": "chelsea.png", "type": "image/png", "size": len(data),
                       "content": memoryview(data), "last_modified": dt.datetime.now(dt.timezone.utc)},)
    assert w.query.value == ""  # the box no longer claims the hits answer "a cat"
    assert w.asked.value.startswith('<img src="data:image/jpeg;base64,')
    assert w.asked.value.endswith("<b>image query</b>")
    assert w.results.index[0] == "chelsea"  # emptying the box did not search


def test_enter_on_unchanged_text_searches_again(text_widget, corpus, client):
    w = text_widget
    w.query.value = "bake a sponge cake"
    before = w.results.index.tolist()
    extra = pd.DataFrame({"text": ["Bake the sponge cake, then bake a second sponge cake"],
                          "topic": ["cooking"], "n": [99]}, index=["doc99"])
    extra.qdrant.upsert("mixed", vectors=VECTORS, client=client, progress=False)
    w._searched_at -= 5  # Enter a few seconds later, on the same text (the frontend's message)
    w._on_query_message(w.query, {"event": "submit"}, [])
    assert w.results.index[0] == "doc99" and "doc99" not in before


def test_active_filters_show_as_chips_that_remove_them(text_widget):
    w = text_widget
    w.search("a planet or a pan")
    assert w.chips.children == ()
    w.filters["topic"].value = "planets"
    assert (w.results["topic"] == "planets").all()
    (chip,) = w.chips.children
    assert chip.description == "topic: planets  ✕"
    chip.click()
    assert w.filters["topic"].value == "(any)" and w.chips.children == ()
    assert set(w.results["topic"]) == {"planets", "cooking"}


def test_empty_and_nonsense_queries_say_so(text_widget):
    w = text_widget
    w.search("red planet")
    w.query.value = "   "
    assert "the query is empty: type some words (the hits below are for the last query)" in (
        w.status.value)
    w.search("qwxzv plorkk zzzyq")
    assert "bm25 matched nothing" in w.status.value
    assert all("bm25 –" in card for card in card_texts(w))


def test_long_labels_and_fields_are_shortened_in_the_middle_with_the_whole_on_hover(client):
    name = "torch.nn.modules.activation.MultiheadAttention.forward"
    path = "/home/user/projects/analysis/data/raw/2024/measurements_final_v2.parquet"
    df = pd.DataFrame({"text": ["attention forward pass"], "source": [path]}, index=[name])
    df.qdrant.upsert("long", vectors={"text": qinb.Text("text")}, client=client, progress=False)
    w = df.qdrant.widget("long", client=client)
    w.search("attention")
    (card,) = card_texts(w)
    assert "torch.nn.modules.ac…eadAttention.forward" in card and f'title="{name}"' in card
    assert "source: /home/user/projects/analysis/…/measurements_final_v2.parquet" in card
    assert f'title="{path}"' in card


def test_snippets_mark_the_query_words_where_they_are_in_a_long_text(client):
    long = ("Opening words about nothing in particular. " * 15 + "The break statement stops the "
            "nearest enclosing loop. " + "Closing words about other things. " * 15)
    df = pd.DataFrame({"text": [long, "Loops repeat: a loop stops when its condition is false."]},
                      index=["long", "short"])
    df.qdrant.upsert("marks", vectors=VECTORS, client=client, progress=False)
    w = df.qdrant.widget("marks", client=client)
    w.search("stopping loops")
    cards = dict(zip(w.results.index, card_texts(w), strict=True))
    # the same stemming as BM25: "stopping" marks "stops", "loops" marks "loop" and "Loops"
    assert "<mark>stops</mark> the nearest enclosing <mark>loop</mark>" in cards["long"]
    assert cards["long"].split('qinb-snippet">')[1].startswith("… ")  # not the text's start
    assert "<mark>Loops</mark> repeat: a <mark>loop</mark> <mark>stops</mark>" in cards["short"]
    w.search(like="short")  # no text query: no marks
    assert not any("<mark>" in card for card in card_texts(w))


def test_filter_controls_fit_their_fields(client):
    n = 200
    df = pd.DataFrame({"text": [f"item number {i}" for i in range(n)],
                       "author": [f"author-{i:03d}" for i in range(n)],  # 200 distinct: type-ahead
                       "pages": [27 + i * 40 for i in range(n)],        # whole numbers
                       "rating": [0.25 + i / 20 for i in range(n)]})
    df.qdrant.upsert("books", vectors={"bm25": qinb.Bm25("text")}, client=client, progress=False)
    w = df.qdrant.widget("books", client=client)
    pages, rating, author = w.filters["pages"], w.filters["rating"], w.filters["author"]
    assert type(pages).__name__ == "IntRangeSlider" and pages.value == (27, 27 + 199 * 40)
    assert type(rating).__name__ == "FloatRangeSlider" and rating.readout_format == ".2f"
    assert type(author).__name__ == "Combobox" and len(author.options) == n
    w.search("item number")
    author.value = "author-042"
    assert w.results.index.tolist() == [42]
    (chip,) = w.chips.children
    assert chip.description == "author: author-042  ✕"
    pages.value = (27, 1000)
    assert [c.description for c in w.chips.children] == ["author: author-042  ✕",
                                                         "pages: 27 – 1000  ✕"]
    w.chips.children[0].click()
    assert author.value == "" and set(w.results["pages"]) <= set(range(27, 1001))


def test_details_show_the_whole_hit(photo_widget, photos):
    w = photo_widget
    w.search("a rocket on its launch pad")
    label = w.results.index[0]
    card = w.cards.children[0]
    more, details = card.children[1].children
    assert (more.description, details.description) == ("more like this", "details")
    details.click()
    page, close = w.detail.children
    view = page.value
    assert f"· {label}" in view and photos.loc[label, "caption"] in view
    assert "<b>kind</b></td><td>" in view and "<b>megapixels</b>" in view  # every field
    picture = view.split('<img src="')[1].split('"')[0]
    from qinb.viz import _decode

    assert max(_decode(picture).size) > 160  # larger than the card's thumbnail
    close.click()
    assert w.detail.children == ()


def test_cards_of_a_chunked_vector_show_the_passage_that_matched(client):
    """A long row's card shows its best passage with the query's words marked, not the
    text's start; its details show every passage with its score, the best marked."""
    from tests.test_passages import CHUNKED, SATURN, frame

    df = frame()
    df.qdrant.upsert("docs", vectors=CHUNKED, client=client, progress=False)
    w = df.qdrant.widget("docs", client=client, limit=3)
    w.vectors.value = ("text",)
    w.search("rings of ice around Saturn")
    assert w.results.index[0] == "long"
    card = card_texts(w)[0]
    assert "<mark>Saturn</mark>" in card and "<mark>rings</mark>" in card
    # the snippet is the passage (the long text's start lies a dozen paragraphs before Saturn)
    assert "orbiting the planet." in card and w.results["passage"].iloc[0].endswith(SATURN)
    assert f"best passage {w.results['passage_score'].iloc[0]:.3f}" in card
    w.cards.children[0].children[1].children[1].click()  # details
    detail = w.detail.children[0].value
    passages = w.results.attrs["passages"][w.results["id"].iloc[0]]
    assert detail.count('<span class="qinb-why">passage ') == len(passages) > 3
    best = max(range(len(passages)), key=lambda i: passages[i][2])
    assert f'<div class="qinb-best"><span class="qinb-why">passage {best + 1} · ' in detail
    assert SATURN.replace("'", "&#x27;") in detail.split('class="qinb-best"')[1].split("</div>")[0]


def test_filter_choices_come_from_the_whole_collection(client):
    # issue 18, item 4: section '5' and most names are only in points past the first 1,000
    n = 1500
    df = pd.DataFrame({"text": [f"page {i}" for i in range(n)], "name": [f"cmd{i}" for i in range(n)],
                       "section": ["1" if i < 1200 else "5" for i in range(n)],
                       "size": [i if i < 1000 else 10 * i for i in range(n)]})
    df.qdrant.upsert("man", vectors={"bm25": qinb.Bm25("text", avg_len=2)}, client=client,
                     progress=False)
    found = {f.key: f for f in cards.facets(client, "man", {"bm25": qinb.Bm25("text")})}
    assert found["section"].choices == ("1", "5") and not found["section"].sampled
    assert len(found["name"].choices) == n and "cmd1499" in found["name"].choices
    assert (found["size"].low, found["size"].high) == (0, 14990)
    w = qinb.widget("man", client=client)
    assert w.filters["section"].description == "section" and "5" in w.filters["section"].options


def test_one_rule_picks_the_columns_of_a_hit_card_for_the_widget_and_plot_hits(client, corpus,
                                                                               monkeypatch):
    # issue 18, item 15: the widget's cards and plot_hits chose payload columns by two rules
    corpus.assign(note=["x" * 300] * len(corpus)).qdrant.upsert(
        "cols", vectors={"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}, client=client,
        progress=False)
    hits = qinb.search("cols", "red planet", client=client, limit=3)
    texts, fields = cards.hit_columns(hits)
    # the text the vectors were made from, not the longest column ("note")
    assert texts == ["text"] and fields == ["topic", "n", "note"]
    captions = []
    monkeypatch.setattr(viz, "_caption", lambda row, columns, width: captions.append(columns) or "")
    qinb.plot_hits(hits)
    assert captions and all(c == ["text"] for c in captions)
    w = qinb.widget("cols", client=client)
    w.search("red planet")
    card = w.cards.children[0].children[0].value
    assert "topic" in card and hits.iloc[0]["topic"] in card


def test_a_nonsense_query_is_called_weak_and_a_real_question_is_not(tmp_path, warm_cache,
                                                                     monkeypatch):
    # issue 18, item 1: "xqzv blorf wug" showed ten cards like any good query
    monkeypatch.setenv("QINB_CACHE", warm_cache)
    client = qinb.connect(tmp_path / "store")
    df = qinb.datasets.python_topics()
    df.qdrant.upsert("py", vectors={"text": qinb.Text("text", chunk_size=256, chunk_overlap=32),
                                    "bm25": qinb.Bm25("text")}, client=client, progress=False)
    queries, _ = qinb.datasets.python_questions()
    for question in queries.iloc[:8]:
        for using in (None, "text"):
            assert qinb.search("py", question, using=using, client=client).attrs["weak"] is None
    for nonsense in ("xqzv blorf wug", "flibber jabber snorkel"):
        hits = qinb.search("py", nonsense, client=client)
        assert "no row holds a word of the query" in hits.attrs["weak"]
    w = qinb.widget("py", client=client)
    w.search("xqzv blorf wug")
    assert "probably unrelated" in w.status.value
    w.search(queries.iloc[0])
    assert "probably unrelated" not in w.status.value
