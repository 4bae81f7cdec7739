"""Nothing lost or changed: payload keys, the conversion table, row-level failures, counts."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import qinb
from qinb import embed

TEXT = {"t": qinb.Text("text")}


def _upsert(df, client, name="c", **kwargs):
    kwargs.setdefault("vectors", TEXT)
    return df.qdrant.upsert(name, client=client, progress=False, **kwargs)


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({0: ["int"], "0": ["str"], "text": ["hi"]}),
     "columns 0 and '0' would both be payload key '0'; rename one of them"),
    (pd.DataFrame({"_qinb_row": ["mine"], "text": ["hi"]}),
     "column '_qinb_row' starts with '_qinb', which qinb keeps for its own payload keys"),
    (pd.DataFrame([["a", "b"]], columns=["text", "text"]),
     "more than one column named text"),
    (pd.DataFrame([["a", "b"]], columns=pd.MultiIndex.from_tuples([("text", ""), ("y", "z")])),
     "MultiIndex columns; flatten them first"),
], ids=["int-and-str", "reserved", "repeated", "multiindex"])
def test_columns_that_would_lose_a_value_are_refused_before_anything_is_made(client, frame,
                                                                              message):
    with pytest.raises(qinb.ColumnError) as err:
        _upsert(frame, client)
    assert message in str(err.value)
    assert not client.exists("c")


def test_a_search_with_a_frame_of_multiindex_columns_still_returns_the_hits(client):
    df = pd.DataFrame({"text": ["a red planet", "a loaf of bread"], "n": [1, 2]})
    _upsert(df, client, vectors={"b": qinb.Bm25("text")})
    wide = df.copy()
    wide.columns = pd.MultiIndex.from_tuples([("text", ""), ("n", "count")])
    hits = qinb.search("c", "planet", client=client, df=wide)
    assert hits.index.tolist() == [0] and hits["text"].tolist() == ["a red planet"]


@pytest.mark.parametrize("vectors", [[qinb.Text("text")], qinb.Text("text"), "text",
                                     {"a/b": qinb.Text("text")}, {"a>b": qinb.Text("text")},
                                     {'a"b': qinb.Text("text")}, {"t": "text"}])
def test_vectors_argument_mistakes_say_how_to_write_it(client, vectors):
    with pytest.raises(qinb.ArgumentError) as err:
        _upsert(pd.DataFrame({"text": ["hi"]}), client, vectors=vectors)
    assert "qinb.Text" in str(err.value) or "letters, digits" in str(err.value)


def test_a_repeated_label_never_lends_its_columns_to_the_stored_row(client):
    df = pd.DataFrame({"text": ["a cat", "a dog"], "note": ["kept", "refused"]}, index=["a", "a"])
    report = _upsert(df, client, errors="skip", payload=["text"])
    assert (report.upserted, report.failed_rows) == (1, 1)
    hits = df.qdrant.search("c", "cat", client=client)
    assert hits["text"].tolist() == ["a cat"] and "note" not in hits.columns
    like = df.qdrant.search("c", like="a", client=client)
    assert like.empty  # the only point is the one asked about


def test_payload_values_follow_the_conversion_table(client, tmp_path):
    from PIL import Image

    picture = Image.new("RGB", (40, 20), (200, 30, 30))
    df = pd.DataFrame({
        "text": ["first", "second"],
        "tags": [{"b", "a", "c"}, frozenset({3, 1})],
        "price": [decimal.Decimal("1.50"), decimal.Decimal("2")],
        "wait": [dt.timedelta(minutes=1), pd.Timedelta(seconds=60)],
        "when": [pd.Timestamp("2024-05-01 12:00"), np.datetime64("2024-05-02")],
        "big": [2**70, -1],
        "picture": [picture, None],
        "nested": [{1: [np.int64(2), np.nan]}, [("x", 1.5)]],
    }, index=["r1", "r2"])
    _upsert(df, client)
    stored = {r.payload["_qinb_row"]: r.payload for r in client.scroll("c", limit=10)[0]}
    assert stored["r1"]["tags"] == ["a", "b", "c"] and stored["r2"]["tags"] == [1, 3]
    assert (stored["r1"]["price"], stored["r2"]["price"]) == (1.5, 2)
    assert stored["r1"]["wait"] == stored["r2"]["wait"] == 60.0  # both kinds of timedelta
    assert stored["r1"]["when"] == "2024-05-01T12:00:00"
    assert stored["r2"]["when"] == "2024-05-02T00:00:00"
    assert (stored["r1"]["big"], stored["r2"]["big"]) == (str(2**70), -1)
    assert stored["r1"]["picture"].startswith("data:image/jpeg;base64,")
    assert stored["r2"]["picture"] is None
    assert stored["r1"]["nested"] == {"1": [2, None]} and stored["r2"]["nested"] == [["x", 1.5]]
    # a second run in this process skips every row: the conversions are deterministic
    assert _upsert(df, client).unchanged == 2


def test_payload_hashes_are_the_same_in_every_process():
    script = textwrap.dedent("""
        import decimal, datetime, pandas as pd
        from PIL import Image
        from qinb.objects import payload_hash
        from qinb.payload import convert
        cells = {"s": {"pear", "apple", "fig"}, "p": Image.new("L", (9, 9), 7),
                 "d": decimal.Decimal("3.25"), "t": datetime.timedelta(hours=2)}
        print(payload_hash({k: convert(v) for k, v in cells.items()}))
    """)
    hashes = {subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                             text=True, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin"}
                             ).stdout.strip() for seed in ("1", "2", "3")}
    assert len(hashes) == 1 and len(next(iter(hashes))) == 32


def test_a_value_with_no_conversion_fails_only_its_row(client):
    class Gadget:
        pass

    df = pd.DataFrame({"text": ["good", "bad", "fine"], "thing": ["x", Gadget(), 3]})
    with pytest.raises(qinb.InvalidRowsError) as err:
        _upsert(df, client)
    assert "cannot store a Gadget in a payload" in str(err.value)
    assert not client.exists("c")
    report = _upsert(df, client, errors="skip")
    assert (report.upserted, report.failed_rows) == (2, 1)
    assert report.failed[["row", "column"]].values.tolist() == [[1, "thing"]]


def test_invalid_unicode_fails_its_row_and_the_counts_add_up(client):
    # lone surrogates in a text, in a payload column and in a label; NaN and None labels
    # (object columns: pandas' Arrow-backed strings, its default with pyarrow, refuse them)
    df = pd.DataFrame({"text": ["bad \ud800", "good text", None, "also good", "fine"],
                       "note": ["", "", "", "x \udfff", ""]},
                      index=pd.Index([np.nan, "ok", None, "n", "lab\udc80"], dtype=object),
                      dtype=object)
    report = _upsert(df, client, errors="skip")
    assert (report.upserted, report.unchanged, report.failed_rows) == (1, 0, 4)
    assert report.upserted + report.unchanged + report.failed_rows == report.rows
    assert "4 failed" in str(report) and "\\ud800" in str(report)
    reasons = report.failed["reason"].tolist()
    assert sum("lone surrogate" in r for r in reasons) == 3
    assert client.count("c") == 1


def test_a_cell_the_model_cannot_embed_fails_only_its_row(client, monkeypatch):
    # STAND-IN for a tokenizer that chokes on one input: the real model, failing on one text
    real = embed._embed_batch

    def choking(items, runtime, *, query):
        if any("POISON" in str(i.data) for i in items):
            raise RuntimeError("tokenizer failed")
        return real(items, runtime, query=query)

    monkeypatch.setattr(embed, "_embed_batch", choking)
    df = pd.DataFrame({"text": [f"row number {i}" for i in range(9)] + ["POISON pill"]})
    report = _upsert(df, client, errors="skip", vectors={"t": qinb.Text("text"),
                                                         "b": qinb.Bm25("text")})
    assert (report.upserted, report.failed_rows) == (9, 1)
    assert report.failed.values.tolist() == [
        [9, "text", "sentence-transformers/all-MiniLM-L6-v2 cannot embed it "
                    "(RuntimeError: tokenizer failed)"]]
    assert client.count("c") == 9
    with pytest.raises(qinb.InvalidRowsError) as err:
        _upsert(df, client, name="d")
    assert "row 9 text" in str(err.value) and "0 points were written" in str(err.value)
    assert not client.exists("d")  # it created the collection and wrote nothing: gone again


def test_ids_beyond_64_bits_are_refused_up_front(client):
    df = pd.DataFrame({"text": ["too big", "fine"]}, index=[2**64, 2**64 - 1])
    with pytest.raises(qinb.InvalidRowsError) as err:
        _upsert(df, client)
    assert "id 18446744073709551616 is too large" in str(err.value)
    report = _upsert(df, client, errors="skip")
    assert report.upserted == 1 and client.retrieve("c", [2**64 - 1])[0].id == 2**64 - 1
