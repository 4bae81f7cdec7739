"""Diverse, grouped and example-driven search (issue 27) on real MiniLM vectors, on Qdrant Edge
and qdrant-client's local mode."""

from __future__ import annotations

import pandas as pd
import pytest

import qinb
from qinb.errors import QueryError

# three rows saying nearly the same thing about Jupiter, beside the corpus' others
JUPITERS = [
    "Jupiter, the solar system's largest planet, is a gas giant with a great red spot.",
    "The largest planet of the solar system is Jupiter, a gas giant with a great red spot.",
]
VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


@pytest.fixture
def stored(client, corpus):
    extra = pd.DataFrame({"text": JUPITERS, "topic": "planets", "n": [6, 7]},
                         index=pd.Index(["doc12", "doc13"], name="doc"))
    df = pd.concat([corpus, extra])
    qinb.upsert(df, "c", vectors=VECTORS, client=client, progress=False)
    return df


def jupiters(labels) -> int:
    return sum(label in ("doc00", "doc12", "doc13") for label in labels)


def test_diverse_hits_trade_repeats_for_other_rows(client, stored):
    query = "Jupiter, the largest gas giant planet"
    plain = qinb.search("c", query, using="text", limit=3, client=client)
    assert jupiters(plain.index) == 3  # the three near-copies crowd the top
    diverse = qinb.search("c", query, using="text", limit=3, diverse=0.5, client=client)
    assert diverse.index[0] == plain.index[0]  # the best hit stays first
    assert jupiters(diverse.index) == 1
    assert diverse["topic"].iloc[1] == "planets"  # the next best is another planet
    # each hit keeps its own score; diverse=0 is the plain ranking
    assert diverse["score"].iloc[0] == pytest.approx(plain["score"].iloc[0])
    zero = qinb.search("c", query, using="text", limit=3, diverse=0.0, client=client)
    assert list(zero.index) == list(plain.index)


def test_diverse_works_on_hybrid_hits(client, stored):
    plain = qinb.search("c", "Jupiter gas giant red spot", limit=3, client=client)
    hits = qinb.search("c", "Jupiter gas giant red spot", limit=3, diverse=0.5, client=client)
    assert jupiters(plain.index) == 3
    assert jupiters(hits.index) == 1 and hits.index[0] == plain.index[0]
    assert list(hits["rank"]) == [1, 2, 3]


def test_group_by_gives_the_best_rows_of_each_group(client, stored):
    query = "a planet orbiting the Sun"
    everything = qinb.search("c", query, using="text", limit=14, client=client)
    grouped = qinb.search("c", query, using="text", limit=2, group_by="topic", group_size=2,
                          client=client)
    expected = [label for topic in everything["topic"].unique()[:2]
                for label in everything.index[everything["topic"] == topic][:2]]
    assert list(grouped.index) == expected
    assert list(grouped["group"]) == ["planets", "planets", "cooking", "cooking"]
    one = qinb.search("c", query, using="text", limit=5, group_by="topic", client=client)
    assert list(one["group"]) == ["planets", "cooking"]  # only two groups exist


def test_group_by_a_field_no_row_has_finds_nothing(client, stored):
    hits = qinb.search("c", "planets", using="text", group_by="author", client=client)
    assert len(hits) == 0


def test_more_like_these_and_less_like_those(client, stored):
    like = qinb.search("c", like=["doc01", "doc02"], using="text", limit=4, client=client)
    assert not {"doc01", "doc02"} & set(like.index)  # the examples are no hits
    assert set(like["topic"]) == {"planets"}
    one = qinb.search("c", like="doc01", using="text", limit=3, client=client)
    as_list = qinb.search("c", like=["doc01"], using="text", limit=3, client=client)
    assert list(one.index) == list(as_list.index)
    # moving away from Jupiter's rows pushes them down the ranking
    near = qinb.search("c", like=["doc02"], using="text", limit=13, client=client)
    away = qinb.search("c", like=["doc02"], unlike=["doc12", "doc13"], using="text", limit=11,
                       client=client)
    assert "doc00" in near.index and "doc00" in away.index
    assert list(away.index).index("doc00") > list(near.index).index("doc00")
    assert not {"doc12", "doc13"} & set(away.index)
    hybrid = qinb.search("c", like=["doc01", "doc02"], unlike=["doc06"], limit=3, client=client)
    assert set(hybrid["topic"]) == {"planets"}


def test_bad_explore_arguments_say_what_to_pass(client, stored):
    with pytest.raises(QueryError, match=r"diverse= is between 0.0 .* not 1.5"):
        qinb.search("c", "planets", diverse=1.5, client=client)
    with pytest.raises(QueryError, match="group_size must be a whole number of at least 1, not 0"):
        qinb.search("c", "planets", group_by="topic", group_size=0, client=client)
    with pytest.raises(QueryError, match="unlike= needs like= too"):
        qinb.search("c", unlike=["doc01"], client=client)
    with pytest.raises(QueryError, match=r"unlike='nope': no row labelled 'nope' is in 'c'"):
        qinb.search("c", like=["doc01"], unlike="nope", client=client)
    with pytest.raises(QueryError, match="like= is empty"):
        qinb.search("c", like=[], client=client)


def test_diverse_needs_a_dense_vector(client, corpus):
    qinb.upsert(corpus, "words", vectors={"bm25": qinb.Bm25("text")}, client=client,
                progress=False)
    with pytest.raises(QueryError, match="compares the hits by their dense vectors, and "
                                         "collection 'words' has none"):
        qinb.search("words", "planet", diverse=0.5, client=client)
