"""The collection follows its table (issue 25): rows that left the table leave the collection
with ``delete_missing=True``, from a frame or a file, embedding only what changed; rows can be
deleted by label or filter, a collection dropped, listed and described; on both engines."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import qinb
from qinb import embed
from qinb.errors import ArgumentError, CollectionError, InvalidRowsError

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}
WORDS = ["planet", "orbit", "bread", "oven", "river", "mountain", "violin", "chess", "garden"]
QUERIES = ["violin near the garden", "a river by the mountain", "bread in the oven", "chess"]


def table(n: int = 80) -> pd.DataFrame:
    return pd.DataFrame({
        "key": [f"r{i:03d}" for i in range(n)],
        "text": [f"{WORDS[i % 9]} number {i} near the {WORDS[(i * 4) % 9]}" for i in range(n)],
        "n": range(n)})


def cleaned(df: pd.DataFrame) -> pd.DataFrame:
    """Five rows dropped, two texts changed, one payload changed: a week of cleaning."""
    out = df.drop(index=[3, 17, 40, 41, 79]).copy()
    out.loc[5, "text"] = "a violin in the garden, restrung"
    out.loc[60, "text"] = "chess by the river"
    out.loc[7, "n"] = 700
    return out


@pytest.fixture
def embedded(monkeypatch):
    """The texts embedded by the dense model, as they are embedded."""
    seen: list[str] = []
    real = embed._embed_batch
    monkeypatch.setattr(embed, "_embed_batch", lambda items, runtime, *, query: (
        seen.extend(i.data for i in items if not query and i.obj.model == qinb.models.MINILM)
        or real(items, runtime, query=query)))
    return seen


def ranked(client, collection: str) -> list[list[str]]:
    return [qinb.search(collection, q, limit=10, client=client).index.tolist() for q in QUERIES]


@pytest.mark.parametrize("source", ["pandas", "parquet"])
def test_delete_missing_makes_the_collection_the_table_embedding_only_what_changed(
        source, client, tmp_path, embedded):
    df = table()
    qinb.upsert(df, "mirror", vectors=VECTORS, client=client, id_column="key", progress=False)
    new = cleaned(df)
    if source == "parquet":  # next week's export, in two files
        arrow = pa.Table.from_pandas(new, preserve_index=False)
        pq.write_table(arrow.slice(0, 40), tmp_path / "part-0.parquet")
        pq.write_table(arrow.slice(40), tmp_path / "part-1.parquet")
        new_source = str(tmp_path / "part-*.parquet")
    else:
        new_source = new
    embedded.clear()
    report = qinb.upsert(new_source, "mirror", vectors=VECTORS, client=client, id_column="key",
                         delete_missing=True, progress=False)
    assert (report.rows, report.upserted, report.payload_only, report.deleted) == (75, 3, 1, 5)
    assert sorted(embedded) == sorted(new.loc[[5, 60], "text"])  # the two changed texts only
    assert "75 rows, 3 upserted (1 payload only), 72 unchanged, 0 failed; 5 deleted" in str(report)
    back = qinb.read("mirror", client=client, progress=False)
    assert sorted(back.index) == sorted(new["key"]) and client.count("mirror") == 75
    assert back.loc["r007", "n"] == 700
    # the same hits as a collection built fresh from the cleaned table
    qinb.upsert(new, "fresh", vectors=VECTORS, client=client, id_column="key", progress=False)
    assert ranked(client, "mirror") == ranked(client, "fresh")
    # and again: nothing to do
    again = qinb.upsert(new, "mirror", vectors=VECTORS, client=client, id_column="key",
                        delete_missing=True, progress=False)
    assert (again.upserted, again.unchanged, again.deleted) == (0, 75, 0)


def test_a_failed_upsert_deletes_nothing_and_a_skipped_row_keeps_its_point(client):
    df = table(30)
    df.qdrant.upsert("keep", vectors=VECTORS, client=client, id_column="key", progress=False)
    bad = df.iloc[:20].copy()
    bad.loc[4, "text"] = "   "
    with pytest.raises(InvalidRowsError, match="Nothing was written"):
        bad.qdrant.upsert("keep", vectors=VECTORS, client=client, id_column="key",
                          delete_missing=True, progress=False)
    assert client.count("keep") == 30
    report = bad.qdrant.upsert("keep", vectors=VECTORS, client=client, id_column="key",
                               delete_missing=True, errors="skip", progress=False)
    assert (report.failed_rows, report.deleted) == (1, 10)
    # r004 failed its checks but is in the table: its stored point stays
    assert sorted(qinb.read("keep", client=client, progress=False).index) == \
        sorted(df["key"].iloc[:20])


def test_rows_deleted_by_label_or_filter_a_collection_dropped_listed_and_described(client, corpus):
    corpus.qdrant.upsert("docs", vectors=VECTORS, client=client, progress=False)
    corpus.qdrant.upsert("other", vectors={"bm25": qinb.Bm25("text")}, client=client,
                         progress=False)
    assert qinb.collections(client=client) == ["docs", "other"]
    assert qinb.delete("docs", ["doc00", "doc03", "not-there"], client=client) == 2
    assert qinb.delete("docs", filter={"topic": "cooking"}, client=client) == 6
    assert sorted(qinb.read("docs", client=client, progress=False).index) == \
        ["doc01", "doc02", "doc04", "doc05"]
    hits = qinb.search("docs", "pasta", client=client, limit=10)
    assert set(hits.index) <= {"doc01", "doc02", "doc04", "doc05"}

    about = qinb.info("docs", client=client)
    assert about.points == 4 and about.id_column is None and about.store == client.where()
    assert about.vectors.loc["text", ["kind", "model", "size"]].tolist() == [
        "text", qinb.models.MINILM, 384]
    assert about.vectors.loc["bm25", "model"] == "BM25 (english)"
    assert "collection 'docs'" in str(about) and "4 points" in str(about)

    qinb.drop("other", client=client)
    assert qinb.collections(client=client) == ["docs"]
    for call in (lambda: qinb.drop("other", client=client),
                 lambda: qinb.info("other", client=client),
                 lambda: qinb.delete("other", ["doc01"], client=client)):
        with pytest.raises(CollectionError, match=r"'other' does not exist.*collections here: docs"):
            call()
    with pytest.raises(ArgumentError, match=r"rows= .* or filter=, exactly one"):
        qinb.delete("docs", client=client)
    with pytest.raises(ArgumentError, match=r"for one row pass \['doc01'\]"):
        qinb.delete("docs", "doc01", client=client)


def test_an_empty_source_deletes_nothing(client):
    df = table(10)
    df.qdrant.upsert("kept", vectors=VECTORS, client=client, id_column="key", progress=False)
    report = qinb.upsert(df.iloc[:0], "kept", vectors=VECTORS, client=client,
                         id_column="key", delete_missing=True, progress=False)
    assert report.deleted == 0 and client.count("kept") == 10
