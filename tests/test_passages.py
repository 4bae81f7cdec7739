"""Long texts: chunked vectors (passages as one multivector per row) on both engines, and the
warning when a text is cut at the model's window. Real all-MiniLM-L6-v2, real engines."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import qinb
from qinb.errors import ArgumentError, InvalidRowsError, QinbWarning, SpecConflictError
from tests.conftest import COOKING, PLANETS

SATURN = "Saturn's rings are made of ice and rock orbiting the planet."
CHUNKED = {"text": qinb.Text("text", chunk_size=64, chunk_overlap=8), "bm25": qinb.Bm25("text")}


def long_text(tail: str = SATURN, repeats: int = 12) -> str:
    """About 900 tokens of cooking, then ``tail``: its end lies past the model's window."""
    paragraphs = [" ".join(COOKING[i % len(COOKING)] for i in range(k, k + 3)) for k in range(repeats)]
    return "\n\n".join([*paragraphs, tail])


def frame(tail: str = SATURN) -> pd.DataFrame:
    rows = [{"text": t, "topic": "planets"} for t in PLANETS if "Saturn" not in t]
    rows += [{"text": t, "topic": "cooking"} for t in COOKING]
    rows.append({"text": long_text(tail), "topic": "mixed"})
    labels = [f"p{i}" for i in range(5)] + [f"c{i}" for i in range(6)] + ["long"]
    return pd.DataFrame(rows, index=pd.Index(labels, name="doc"))


def test_a_sentence_past_the_window_is_found_and_shown(client):
    df = frame()
    with pytest.warns(QinbWarning, match=r"1 rows of 'text' \(longest \d+ tokens, window 510\)"):
        cut = qinb.upsert(df, "cut", {"text": qinb.Text("text")}, client=client, progress=False)
    assert cut.truncated == 1 and cut.vectors.loc["text", "truncated"] == 1
    assert cut.vectors.loc["text", "longest"] > 510
    assert "were cut; chunk_size= keeps the rest" in str(cut)

    with warnings.catch_warnings():
        warnings.simplefilter("error", QinbWarning)  # chunked: nothing is cut, nothing to warn
        report = qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    assert report.upserted == 12 and report.truncated == 0
    assert report.passages > 12  # the long row is several passages, each short row one
    # the long row repeats its paragraphs' sentences: identical passages are embedded once
    assert report.embedded + report.cached + report.shared == report.objects

    query = "rings of ice and rock around Saturn"
    truncated = qinb.search("cut", query, using="text", client=client)
    chunked = qinb.search("docs", query, using="text", client=client)
    assert "long" not in truncated.index[:3]  # its vector saw only the cooking
    assert chunked.index[0] == "long"
    assert SATURN in chunked.loc["long", "passage"]
    assert len(chunked.loc["long", "passage"]) < len(df.loc["long", "text"]) / 4
    # a dense search's score of a chunked row is its best passage's
    assert chunked.loc["long", "passage_score"] == pytest.approx(chunked.loc["long", "score"], abs=1e-4)
    assert chunked.index.is_unique and set(chunked.index) <= set(df.index)  # hits are rows
    # every passage is in the frame's attrs, for the detail view; the best is the one shown
    spans = chunked.attrs["passages"][chunked.loc["long", "id"]]
    start, end, _ = max(spans, key=lambda s: s[2])
    assert df.loc["long", "text"][start:end] == chunked.loc["long", "passage"]

    hybrid = qinb.search("docs", query, using=["text", "bm25"], client=client)
    assert hybrid.index[0] == "long" and {"score_text", "score_bm25", "passage"} <= set(hybrid.columns)


def test_a_query_longer_than_the_window_is_warned_about(client):
    qinb.upsert(frame(), "docs", CHUNKED, client=client, progress=False)
    with pytest.warns(QinbWarning, match=r"the query is \d+ tokens long.*first 510"):
        qinb.search("docs", long_text(), using="text", client=client)


def test_one_changed_paragraph_embeds_only_its_passages(client):
    df = frame()
    first = qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    again = qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    assert (again.upserted, again.unchanged, again.embedded) == (0, 12, 0)

    changed = frame("Neptune's winds are the fastest in the solar system, far faster than Saturn's.")
    report = qinb.upsert(changed, "docs", CHUNKED, client=client, progress=False)
    assert report.upserted == 1 and report.unchanged == 11
    # the long row's other passages are the same objects: they come from the cache
    assert 1 <= report.vectors.loc["text", "embedded"] <= 2
    assert report.vectors.loc["text", "cached"] >= 1
    hits = qinb.search("docs", "fastest winds in the solar system", using="text", client=client)
    assert hits.index[0] == "long" and "Neptune's winds" in hits.loc["long", "passage"]

    other = qinb.upsert(df, "elsewhere", CHUNKED, client=client, progress=False)
    assert other.vectors.loc["text", "embedded"] == 0  # another collection: all from the cache
    assert other.vectors.loc["text", "cached"] == first.vectors.loc["text", "embedded"]


