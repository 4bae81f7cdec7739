"""Search quality and interop on a mixed-topic corpus, with the real MiniLM model and real BM25."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import raw_nearest
from qdrant_client import models

import qinb

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


@pytest.fixture
def stored(corpus, client):
    corpus.qdrant.upsert("mixed", vectors=VECTORS, client=client, progress=False)
    return corpus


@pytest.mark.parametrize("using", ["text", "bm25", ["text", "bm25"]], ids=["dense", "bm25", "hybrid"])
def test_planet_query_ranks_planets_above_cooking(stored, client, using):
    hits = stored.qdrant.search("mixed", "which planet orbits the Sun", using=using,
                                limit=12, client=client)
    planet_ranks = hits.loc[hits["topic"] == "planets", "rank"]
    cooking_ranks = hits.loc[hits["topic"] == "cooking", "rank"]
    assert len(planet_ranks) >= 2
    assert planet_ranks.max() < (cooking_ranks.min() if len(cooking_ranks) else 99)
    assert list(hits["rank"]) == list(range(1, len(hits) + 1))
    assert hits["score"].is_monotonic_decreasing


def test_cooking_query_puts_cooking_first(stored, client):
    hits = stored.qdrant.search("mixed", "how long to bake a cake", limit=3, client=client)
    assert hits["topic"].tolist() == ["cooking"] * 3
    assert hits.index[0] == "doc08"  # the sponge cake


def test_hits_are_indexed_by_source_labels_and_carry_the_payload(stored, client):
    hits = stored.qdrant.search("mixed", "rings of ice", using="text", limit=1, client=client)
    assert hits.index.tolist() == ["doc02"]
    assert hits.index.name == "doc"
    row = hits.iloc[0]
    assert row["text"] == stored.loc["doc02", "text"]
    assert (row["topic"], row["n"]) == ("planets", 2)
    assert not [c for c in hits.columns if c.startswith("_qinb")]


def test_payload_columns_named_like_hit_columns_are_kept(client):
    df = pd.DataFrame({"text": ["a red apple", "a green pear"], "score": [5, 3], "id": ["x", "y"]})
    df.qdrant.upsert("clash", vectors={"text": qinb.Text("text")}, client=client, progress=False)
    hits = df.qdrant.search("clash", "apple", client=client)
    assert hits.iloc[0][["payload_score", "payload_id"]].tolist() == [5, "x"]
    assert hits["id"].tolist() == [0, 1] and hits["rank"].tolist() == [1, 2]


def test_empty_collection_gives_an_empty_frame(client, corpus):
    # an upsert of no rows leaves no collection; one made from the specs alone is empty
    from qinb.store import ensure_collection

    ensure_collection(client, "empty", VECTORS, None)
    hits = corpus.qdrant.search("empty", "anything", client=client)
    assert hits.empty and list(hits.columns) == ["score", "rank", "id", "score_text", "score_bm25"]


def test_dbsf_fusion_and_rrf_agree_on_the_top_hit(stored, client):
    rrf = stored.qdrant.search("mixed", "two small moons", client=client, limit=3)
    dbsf = stored.qdrant.search("mixed", "two small moons", client=client, limit=3, fusion="dbsf")
    assert rrf.index[0] == dbsf.index[0] == "doc01"
    assert not np.allclose(rrf["score"], dbsf["score"])


def test_filter_as_dict_and_as_models_filter(stored, client):
    by_dict = stored.qdrant.search("mixed", "planet", client=client,
                                   filter={"topic": "planets", "n": {"gte": 3}})
    assert sorted(by_dict.index) == ["doc03", "doc04", "doc05"]
    by_model = stored.qdrant.search(
        "mixed", "planet", client=client,
        filter=models.Filter(must=[models.FieldCondition(key="n", match=models.MatchAny(any=[0, 1]))]),
    )
    assert set(by_model.index) == {"doc00", "doc01", "doc06", "doc07"}


def test_more_like_this_by_row_label_excludes_the_row(stored, client):
    hits = stored.qdrant.search("mixed", like="doc09", using="text", limit=3, client=client)
    assert "doc09" not in hits.index
    assert hits["topic"].tolist() == ["cooking"] * 3


def test_more_like_this_by_point_id_through_the_plain_function(stored, client):
    target = qinb.to_points(stored, VECTORS)[0].id  # doc00, Jupiter
    hits = qinb.search("mixed", like=target, using=["text", "bm25"], limit=2, client=client)
    assert hits["topic"].tolist() == ["planets", "planets"]
    assert target not in hits["id"].tolist()


def test_query_may_be_a_document(stored, client):
    doc = models.Document(text="saturn rings", model="sentence-transformers/all-MiniLM-L6-v2")
    hits = stored.qdrant.search("mixed", doc, using="text", limit=1, client=client)
    assert hits.index[0] == "doc02"


def test_plain_qdrant_client_query_ranks_exactly_as_qinb(stored, client, local_models):
    from fastembed import TextEmbedding

    model = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2",
                          specific_model_path=str(local_models))
    query = "gas giant with storms"
    vector = next(iter(model.query_embed([query]))).tolist()
    plain = raw_nearest(client, "mixed", "text", vector, 12)
    ours = stored.qdrant.search("mixed", query, using="text", limit=12, client=client)
    assert [i for i, _ in plain] == ours["id"].tolist()
    assert np.allclose([s for _, s in plain], ours["score"])


def test_each_hybrid_hit_carries_each_vectors_own_score(client, corpus):
    corpus.qdrant.upsert("why", vectors=VECTORS, client=client, progress=False)
    query = "red planet moons"
    hits = corpus.qdrant.search("why", query, client=client, limit=12)
    dense = corpus.qdrant.search("why", query, using="text", client=client, limit=12)
    bm25 = corpus.qdrant.search("why", query, using="bm25", client=client, limit=12)
    assert list(hits.columns[:5]) == ["score", "rank", "id", "score_text", "score_bm25"]
    for label, row in hits.iterrows():
        assert row["score_text"] == pytest.approx(dense.loc[label, "score"], rel=1e-5)
        if label in bm25.index:
            assert row["score_bm25"] == pytest.approx(bm25.loc[label, "score"], rel=1e-5)
        else:  # no word in common: BM25 did not find it, and the frame says so
            assert math.isnan(row["score_bm25"])
    assert hits["score_bm25"].isna().sum() == 12 - len(bm25) > 0
    assert (dense["score_text"] == dense["score"]).all()  # one vector: its own score


def test_hit_cards_say_why_each_hit_matched(client, corpus):
    corpus.qdrant.upsert("why", vectors=VECTORS, client=client, progress=False)
    w = corpus.qdrant.widget("why", client=client, limit=12)
    w.search("red planet moons")
    cards = [box.children[0].value for box in w.cards.children]
    first = w.results.iloc[0]
    assert (f'<div class="qinb-why">text {first["score_text"]:.3g} · '
            f'bm25 {first["score_bm25"]:.3g}</div>') in cards[0]
    assert any('bm25 –</div>' in card for card in cards)  # a hit BM25 did not find
    assert not any("score_text:" in card for card in cards)  # not repeated as a payload field
