"""Every table source gives the points a pandas frame gives: polars, Arrow, Parquet, CSV and JSON
Lines files, globs and iterables of frames, read a piece at a time, on both engines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import qinb
from qinb import sources
from qinb.errors import ArgumentError, InvalidRowsError, MissingDependencyError

VECTORS = {"bm25": qinb.Bm25("text", avg_len=8)}
WORDS = ["planet", "orbit", "bread", "oven", "river", "mountain", "violin", "chess", "garden"]


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    """Pieces of 16 rows, so the 40 rows of a source come in three."""
    monkeypatch.setattr(sources, "PIECE_ROWS", 16)


def frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({
        "text": [f"{WORDS[i % 9]} number {i} near the {WORDS[(i * 4) % 9]}" for i in range(n)],
        "n": range(n),
        "score": [i / 4 for i in range(n)],
        "tag": [WORDS[i % 3] for i in range(n)],
    })


def as_source(kind: str, df: pd.DataFrame, tmp_path):
    table = pa.Table.from_pandas(df, preserve_index=False)
    if kind == "pandas":
        return df
    if kind == "polars":
        return pl.from_pandas(df)
    if kind == "polars-lazy":
        return pl.from_pandas(df).lazy()
    if kind == "arrow-table":
        return table
    if kind == "arrow-reader":
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    if kind == "arrow-dataset":
        return ds.dataset(table)
    if kind == "parquet":
        pq.write_table(table, tmp_path / "rows.parquet", row_group_size=10)
        return tmp_path / "rows.parquet"
    if kind == "parquet-glob":  # two files, read in the order of their names
        pq.write_table(table.slice(0, 25), tmp_path / "part-0.parquet")
        pq.write_table(table.slice(25), tmp_path / "part-1.parquet")
        return str(tmp_path / "part-*.parquet")
    if kind == "csv":
        df.to_csv(tmp_path / "rows.csv", index=False)
        return str(tmp_path / "rows.csv")
    if kind == "jsonl":
        df.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
        return tmp_path / "rows.jsonl"
    if kind == "frames":  # chunks that keep their labels, as pd.read_csv(chunksize=) gives them
        return [df.iloc[i:i + 15] for i in range(0, len(df), 15)]
    if kind == "polars-frames":  # a generator: its length is not known
        return (pl.from_pandas(df.iloc[i:i + 15]) for i in range(0, len(df), 15))
    raise AssertionError(kind)


KINDS = ["pandas", "polars", "polars-lazy", "arrow-table", "arrow-reader", "arrow-dataset",
         "parquet", "parquet-glob", "csv", "jsonl", "frames", "polars-frames"]


def stored(client, collection: str) -> dict:
    records = client.retrieve(collection, list(range(40)))
    return {r.id: {k: r.payload[k] for k in ("text", "n", "score", "tag")} for r in records}


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_gives_the_points_a_pandas_frame_gives(kind, client, tmp_path):
    df = frame()
    df.qdrant.upsert("from-pandas", vectors=VECTORS, client=client, progress=False)
    report = qinb.upsert(as_source(kind, df, tmp_path), "from-source", vectors=VECTORS,
                         client=client, progress=False)
    assert (report.rows, report.upserted, report.failed_rows, report.embedded) == (40, 40, 0, 40)
    assert client.count("from-source") == 40
    assert stored(client, "from-source") == stored(client, "from-pandas")
    hits = qinb.search("from-source", "violin near the garden", using="bm25", limit=5, client=client)
    again = qinb.search("from-pandas", "violin near the garden", using="bm25", limit=5, client=client)
    assert hits.index.tolist() == again.index.tolist() and len(hits) == 5  # ties too
    # the same source again: nothing changed, nothing embedded
    rerun = qinb.upsert(as_source(kind, df, tmp_path), "from-source", vectors=VECTORS,
                        client=client, progress=False)
    assert (rerun.upserted, rerun.unchanged, rerun.embedded) == (0, 40, 0)


def test_a_bad_row_in_a_later_piece_stops_after_the_pieces_before_it(client, tmp_path):
    df = frame()
    df.loc[35, "text"] = "   "
    path = as_source("parquet", df, tmp_path)
    with pytest.raises(InvalidRowsError) as caught:
        qinb.upsert(path, "bad", vectors=VECTORS, client=client, progress=False)
    message = str(caught.value)
    assert "row 35" in message and "32 points were written" in message
    assert caught.value.failed["row"].tolist() == [35]
    assert client.count("bad") == 32  # the two pieces before it, each whole

    skipped = qinb.upsert(path, "bad", vectors=VECTORS, client=client, progress=False,
                          errors="skip")
    assert (skipped.rows, skipped.upserted, skipped.unchanged, skipped.failed_rows) == (40, 7, 32, 1)
    assert skipped.failed["row"].tolist() == [35]
    assert skipped.upserted + skipped.unchanged + skipped.failed_rows == skipped.rows


def test_an_id_repeated_in_a_later_piece_is_named(client):
    df = frame().assign(key=[f"k{i}" for i in range(40)])
    df.loc[33, "key"] = "k3"
    with pytest.raises(InvalidRowsError, match="duplicate id 'k3': an earlier piece"):
        qinb.upsert(pl.from_pandas(df), "dup", vectors=VECTORS, client=client, progress=False,
                    id_column="key")
    report = qinb.upsert(pl.from_pandas(df), "dup", vectors=VECTORS, client=client,
                         progress=False, id_column="key", errors="skip")
    assert (report.upserted, report.unchanged, report.failed["row"].tolist()) == (7, 32, ["k3"])
    assert client.count("dup") == 39


def test_frames_that_repeat_their_labels_are_refused_with_the_fix(client):
    df = frame()
    chunks = [df.iloc[i:i + 20].reset_index(drop=True) for i in (0, 20)]  # both labelled 0..19
    with pytest.raises(InvalidRowsError, match="duplicate id 0: an earlier piece"):
        qinb.upsert(chunks, "relabelled", vectors=VECTORS, client=client, progress=False)
    assert client.count("relabelled") == 20


def test_only_the_columns_needed_are_read_and_stored(client, tmp_path):
    df = frame().assign(blob=["x" * 1000] * 40)
    path = as_source("parquet", df, tmp_path)
    qinb.upsert(path, "narrow", vectors=VECTORS, client=client, progress=False, payload=["n"])
    payload = client.retrieve("narrow", [7])[0].payload
    assert payload["n"] == 7 and payload["text"] == df.loc[7, "text"] and "blob" not in payload
    assert "tag" not in payload


def test_a_source_of_no_frames_says_so(client):
    with pytest.warns(qinb.QinbWarning, match="the source has no rows"):
        report = qinb.upsert([], "none", vectors=VECTORS, client=client, progress=False)
    assert report.rows == 0 and not client.exists("none")


def test_what_the_source_knows_of_its_length(tmp_path):
    df = frame()
    assert sources.open_source(as_source("parquet-glob", df, tmp_path)).total == 40
    assert sources.open_source(as_source("polars", df, tmp_path)).total == 40
    assert sources.open_source(as_source("csv", df, tmp_path)).total is None  # reading counts it
    pieces = list(sources.open_source(as_source("arrow-reader", df, tmp_path)).pieces)
    assert [len(p) for p in pieces] == [16, 16, 8]  # batches of 7 gathered, numbered on
    assert pieces[-1].index.tolist() == list(range(32, 40))


def test_polars_frames_have_the_qdrant_namespace(client):
    lazy = pl.from_pandas(frame()).lazy().filter(pl.col("n") < 30)
    report = lazy.qdrant.upsert("polars", vectors=VECTORS, client=client, progress=False)
    assert (report.rows, report.upserted) == (30, 30)
    hits = pl.from_pandas(frame()).qdrant.search("polars", "chess", using="bm25", limit=3,
                                                 client=client)
    assert len(hits) == 3 and all("chess" in t for t in hits["text"])


def test_a_lazyframe_whose_row_order_changes_needs_id_column(client):
    rows = pl.from_pandas(frame())
    grouped = rows.lazy().group_by("tag").agg(pl.col("text").first())  # a new order each run
    with pytest.raises(ArgumentError, match=r"different order each time.*id_column="):
        qinb.upsert(grouped, "g", vectors=VECTORS, client=client, progress=False)
    with pytest.raises(ArgumentError, match="id_column="):
        qinb.upsert([grouped], "g", vectors=VECTORS, client=client, progress=False)
    assert not client.exists("g")
    report = qinb.upsert(grouped, "g", vectors=VECTORS, client=client, id_column="tag",
                         progress=False)
    kept = rows.lazy().group_by("tag", maintain_order=True).agg(pl.col("text").first())
    again = qinb.upsert(kept, "k", vectors=VECTORS, client=client, progress=False)
    assert report.upserted == again.upserted == rows["tag"].n_unique()


def test_sources_qinb_cannot_read_are_refused_with_what_it_takes(tmp_path):
    with pytest.raises(ArgumentError, match="no file matches"):
        qinb.upsert(str(tmp_path / "missing-*.parquet"), "c", vectors=VECTORS)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ArgumentError, match="files of one format"):
        qinb.upsert(tmp_path / "notes.txt", "c", vectors=VECTORS)
    (tmp_path / "broken.parquet").write_text("not parquet at all")
    with pytest.raises(ArgumentError, match="cannot be read as parquet"):
        qinb.upsert(tmp_path / "broken.parquet", "c", vectors=VECTORS)
    with pytest.raises(ArgumentError, match="not a int"):
        qinb.upsert(5, "c", vectors=VECTORS)
    assert qinb.connect().collections() == []
    # an iterable whose second item is no frame: the first frame's rows are written, and said
    with pytest.raises(ArgumentError, match=r"item 2 is a str.*40 points were written"):
        qinb.upsert([frame(), "text"], "c", vectors=VECTORS, progress=False)
    assert qinb.connect().count("c") == 40


def test_a_missing_optional_library_names_the_extra(monkeypatch, tmp_path):
    path = as_source("parquet", frame(), tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow.dataset", None)  # as if pyarrow were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'qinb\[arrow\]'"):
        qinb.upsert(path, "c", vectors=VECTORS)


def test_without_the_dask_extra_qinb_imports_and_upserts(tmp_path):
    """As after ``pip install qinb`` without ``[dask]``: a Python whose packages are this
    one's but for dask and distributed (wrapt is qinb's own dependency)."""
    import site

    packages = tmp_path / "site-packages"
    packages.mkdir()
    for installed in site.getsitepackages():
        for entry in Path(installed).iterdir():
            if entry.name.split("-")[0].split(".")[0] not in ("dask", "distributed") \
                    and not (packages / entry.name).exists():
                (packages / entry.name).symlink_to(entry)
    script = f"""
