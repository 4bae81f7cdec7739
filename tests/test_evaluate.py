"""qinb.evaluate: trec_eval's numbers on a hand-checked example, the shipped labelled set, the
plot, and the mistakes a user can make."""

from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest

import qinb
from qinb import embed

matplotlib.use("Agg")


@pytest.fixture
def fruit(client):
    df = pd.DataFrame({"text": ["apple", "apple banana", "cherry", "banana split", "plum"]},
                      index=["d1", "d2", "d3", "d4", "d5"])
    df.qdrant.upsert("fruit", vectors={"bm25": qinb.Bm25("text")}, client=client, progress=False)
    return df


def test_the_measures_match_a_hand_computed_example(fruit, client):
    # BM25 ranks the shorter "apple" first; d3 shares no word with the query and is never found
    assert qinb.search("fruit", "apple", client=client).index.tolist() == ["d1", "d2"]
    queries = pd.Series({"q": "apple"})
    qrels = pd.DataFrame({"query": ["q", "q"], "row": ["d2", "d3"], "relevance": [2, 1]})
    result = qinb.evaluate("fruit", queries, qrels, client=client, progress=False)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)  # d2 then d3
    found = 2 / math.log2(3)  # d2 at rank 2; gains are the grades, as trec_eval takes them
    assert result.to_dict("records") == [{
        "using": "bm25", "fusion": "-", "ndcg@10": pytest.approx(found / ideal),
        "recall@10": 0.5, "recall@100": 0.5, "mrr": 0.5, "queries": 1}]
    assert found / ideal == pytest.approx(0.4796, abs=1e-4)


