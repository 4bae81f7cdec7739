"""One query path: what qinb.evaluate measures is what qinb.search returns, for every kind of
setup, and the first hits of a search do not change with how many are asked for."""

from __future__ import annotations

import pandas as pd
import pytest
import pytrec_eval

import qinb
from qinb.objects import point_id
from tests.conftest import COOKING, PLANETS
from tests.test_passages import CHUNKED, frame

QUERIES = pd.Series({
    "rings": "rings of ice around a planet",
    "bread": "how long to knead dough",
    "heat": "the hottest planet and its atmosphere",
    "moons": "a planet with two small moons",
    "pasta": "cooking pasta in salted water",
})
QRELS = pd.DataFrame([("rings", "long", 2), ("bread", "c0", 2), ("bread", "long", 1),
                      ("heat", "p2", 2), ("moons", "p1", 2), ("pasta", "c5", 2),
                      ("pasta", "long", 1)], columns=["query", "row", "relevance"])
SETUPS = [("text", "-"), ("bm25", "-"), ("plain", "-"), (("text", "bm25"), "rrf"),
          (("text", "bm25"), "dbsf"), (("plain", "bm25"), "rrf"), (("text", "plain", "bm25"), "dbsf")]


@pytest.fixture
def docs(client):
    """The long-text frame and 144 two-sentence rows: more than a prefetch of 50 reaches."""
    pairs = [f"{a} {b}" for a in PLANETS + COOKING for b in COOKING + PLANETS]
    extra = pd.DataFrame({"text": pairs, "topic": "pairs"},
                         index=pd.Index([f"x{i}" for i in range(len(pairs))], name="doc"))
    df = pd.concat([frame(), extra])
    specs = {**CHUNKED, "plain": qinb.Text("text")}
    with pytest.warns(qinb.QinbWarning, match="1 rows of 'plain'"):
        qinb.upsert(df, "docs", specs, client=client, progress=False)
    return df


def test_evaluate_scores_exactly_what_search_returns(client, docs):
    measures = {"ndcg_cut.10", "recall.10", "recip_rank"}
    judged: dict[str, dict[str, int]] = {q: {} for q in QUERIES.index}
    for (query, row, grade) in QRELS.itertuples(index=False):
        judged[query][str(point_id(row))] = grade
    evaluator = pytrec_eval.RelevanceEvaluator(judged, measures)
    result = qinb.evaluate("docs", QUERIES, QRELS, using=[u for u, _ in SETUPS],
                           fusion=["rrf", "dbsf"], client=client, progress=False, df=docs)
    checked = 0
    for using, fusion in SETUPS:
        group = [using] if isinstance(using, str) else list(using)
        run = {}
        for qid, text in QUERIES.items():
            hits = qinb.search("docs", text, using=group, fusion="rrf" if fusion == "-" else fusion,
                               limit=100, client=client)
            run[qid] = {str(i): float(100 - rank) for rank, i in enumerate(hits["id"])}
        per_query = evaluator.evaluate(run)
        ndcg = sum(m["ndcg_cut_10"] for m in per_query.values()) / len(per_query)
        row = result[(result["using"] == "+".join(group)) & (result["fusion"] == fusion)]
        assert len(row) == 1
        assert row["ndcg@10"].iloc[0] == pytest.approx(ndcg, abs=1e-9), (using, fusion)
        checked += 1
    assert checked == len(SETUPS)
    # the measures are not trivially equal: the setups differ, and none is hopeless
    assert result["ndcg@10"].nunique() > 3 and result["ndcg@10"].min() > 0.4


@pytest.mark.parametrize("using", [["text", "bm25"], ["plain", "bm25"], "text"])
@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_the_first_hits_do_not_change_with_the_limit(client, docs, using, fusion):
    for query in QUERIES:
        ten = qinb.search("docs", query, using=using, fusion=fusion, limit=10, client=client)
        twenty = qinb.search("docs", query, using=using, fusion=fusion, limit=20, client=client)
        three = qinb.search("docs", query, using=using, fusion=fusion, limit=3, client=client)
        assert len(ten) == 10 and len(twenty) == 20
        assert list(twenty["id"][:10]) == list(ten["id"])
        assert list(ten["id"][:3]) == list(three["id"])
        pd.testing.assert_series_equal(twenty["score"][:10], ten["score"], check_names=False)


def test_rows_tied_at_the_cut_come_back_the_same_after_a_copy(tmp_path):
    # templated texts: many rows share one BM25 score, and the cut at limit falls inside the tie
    df = pd.DataFrame({"text": [f"ticket {i}: printer is out of paper" for i in range(60)]})
    vectors = {"bm25": qinb.Bm25("text", avg_len=6)}
    store = qinb.connect(tmp_path / "a")
    # written in a shuffled order, so the engine's physical order is not the id order
    shuffled = df.sample(frac=1, random_state=3)
    shuffled.qdrant.upsert("tickets", vectors=vectors, client=store, progress=False)
    other = qinb.connect(tmp_path / "b")
    qinb.copy("tickets", to=other, source=store)
    first = qinb.search("tickets", "printer paper", using="bm25", limit=5, client=store)
    assert first["score"].nunique() == 1  # all tied
    again = qinb.search("tickets", "printer paper", using="bm25", limit=5, client=other)
    assert first.index.tolist() == again.index.tolist() == sorted(first.index, key=str)
    # and the first five of limit=20 are the hits of limit=5
    more = qinb.search("tickets", "printer paper", using="bm25", limit=20, client=other)
    assert more.index[:5].tolist() == first.index.tolist()