def test_filters_more_like_this_and_the_map_work_on_passages(client):
    df = frame()
    qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    hits = qinb.search("docs", "planets and their moons", using="text", client=client,
                       filter={"topic": "mixed"})
    assert list(hits.index) == ["long"]
    like = qinb.search("docs", like="long", using="text", client=client, df=df)
    assert "long" not in like.index and len(like) == 10
    assert like.index[0].startswith("c")  # the long row is mostly cooking
    assert like["passage"].notna().all()
    from qinb.store import dense_vectors

    _, matrix = dense_vectors(client, "docs", "text", sample=100)
    assert matrix.shape == (12, 384)  # a chunked row's point on the map: its passages' mean


def test_copy_keeps_passages(client, tmp_path):
    df = frame()
    qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    other = qinb.connect(":memory:") if isinstance(client, qinb.EdgeStore) else \
        qinb.connect(tmp_path / "edge")
    assert qinb.copy("docs", to=other, source=client, progress=False) == 12
    query = "rings of ice and rock around Saturn"
    here = qinb.search("docs", query, using="text", client=client)
    there = qinb.search("docs", query, using="text", client=other)
    assert list(there.index) == list(here.index)
    assert list(there["passage"]) == list(here["passage"])
    np.testing.assert_allclose(there["score"], here["score"], atol=1e-5)


def test_changing_chunk_size_is_a_spec_conflict(client):
    qinb.upsert(frame(), "docs", CHUNKED, client=client, progress=False)
    other = {**CHUNKED, "text": qinb.Text("text", chunk_size=128)}
    with pytest.raises(SpecConflictError, match=r"chunk_size=64, chunk_overlap=8.*chunk_size=128"):
        qinb.upsert(frame(), "docs", other, client=client, progress=False)
    with pytest.raises(SpecConflictError, match="no chunk_size"):
        qinb.upsert(frame(), "docs", {**CHUNKED, "text": qinb.Text("text")}, client=client,
                    progress=False)
    assert client.count("docs") == 12


def test_a_row_past_the_multivector_cap_fails_alone(client):
    df = frame()
    df.loc["huge"] = [" ".join(["word"] * 30_000), "mixed"]
    spec = {"text": qinb.Text("text", chunk_size=8)}
    # the long row comes in a chunk of its own, after the 12 rows before it were written
    with pytest.raises(InvalidRowsError, match=r"'huge'.*passages of 8 tokens; a row holds at "
                                               r"most 2730 .*12 points were written before it"):
        qinb.upsert(df, "docs", spec, client=client, progress=False)
    report = qinb.upsert(df, "docs", spec, client=client, progress=False, errors="skip")
    assert (report.unchanged, report.failed_rows, client.count("docs")) == (12, 1, 12)
    assert report.failed.iloc[0]["row"] == "huge" and "at most 2730" in report.failed.iloc[0]["reason"]


def test_chunk_arguments_are_checked():
    with pytest.raises(ArgumentError, match="an Image vector has none to split"):
        qinb.Image("photo", chunk_size=64)
    with pytest.raises(ArgumentError, match="chunk_overlap must be"):
        qinb.Text("text", chunk_size=64, chunk_overlap=64)
    with pytest.raises(ArgumentError, match="chunk_overlap= needs chunk_size="):
        qinb.Text("text", chunk_overlap=8)
    with pytest.raises(ArgumentError, match=r"longer than .* window of 510 tokens"):
        qinb.upsert(frame(), "docs", {"text": qinb.Text("text", chunk_size=600)}, progress=False)
    assert "docs" not in qinb.connect().collections()  # refused before anything was made
    with pytest.raises(ArgumentError, match="Inference API cannot make"):
        qinb.to_points(frame(), CHUNKED)
    assert qinb.Text("text", chunk_size=64) != qinb.Text("text", chunk_size=128)
    assert "chunk_size=64" in repr(qinb.Text("text", chunk_size=64))


def test_passages_are_searched_exactly_without_a_graph(tmp_path):
    """An HNSW graph on row-to-row MaxSim found a third of the true top 10 for one-passage
    queries (bench/multivector_hnsw.py): Qdrant Edge gets no graph for a chunked vector."""
    import json

    store = qinb.connect(tmp_path)
    with pytest.warns(QinbWarning, match="1 rows of 'plain'"):
        qinb.upsert(frame(), "docs", {**CHUNKED, "plain": qinb.Text("text")}, client=store,
                    progress=False)
    config = json.loads((tmp_path / "docs" / "shard" / "edge_config.json").read_text())
    assert config["vectors"]["text"]["hnsw_config"]["m"] == 0
    assert config["vectors"]["text"]["multivector_config"] == {"comparator": "max_sim"}
    assert "hnsw_config" not in config["vectors"]["plain"]  # plain dense vectors keep the graph


