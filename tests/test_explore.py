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
# a corpus row with a word changed and punctuation moved, and one in other case
PLANET_COPY = "Saturn's rings are made of ice and rocks orbiting the planet!"
COOKING_COPY = "SIMMER THE TOMATO SAUCE WITH GARLIC AND BASIL UNTIL IT THICKENS."
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


def test_duplicates_groups_near_copies_and_keeps_the_first(client, stored):
    edited = pd.DataFrame({"text": [PLANET_COPY, COOKING_COPY], "topic": ["planets", "cooking"],
                           "n": [8, 9]}, index=pd.Index(["doc14", "doc15"], name="doc"))
    qinb.upsert(pd.concat([stored, edited]), "c", vectors=VECTORS, client=client,
                progress=False)
    d = qinb.duplicates("c", threshold=0.95, client=client, progress=False)
    # the three Jupiter rows (largest group first), the edited Saturn and the shouted sauce
    assert list(d.index) == ["doc00", "doc12", "doc13", "doc02", "doc14", "doc07", "doc15"]
    assert list(d["group"]) == [0, 0, 0, 1, 1, 2, 2]
    assert d["dup_of"].tolist()[1:3] == ["doc00", "doc00"] and d["dup_of"].isna().sum() == 3
    assert d.loc["doc14", "dup_of"] == "doc02" and d.loc["doc15", "dup_of"] == "doc07"
    assert (d["similarity"] >= 0.95).all() and d.loc["doc14", "text"] == PLANET_COPY
    clean = stored.drop(d.index[d["dup_of"].notna()].intersection(stored.index))
    assert len(clean) == 12 and "doc00" in clean.index
    # MiniLM reads no case: the shouted copy is the same text to it
    exact = qinb.duplicates("c", threshold=0.999, client=client, progress=False)
    assert list(exact.index) == ["doc07", "doc15"]


def test_duplicates_and_clusters_refuse_what_they_cannot_compare(client, corpus, stored):
    with pytest.raises(QueryError, match="threshold is a cosine similarity above 0 and at most "
                                         "1, not 2"):
        qinb.duplicates("c", threshold=2, client=client)
    with pytest.raises(QueryError, match="'bm25' is BM25 \\(sparse\\); pass using= a text"):
        qinb.duplicates("c", using="bm25", client=client)
    with pytest.raises(QueryError, match="collection 'c' has no vector 'pictures'"):
        qinb.clusters("c", using="pictures", client=client)
    with pytest.raises(QueryError, match="k=99: 'c' has 14 rows with vector 'text', so k is a "
                                         "whole number from 2 to 14"):
        qinb.clusters("c", k=99, client=client)
    qinb.upsert(corpus, "long", vectors={"text": qinb.Text("text", chunk_size=8)},
                client=client, progress=False)
    with pytest.raises(QueryError, match="vector 'text' is chunked"):
        qinb.duplicates("long", client=client)


def test_clusters_follow_the_topics_and_are_named_by_their_words(client, stored):
    c = qinb.clusters("c", k=2, client=client)
    assert len(c) == 14 and set(c["cluster"]) == {0, 1}
    by_topic = pd.crosstab(stored.loc[c.index, "topic"], c["cluster"])
    assert (by_topic.max(axis=1) == by_topic.sum(axis=1)).all()  # each topic in one cluster
    planets = c.loc["doc00", "cluster_label"]
    assert c.loc["doc00", "cluster"] == 0  # the larger cluster (8 planet rows) first
    assert "planet" in planets.split(", ") and c.loc["doc07", "cluster_label"] != planets
    again = qinb.clusters("c", k=2, client=client)
    assert again.equals(c)  # the same seed, the same clusters


def test_evaluate_measures_what_diversity_costs(client, stored):
    queries = pd.Series({"q1": "Jupiter, the largest gas giant planet"})
    qrels = pd.DataFrame({"query": ["q1"] * 3, "row": ["doc00", "doc12", "doc13"]})
    plain = qinb.evaluate("c", queries, qrels, using=["text"], k=3, deep=3, client=client,
                          progress=False)
    mixed = qinb.evaluate("c", queries, qrels, using=["text"], k=3, deep=3, client=client,
                          progress=False, diverse=0.5)
    assert plain["recall@3"].iloc[0] == 1.0  # the three near-copies are the top three
    assert mixed["recall@3"].iloc[0] == pytest.approx(1 / 3)  # as search(diverse=0.5) gives