@pytest.fixture(scope="module")
def python_docs(tmp_path_factory):
    store = qinb.EdgeStore(tmp_path_factory.mktemp("eval"))
    df = qinb.datasets.python_topics()
    # whole topics, cut at the window (bench/longdocs.py compares passages): qinb says so
    with pytest.warns(qinb.QinbWarning, match=r"31 rows of 'text' \(longest 16849 tokens"):
        df.qdrant.upsert("python-docs", vectors={"text": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                         client=store, progress=False)
    yield store, df
    store.close()


def test_on_the_shipped_questions_the_hybrid_beats_either_vector_alone(python_docs, monkeypatch):
    store, df = python_docs
    queries, qrels = qinb.datasets.python_questions()
    assert len(queries) == 34 and set(qrels["row"]) <= set(df.index)
    embedded = []
    real = embed._embed_batch
    monkeypatch.setattr(embed, "_embed_batch", lambda items, runtime, *, query: (
        embedded.extend(i.obj.model for i in items) or real(items, runtime, query=query)))
    result = qinb.evaluate("python-docs", queries, qrels, fusion=["rrf", "dbsf"], client=store,
                           df=df, progress=False)
    assert list(zip(result["using"], result["fusion"], strict=True)) == [
        ("text+bm25", "dbsf"), ("text+bm25", "rrf"), ("text", "-"), ("bm25", "-")]
    ndcg = dict(zip(result["using"] + " " + result["fusion"], result["ndcg@10"], strict=True))
    assert min(ndcg["text+bm25 dbsf"], ndcg["text+bm25 rrf"]) > max(ndcg["text -"], ndcg["bm25 -"])
    assert (result["queries"] == 34).all()
    # each question embedded once per model, whatever the number of configurations
    assert sorted(embedded) == sorted(["qdrant/bm25", qinb.models.MINILM] * 34)
    scores = qinb.query_scores(result)
    assert len(scores) == 4 * 34 and set(scores["query"]) == set(queries.index)
    assert scores.groupby(["using", "fusion"])["ndcg@10"].mean()[("bm25", "-")] == pytest.approx(
        ndcg["bm25 -"])


def test_the_plot_shows_configurations_and_per_query_differences(python_docs, artifacts):
    store, df = python_docs
    queries, qrels = qinb.datasets.python_questions()
    result = qinb.evaluate("python-docs", queries, qrels, client=store, df=df, progress=False)
    fig = qinb.plot_evaluation(result, compare=("text+bm25 · rrf", "bm25"))
    fig.savefig(artifacts / "plot_evaluation.png", dpi=70)
    left, right = fig.get_axes()
    assert [t.get_text() for t in left.get_yticklabels()] == ["text+bm25 · rrf", "text", "bm25"]
    assert len(right.patches) == 34
    scores = qinb.query_scores(result)
    wide = scores.pivot_table(index="query", columns="using", values="ndcg@10")
    better = int((wide["text+bm25"] > wide["bm25"]).sum())
    worse = int((wide["text+bm25"] < wide["bm25"]).sum())
    assert f"{better} queries better, {worse} worse" in right.get_title()
    with pytest.raises(qinb.ArgumentError, match="no configuration 'dense'"):
        qinb.plot_evaluation(result, compare=("dense", "bm25"))


def test_mistakes_in_the_labelled_set_say_what_to_fix(fruit, client):
    queries = pd.Series({"q": "apple"})
    with pytest.raises(qinb.ArgumentError, match="needs the columns 'query' and 'row'"):
        qinb.evaluate("fruit", queries, pd.DataFrame({"query": ["q"], "doc": ["d1"]}),
                      client=client)
    with pytest.raises(qinb.QueryError, match="no qrels row names a query"):
        qinb.evaluate("fruit", queries, pd.DataFrame({"query": ["other"], "row": ["d1"]}),
                      client=client)
    with pytest.raises(qinb.QueryError, match="has no vector 'text'"):
        qinb.evaluate("fruit", queries, pd.DataFrame({"query": ["q"], "row": ["d1"]}),
                      using=["text"], client=client)
    with pytest.raises(qinb.ArgumentError, match="fusion must be 'rrf' or 'dbsf'"):
        qinb.evaluate("fruit", queries, pd.DataFrame({"query": ["q"], "row": ["d1"]}),
                      fusion="mean", client=client)
    # the texts where the row labels belong: no judged row is in the collection
    with pytest.raises(qinb.QueryError, match=r"none of the 2 rows .* labelled like \['d"):
        qinb.evaluate("fruit", queries, pd.DataFrame({"query": ["q", "q"],
                                                      "row": ["apple", "cherry"]}), client=client)
    with pytest.warns(qinb.QinbWarning, match="1 of the 2 rows the qrels judge are not in 'fruit'"):
        result = qinb.evaluate("fruit", queries, pd.DataFrame({"query": ["q", "q"],
                                                               "row": ["d1", "d9"]}),
                               client=client, progress=False)
    assert result["recall@100"].iloc[0] == 0.5  # d9 counts as relevant and never found


def test_bm25_fitted_to_the_data_measures_once_and_keeps_the_saved_length(client):
    df = pd.DataFrame({"text": ["red apples", "green pear trees", "a blue sky over the sea"]})
    spec = {"bm25": qinb.Bm25("text", avg_len="auto")}
    # tokens after stopwords and stemming: red appl | green pear tree | blue sky sea
    assert qinb.Bm25("text").measure(df["text"].tolist()) == pytest.approx(8 / 3, abs=0.01)
    df.qdrant.upsert("fit", vectors=spec, client=client, progress=False)
    saved = client.shape("fit").metadata["qinb"]["vectors"]["bm25"]["options"]
    assert saved == {"language": "english", "avg_len": pytest.approx(2.67)}
    # a later upsert of other texts keeps the saved length: nothing stored is re-embedded
    more = pd.concat([df, pd.DataFrame({"text": ["one very long sentence " * 20]}, index=[3])])
    report = more.qdrant.upsert("fit", vectors=spec, client=client, progress=False)
    assert (report.unchanged, report.upserted) == (3, 1)
    assert report.avg_len == {"bm25": pytest.approx(2.67, abs=0.01)}
    assert "vector 'bm25': BM25 avg_len 2.7 tokens (fitted)" in str(report)
    assert client.shape("fit").metadata["qinb"]["vectors"]["bm25"]["options"] == saved
    assert qinb.search("fit", "pear", client=client).index.tolist() == [1]
    points = more.qdrant.to_points(vectors=spec)
    assert points[0].vector["bm25"].options["avg_len"] == pytest.approx(
        qinb.Bm25("text").measure(more["text"].tolist()))
    with pytest.raises(qinb.ArgumentError, match="avg_len must be a positive number"):
        qinb.Bm25("text", avg_len="mean")


def test_fitting_bm25_on_a_collection_made_with_the_default_length_is_a_conflict(client):
    # as avg_len=900 is: the stored vectors were made with another length (issue 18, item 5)
    df = pd.DataFrame({"text": ["red apples", "green pear trees"]})
    df.qdrant.upsert("default", vectors={"bm25": qinb.Bm25("text")}, client=client, progress=False)
    for other in ("auto", 900):
        with pytest.raises(qinb.SpecConflictError, match=r"default avg_len|'avg_len': 900"):
            df.qdrant.upsert("default", vectors={"bm25": qinb.Bm25("text", avg_len=other)},
                             client=client, progress=False)
    assert client.shape("default").metadata["qinb"]["vectors"]["bm25"]["options"] == {
        "language": "english"}