def test_rows_with_many_passages_come_fewer_to_a_chunk(client, monkeypatch):
    """A chunk holds about CHUNK_ROWS objects per vector, not CHUNK_ROWS rows: long rows
    must not multiply the vectors held in memory at once. Rows are put in chunks before they
    are split (unchanged rows never are), by a guess of their passages from their length
    that errs high for English (four characters a token)."""
    import qinb.ingest as ingest
    import qinb.ingest.loop as loop

    df = pd.DataFrame({"text": [long_text(f"Row {i} ends here.") for i in range(8)] + COOKING,
                       "topic": "t"}, index=[f"r{i}" for i in range(14)])
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 40)
    seen = []
    real = loop.resolve
    monkeypatch.setattr(loop, "resolve", lambda changes, *a: (
        seen.append(sum(len(c.items["text"].items) for c in changes.writes)) or real(changes, *a)))
    report = qinb.upsert(df, "docs", {"text": qinb.Text("text", chunk_size=64)}, client=client,
                         progress=False)
    assert report.upserted == 14 and report.passages == sum(seen)
    assert (report.passages - len(COOKING)) / 8 >= 12  # each long row is a dozen passages
    # 40 rows would be one chunk; 40 objects make several, none past 40 (no row has 40 alone):
    # each long row is guessed at 20 passages (2,470 characters), so two long rows a chunk
    assert seen == [24, 24, 24, 24, 6]


def test_a_payload_column_named_passage_keeps_its_value(client):
    df = frame().assign(passage="chapter 1")
    qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    hits = qinb.search("docs", "rings of ice around Saturn", using="text", client=client)
    assert SATURN in hits.loc["long", "passage"]
    assert (hits["payload_passage"] == "chapter 1").all()


def test_the_truncation_warning_points_at_the_callers_line(tmp_path):
    """The warning names the notebook's line, not a line inside qinb, through the accessor too."""
    df = frame()
    store = qinb.connect(tmp_path)
    with pytest.warns(QinbWarning) as caught:
        df.qdrant.upsert("docs", vectors={"text": qinb.Text("text")}, client=store, progress=False)
    assert [w.filename for w in caught] == [__file__]


def test_a_payload_only_change_keeps_the_passages(client):
    df = frame()
    qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    df.loc["long", "topic"] = "space"
    report = qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    assert (report.upserted, report.payload_only, report.embedded) == (1, 1, 0)
    hits = qinb.search("docs", "rings of ice around Saturn", using="text", client=client)
    assert hits.loc["long", "topic"] == "space" and SATURN in hits.loc["long", "passage"]


def test_identical_cells_are_split_once_and_unchanged_rows_never(client, monkeypatch):
    import qinb.objects
    import qinb.passages

    calls = []
    real = qinb.passages.spans
    monkeypatch.setattr(qinb.passages, "spans", lambda text, *a, **k: calls.append(text[-20:])
                        or real(text, *a, **k))
    monkeypatch.setattr(qinb.objects, "_splits", type(qinb.objects._splits)())
    texts = [long_text(f"Row {i % 3} ends here.") for i in range(9)]  # three cells, three times
    df = pd.DataFrame({"text": texts, "n": range(9)})
    report = qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    assert report.upserted == 9 and len(calls) == 3
    monkeypatch.setattr(qinb.objects, "_splits", type(qinb.objects._splits)())  # a new kernel
    calls.clear()
    again = qinb.upsert(df, "docs", CHUNKED, client=client, progress=False)
    assert (again.unchanged, again.objects, calls) == (9, 0, [])
    # a payload-only change writes the row's passage spans again, from one split
    moved = df.assign(n=df["n"] + 1)
    third = qinb.upsert(moved.iloc[:1], "docs", CHUNKED, client=client, progress=False)
    assert (third.payload_only, third.embedded, len(calls)) == (1, 0, 1)
    hits = qinb.search("docs", "Row 0 ends here", using="text", client=client)
    assert "Row 0 ends here." in hits.loc[0, "passage"]


def test_a_cell_s_stored_identity_is_the_one_its_object_has():
    """A collection written before cells were hashed unsplit finds its plain text, BM25 and
    image rows unchanged (a chunked cell's identity now names its text, not its passages)."""
    from PIL import Image as PILImage

    from qinb.embed import digest, document_item
    from qinb.images import load
    from qinb.objects import cell_digest, cell_item

    for spec in (qinb.Text("t"), qinb.Bm25("t", avg_len=12.0), qinb.Bm25("t", language="german")):
        text = "a text with Ümlauts and 12 numbers"
        assert cell_digest(spec, text) == digest(document_item(spec.document(text)).key)[:24]
    cell = load(PILImage.new("RGB", (4, 4), "red"))
    image = qinb.Image("photo")
    assert cell_digest(image, cell) == digest(cell_item(image, cell, False).key)[:24]
    chunked = qinb.Text("t", chunk_size=64)
    assert cell_digest(chunked, "x") != cell_digest(qinb.Text("t", chunk_size=32), "x")
