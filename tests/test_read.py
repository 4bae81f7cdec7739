"""Collections read back out as tables: payload and vectors, filtered, to Parquet, polars and
Arrow; and back in again without embedding anything."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import qinb
from qinb import _read
from qinb.errors import ArgumentError, CollectionError
from qinb.store import Probe

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}


def test_a_collection_reads_back_as_its_rows(client, corpus):
    corpus.qdrant.upsert("docs", vectors=VECTORS, client=client, progress=False)
    back = qinb.read("docs", client=client, progress=False)
    assert sorted(back.index) == sorted(corpus.index)
    assert back.loc[corpus.index].columns.tolist() == corpus.columns.tolist()
    # the values and labels; the index's name is not stored with the points
    pd.testing.assert_frame_equal(back.loc[corpus.index], corpus, check_dtype=False,
                                  check_index_type=False, check_names=False)

    some = qinb.read("docs", client=client, columns=["text"], vectors=True, progress=False,
                     filter={"n": {"lt": 3}})
    assert sorted(some.index) == sorted(corpus.index[corpus["n"] < 3])
    # the payload column "text" and the vector "text" share a name: the vector comes second
    assert some.columns.tolist() == ["text", "text", "bm25"]
    bm25 = some["bm25"].iloc[0]
    assert len(bm25["indices"]) == len(bm25["values"]) > 3


def test_vectors_come_back_as_stored(client, corpus):
    corpus.qdrant.upsert("vec", vectors=VECTORS, client=client, progress=False)
    back = qinb.read("vec", client=client, vectors=["text"], columns=["n"], progress=False)
    assert back.columns.tolist() == ["n", "text"]
    vector = back.loc["doc03", "text"]
    assert vector.shape == (384,) and vector.dtype == np.float32
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-3)
    # the vector read back is the one stored: its nearest point is its own row
    hits = client.query("vec", [Probe("text", vector)], limit=1)
    assert hits[0].payload["_qinb_row"] == "doc03" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ArgumentError, match="no vector 'image'"):
        qinb.read("vec", client=client, vectors=["image"])
    with pytest.raises(CollectionError, match="does not exist"):
        qinb.read("nope", client=client)


def test_read_back_and_upserted_again_embeds_nothing_new(client, corpus):
    corpus.qdrant.upsert("first", vectors={"text": qinb.Text("text")}, client=client,
                         progress=False)
    again = qinb.read("first", client=client, progress=False).qdrant.upsert(
        "second", vectors={"text": qinb.Text("text")}, client=client, progress=False)
    assert (again.upserted, again.embedded, again.cached) == (len(corpus), 0, len(corpus))
    assert sorted(qinb.read("second", client=client, progress=False).index) == sorted(corpus.index)


def test_a_big_collection_streams_to_parquet_a_page_at_a_time(client, tmp_path, monkeypatch):
    monkeypatch.setattr(_read, "PAGE", 64)
    df = pd.DataFrame({"text": [f"row {i} of many" for i in range(300)],
                       "n": range(300), "when": pd.date_range("2026-01-01", periods=300)})
    df.qdrant.upsert("many", vectors={"bm25": qinb.Bm25("text", avg_len=4)}, client=client,
                     progress=False)
    path = qinb.read("many", client=client, to=tmp_path / "out" / "many.parquet", progress=False)
    file = pq.ParquetFile(path)
    assert file.metadata.num_rows == 300 and file.metadata.num_row_groups == 5  # 64-point pages
    back = pq.read_table(path).to_pandas()
    assert sorted(back.index) == list(range(300))
    assert back.loc[7, "text"] == "row 7 of many" and back.loc[299, "n"] == 299
    # and the file is a source again, point for point
    report = qinb.upsert(path, "many-again", vectors={"bm25": qinb.Bm25("text", avg_len=4)},
                         client=client, progress=False, payload=["text", "n"])
    assert report.upserted == 300 and client.count("many-again") == 300


def test_polars_and_arrow_results(client, corpus):
    corpus.qdrant.upsert("kinds", vectors={"bm25": qinb.Bm25("text")}, client=client,
                         progress=False)
    table = qinb.read("kinds", client=client, to="arrow", progress=False)
    assert isinstance(table, pa.Table) and table.num_rows == len(corpus)
    frame = qinb.read("kinds", client=client, to="polars", progress=False, columns=["text"])
    assert isinstance(frame, pl.DataFrame) and frame.height == len(corpus)
    assert set(frame["text"]) == set(corpus["text"])