import pandas as pd, qinb
report = qinb.upsert(pd.DataFrame({{"text": ["a red planet", "a river"]}}), "c",
                     vectors={{"bm25": qinb.Bm25("text", avg_len=3)}},
                     client=qinb.connect({str(tmp_path / "store")!r}), progress=False)
print(report.upserted)
import dask
"""
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(
                             [str(Path(qinb.__file__).parents[1]), str(packages)])})
    assert out.stdout == "2\n", out.stderr
    assert "No module named 'dask'" in out.stderr


def test_a_csv_that_changes_type_part_way_says_so(client, tmp_path, monkeypatch):
    # pyarrow infers a CSV column's type from its first block: a later text breaks it
    # (blocks of 4 kB here, so that 400 rows span several)
    import pyarrow.csv as pacsv
    import pyarrow.dataset as pads

    df = frame(400).assign(code=[str(i) for i in range(399)] + ["not a number"])
    path = tmp_path / "changes.csv"
    df.to_csv(path, index=False)
    original = pads.dataset
    small = pads.CsvFileFormat(read_options=pacsv.ReadOptions(block_size=4096))
    monkeypatch.setattr(pads, "dataset", lambda files, format: original(files, format=small))
    with pytest.raises(ArgumentError, match=r"could not be read.*CSV conversion error|"
                                            r"changes\.csv' holds values the column types cannot "
                                            r"take.*'not a number'") as caught:
        qinb.upsert(path, "csv", vectors=VECTORS, client=client, progress=False)
    # Arrow reads ahead, so the error may come before any piece is written; what the message
    # says was written is what is stored
    said = str(caught.value)
    written = int(said.split(" points were written")[0].split()[-1]) if "points were" in said else 0
    assert (client.count("csv") if client.exists("csv") else 0) == written



def test_hybrid_hits_are_the_same_however_the_rows_were_written(client, tmp_path):
    """The same points written in another order, or from a file in pieces, give the same
    fused hits, ties included: RRF turns the engine's physical order inside a BM25 tie into
    ranks, unless every list is ordered by point id first (issue 25, item 2)."""
    df = frame(60)
    vectors = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}
    df.qdrant.upsert("forward", vectors=vectors, client=client, progress=False, batch_size=7)
    df.iloc[::-1].qdrant.upsert("backward", vectors=vectors, client=client, progress=False,
                                batch_size=7)
    qinb.upsert(as_source("parquet-glob", df, tmp_path), "file", vectors=vectors, client=client,
                progress=False)
    queries = ["violin near the garden", "number near the river", "bread", "chess number 7",
               "planet orbit mountain"]
    for fusion in ("rrf", "dbsf"):
        for query in queries:
            ranked = [qinb.search(name, query, fusion=fusion, limit=10, client=client).index.tolist()
                      for name in ("forward", "backward", "file")]
            assert ranked[0] == ranked[1] == ranked[2] and len(ranked[0]) == 10, (fusion, query)


@pytest.mark.parametrize("kind", ["pandas", "parquet", "csv", "polars-frames", "arrow-reader"])
def test_id_column_labels_every_hit_and_read_back_row(kind, client, tmp_path):
    """With id_column the rows are known by their ids whatever the source: hits, qinb.read
    (the index, named for the column) and the Parquet file it writes (issue 25, item 1)."""
    df = frame().assign(key=[f"w{i:03d}" for i in range(40)])
    qinb.upsert(as_source(kind, df, tmp_path), "keyed", vectors=VECTORS, client=client,
                id_column="key", progress=False)
    hits = qinb.search("keyed", "violin near the garden", limit=5, client=client)
    assert all(label.startswith("w") for label in hits.index)
    assert hits.index.tolist() == hits["key"].tolist()
    back = qinb.read("keyed", client=client, progress=False)
    assert back.index.name == "key" and sorted(back.index) == df["key"].tolist()
    assert "key" not in back.columns and back.loc["w007", "n"] == 7
    path = qinb.read("keyed", client=client, to=tmp_path / "keyed.parquet", progress=False)
    assert "key" in pq.read_schema(path).names
    # the table read back is a source again, keyed the same way: nothing to do
    for again in (back, path):
        report = qinb.upsert(again, "keyed", vectors=VECTORS, client=client, id_column="key",
                             progress=False)
        assert (report.unchanged, report.upserted, report.embedded) == (40, 0, 0)
