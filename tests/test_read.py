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
from qinb.errors import ArgumentError, CollectionError, StoreError
from qinb.objects import point_id
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
    # the vector "text" made from the column "text" comes back beside it, not over it
    assert some.columns.tolist() == ["text", "vector_text", "vector_bm25"]
    assert some["text"].tolist() == corpus.loc[some.index, "text"].tolist()
    bm25 = some["vector_bm25"].iloc[0]
    assert len(bm25["indices"]) == len(bm25["values"]) > 3


def test_vectors_come_back_as_stored(client, corpus):
    corpus.qdrant.upsert("vec", vectors=VECTORS, client=client, progress=False)
    back = qinb.read("vec", client=client, vectors=["text"], columns=["n"], progress=False)
    assert back.columns.tolist() == ["n", "vector_text"]
    vector = back.loc["doc03", "vector_text"]
    assert vector.shape == (384,) and vector.dtype == np.float32
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-3)
    # the vector read back is the one stored: its nearest point is its own row
    [hits] = client.query("vec", [Probe("text", vector)], limit=1)
    assert hits[0].id == point_id("doc03") and hits[0].score == pytest.approx(1.0, abs=1e-4)
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
    # with its vectors too: the source text is still there to upsert from
    with_vectors = qinb.read("first", client=client, vectors=True, progress=False)
    third = with_vectors.qdrant.upsert("third", vectors={"text": qinb.Text("text")},
                                       client=client, progress=False,
                                       payload=[c for c in corpus.columns])
    assert (third.upserted, third.embedded) == (len(corpus), 0)
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


def test_a_failed_export_leaves_the_earlier_file_whole(client, corpus, tmp_path, monkeypatch):
    corpus.qdrant.upsert("exp", vectors=VECTORS, client=client, progress=False)
    path = qinb.read("exp", client=client, to=tmp_path / "out" / "exp.parquet", progress=False)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with pytest.raises(StoreError, match=r"exp.parquet.*No space left on device.*unchanged"):
        qinb.read("exp", client=client, to=path, progress=False)
    monkeypatch.undo()
    assert path.read_bytes() == before and len(pq.read_table(path)) == len(corpus)
    assert [p.name for p in path.parent.iterdir()] == ["exp.parquet"]  # no partial file left


def test_export_targets_that_cannot_be_written_say_why(client, corpus, tmp_path):
    corpus.qdrant.upsert("exp", vectors=VECTORS, client=client, progress=False)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.parquet").mkdir()
    cases = {str(tmp_path / "x.csv"): "ends in .parquet",
             str(tmp_path / "panda"): "'pandas', 'arrow' or 'polars'",
             str(tmp_path / "adir.parquet"): "is a directory",
             str(tmp_path / "afile" / "out.parquet"): "is a file, not a directory"}
    for to, message in cases.items():
        with pytest.raises(ArgumentError, match=message):
            qinb.read("exp", client=client, to=to, progress=False)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "panda").exists()
