"""The upsert pipeline: dedup, idempotence, payloads, reports, the default store."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from qdrant_client import models

import qinb

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


def test_identical_objects_are_embedded_once(client, corpus):
    df = pd.DataFrame({"text": [corpus["text"].iloc[i % 10] for i in range(100)]})
    report = df.qdrant.upsert("dedup", vectors=VECTORS, client=client, progress=False)
    assert (report.rows, report.upserted, report.objects, report.embedded) == (100, 100, 200, 20)
    assert report.vectors[["objects", "embedded", "cached"]].to_dict("index") == {
        "text": {"objects": 100, "embedded": 10, "cached": 0},
        "bm25": {"objects": 100, "embedded": 10, "cached": 0},
    }
    # the 90 repeats are named, so the counts add up; nothing is chunked or cut
    assert report.shared == 180 and report.embedded + report.cached + report.shared == report.objects
    assert "20 embedded, 0 from the cache, 180 shared by identical cells" in str(report)
    assert report.vectors[["passages", "truncated"]].sum().sum() == 0
    assert client.count("dedup") == 100
    assert report.failed.empty


def test_second_upsert_embeds_nothing_and_an_edit_re_embeds_that_row(client, corpus):
    first = corpus.qdrant.upsert("idem", vectors=VECTORS, client=client, progress=False)
    assert (first.created, first.upserted, first.embedded) == (True, 12, 24)
    again = corpus.qdrant.upsert("idem", vectors=VECTORS, client=client, progress=False)
    assert (again.created, again.upserted, again.unchanged, again.embedded) == (False, 0, 12, 0)
    assert client.count("idem") == 12

    edited = corpus.copy()
    edited.loc["doc03", "text"] = "Venus spins backwards, so the Sun rises in the west."
    third = edited.qdrant.upsert("idem", vectors=VECTORS, client=client, progress=False)
    assert (third.upserted, third.unchanged, third.objects, third.embedded) == (1, 11, 2, 2)
    hit = qinb.search("idem", "the sun rises in the west", using="bm25", limit=1, client=client)
    assert hit.index[0] == "doc03"
    assert hit.iloc[0]["text"].startswith("Venus spins backwards")

    # a payload-only change rewrites the point; its text object is the same, so only that row moves
    edited.loc["doc04", "n"] = 99
    fourth = edited.qdrant.upsert("idem", vectors=VECTORS, client=client, progress=False)
    assert (fourth.upserted, fourth.unchanged) == (1, 11)
    assert client.retrieve("idem", [fourth_id(edited, "doc04")])[0].payload["n"] == 99


def fourth_id(df, label):
    return next(p.id for p in qinb.to_points(df.loc[[label]], VECTORS))


def test_payload_round_trip(client):
    df = pd.DataFrame(
        {
            "text": ["alpha", "beta", "gamma"],
            "i": np.array([1, 2, 3], dtype=np.int64),
            "f": [1.5, float("nan"), -0.25],
            "b": [True, False, True],
            "when": pd.to_datetime(["2024-01-02 03:04:05", None, "1999-12-31 00:00:00"]),
            "tags": [["a", "b"], [], ["ü"]],
            "meta": [{"k": 1}, {"k": None}, {}],
            "name": ["Zoë", "日本語", "emoji 🚀"],
        },
        index=[10, 11, 12],
    )
    df.qdrant.upsert("payload", vectors={"text": qinb.Text("text")}, client=client, progress=False)
    got = {r.id: r.payload for r in client.retrieve("payload", [10, 11, 12])}
    assert got[10]["i"] == 1 and isinstance(got[10]["i"], int)
    assert got[10]["f"] == 1.5 and got[11]["f"] is None
    assert got[10]["b"] is True and got[11]["b"] is False
    assert got[10]["when"] == "2024-01-02T03:04:05" and got[11]["when"] is None
    assert got[10]["tags"] == ["a", "b"] and got[11]["tags"] == [] and got[12]["tags"] == ["ü"]
    assert got[10]["meta"] == {"k": 1} and got[11]["meta"] == {"k": None}
    assert [got[i]["name"] for i in (10, 11, 12)] == ["Zoë", "日本語", "emoji 🚀"]

    hits = df.qdrant.search("payload", "alpha", limit=3, client=client)
    assert hits.loc[10, "name"] == "Zoë"
    assert math.isnan(hits.loc[11, "f"])


def test_payload_columns_can_be_chosen_and_source_text_is_always_kept(client, corpus):
    corpus.qdrant.upsert("chosen", vectors=VECTORS, client=client, payload=["topic"],
                         progress=False)
    stored = client.scroll("chosen", limit=1)[0][0].payload
    assert set(stored) == {"topic", "text", "_qinb_row", "_qinb_hash", "_qinb_objects"}


def test_id_column_gives_the_point_ids(client, corpus):
    df = corpus.assign(sku=[f"SKU-{i}" for i in range(len(corpus))]).reset_index(drop=True)
    df.qdrant.upsert("ids", vectors=VECTORS, client=client, id_column="sku", progress=False)
    again = df.iloc[::-1].reset_index(drop=True)  # same rows, other index: same points
    report = again.qdrant.upsert("ids", vectors=VECTORS, client=client, id_column="sku",
                                 progress=False)
    # the rows are labelled by their ids, not by where they sit in the frame: nothing changed
    assert report.unchanged == 12 and report.upserted == 0
    assert client.count("ids") == 12
    hits = again.qdrant.search("ids", like="SKU-0", using="text", client=client, limit=3)
    # SKU-0 (Jupiter) itself is excluded, its nearest is another planet, and hits are
    # labelled by the ids
    assert "SKU-0" not in hits.index and hits["topic"].iloc[0] == "planets"
    assert hits.index.tolist() == hits["sku"].tolist()


def test_skip_stores_good_rows_and_reports_bad_ones(client):
    df = pd.DataFrame({"text": ["good one", None, "   ", "good two", 42]}, index=list("abcde"))
    report = df.qdrant.upsert("skip", vectors=VECTORS, client=client, errors="skip",
                              progress=False)
    assert (report.rows, report.upserted) == (5, 2)
    assert client.count("skip") == 2
    assert len(report.failed) == 3  # one line per bad cell, though two vectors read the column
    failed = report.failed.set_index("row")["reason"].to_dict()
    assert failed == {"b": "missing text (NaN/None)", "c": "empty text", "e": "not text: int 42"}
    assert "3 failed" in str(report)


def test_to_points_gives_real_documents(corpus):
    points = corpus.qdrant.to_points(vectors={
        "text": qinb.Text("text", options={"threads": 1, "cache_dir": "/tmp/x"}),
        "bm25": qinb.Bm25("text", options={"k": 1.5}),
    })
    assert len(points) == 12
    first = points[0]
    assert isinstance(first, models.PointStruct)
    assert first.vector["text"] == models.Document(
        text=corpus["text"].iloc[0], model="sentence-transformers/all-MiniLM-L6-v2")
    assert first.vector["bm25"] == models.Document(
        text=corpus["text"].iloc[0], model="qdrant/bm25", options={"language": "english", "k": 1.5})
    assert first.payload["topic"] == "planets"


def test_default_client_is_a_persistent_store_found_again(corpus, private_store):
    first = corpus.qdrant.upsert("persist", vectors=VECTORS, progress=False)
    assert first.created
    # the same path opened again in this kernel is the same client, not a lock error
    assert qinb.connect() is qinb.connect(private_store)
    again = corpus.qdrant.upsert("persist", vectors=VECTORS, progress=False)
    assert (again.created, again.unchanged) == (False, 12)
    assert (private_store / "persist" / "qinb.json").is_file()  # a Qdrant Edge store


def test_progress_bars_show_and_can_be_turned_off(client, corpus, capsys):
    corpus.qdrant.upsert("bars", vectors=VECTORS, client=client)
    err = capsys.readouterr().err
    assert "embedding 'text'" in err and "upserting 'bars'" in err
    corpus.qdrant.upsert("bars2", vectors=VECTORS, client=client, progress=False)
    assert capsys.readouterr().err == ""


def test_multiindex_rows_round_trip_and_left_out_columns_come_from_the_frame(client):
    df = pd.DataFrame(
        {"text": ["red apples and pears", "jupiter and saturn", "baking bread"], "x": [1, 2, 3]},
        index=pd.MultiIndex.from_tuples([("fruit", 1), ("space", 1), ("food", 2)],
                                        names=["kind", "n"]),
    )
    df.qdrant.upsert("multi", vectors={"text": qinb.Text("text")}, client=client,
                     payload=["text"], progress=False)
    assert "x" not in client.scroll("multi", limit=1)[0][0].payload
    hits = df.qdrant.search("multi", "planets", client=client, limit=2)
    assert list(hits.index.names) == ["kind", "n"]
    assert hits.index[0] == ("space", 1)
    assert hits.loc[("space", 1), "x"] == 2  # not stored, joined from the source frame
    like = df.qdrant.search("multi", like=("space", 1), client=client)
    assert ("space", 1) not in like.index and len(like) == 2


def test_repeated_index_labels_keep_each_rows_own_text(client, corpus):
    # pd.concat of two frames repeats the labels 0, 1, ...; the id column tells the rows apart
    parts = [corpus.iloc[:6].reset_index(drop=True), corpus.iloc[6:].reset_index(drop=True)]
    df = pd.concat(parts).assign(sku=[f"SKU-{i}" for i in range(12)])
    report = df.qdrant.upsert("concat", vectors=VECTORS, client=client, id_column="sku",
                              progress=False)
    assert (report.upserted, report.embedded) == (12, 24)
    stored = {p.payload["sku"]: p.payload["text"] for p in client.scroll("concat", limit=20)[0]}
    assert stored == dict(zip(df["sku"], df["text"], strict=True))
    hit = qinb.search("concat", "bake the sponge cake", using="bm25", limit=1, client=client)
    assert hit["sku"].tolist() == ["SKU-8"]


def test_duplicate_labels_without_an_id_column_skip_only_the_repeats(client, corpus):
    df = pd.concat([corpus.iloc[:3], corpus.iloc[:1]])  # doc00 twice
    report = df.qdrant.upsert("dup", vectors=VECTORS, client=client, errors="skip", progress=False)
    assert report.upserted == 3 and len(report.failed) == 1
    assert report.failed.iloc[0].tolist()[:2] == ["doc00", "index"]


def test_thumbnails_are_made_only_for_rows_that_are_written(photos, client, clip_standins,
                                                            monkeypatch):
    from qinb.images import ImageCell

    vectors = {"image": qinb.Image("photo")}
    photos.qdrant.upsert("t", vectors=vectors, client=client, thumbnails=True, progress=False)
    made = []
    real = ImageCell.thumbnail
    monkeypatch.setattr(ImageCell, "thumbnail", lambda self, *a: made.append(self) or real(self, *a))
    again = photos.qdrant.upsert("t", vectors=vectors, client=client, thumbnails=True,
                                 progress=False)
    assert (again.unchanged, made) == (6, [])
    edited = photos.assign(caption=[*photos["caption"][:-1], "a red motorcycle"])
    third = edited.qdrant.upsert("t", vectors=vectors, client=client, thumbnails=True,
                                 progress=False)
    assert (third.upserted, len(made)) == (1, 1)


def test_a_payload_only_change_writes_the_payload_and_embeds_nothing(client, corpus):
    corpus.qdrant.upsert("pay", vectors=VECTORS, client=client, progress=False)
    before = {r.id: r.vectors["text"] for r in client.scroll("pay", limit=100, vectors=["text"])[0]}
    priced = corpus.assign(n=corpus["n"] * 10 + 1)
    report = priced.qdrant.upsert("pay", vectors=VECTORS, client=client, progress=False)
    assert (report.upserted, report.payload_only, report.unchanged) == (12, 12, 0)
    assert (report.objects, report.embedded, report.cached) == (0, 0, 0)
    after = client.scroll("pay", limit=100, vectors=["text"])[0]
    assert sorted(r.payload["n"] for r in after) == sorted(priced["n"].tolist())
    assert all(np.allclose(before[r.id], r.vectors["text"]) for r in after)  # vectors kept
    hits = priced.qdrant.search("pay", "largest planet", client=client, limit=1)
    assert (hits.index[0], hits["n"].iloc[0]) == ("doc00", 1)


def test_adding_a_named_vector_embeds_only_that_vector(client, corpus):
    corpus.qdrant.upsert("grow", vectors=VECTORS, client=client, progress=False)
    more = {**VECTORS, "topic": qinb.Text("topic")}
    report = corpus.qdrant.upsert("grow", vectors=more, client=client, progress=False)
    assert report.vectors.loc["topic", "objects"] == 12 and report.vectors.loc["topic", "embedded"] == 2
    assert report.vectors.loc[["text", "bm25"], "objects"].tolist() == [0, 0]
    hits = corpus.qdrant.search("grow", "cooking", using="topic", client=client, limit=6)
    assert set(hits["topic"]) == {"cooking"}
    specs, _ = qinb.store.saved_specs(client, "grow")
    assert list(specs) == ["text", "bm25", "topic"]


def test_the_embedding_cache_serves_another_collection_without_inference(client, corpus):
    first = corpus.qdrant.upsert("one", vectors=VECTORS, client=client, progress=False)
    second = corpus.qdrant.upsert("two", vectors=VECTORS, client=client, progress=False)
    assert first.vectors.loc["text", "embedded"] == 12
    # dense text comes from the cache; BM25 is recomputed (faster than reading it back)
    assert second.vectors.loc["text", ["objects", "embedded", "cached"]].tolist() == [12, 0, 12]
    assert second.vectors.loc["bm25", ["objects", "embedded", "cached"]].tolist() == [12, 12, 0]
    assert qinb.cache.info()["vectors"] == 12
    a = corpus.qdrant.search("one", "largest planet", using="text", client=client)
    b = corpus.qdrant.search("two", "largest planet", using="text", client=client)
    assert a.index.tolist() == b.index.tolist() and np.allclose(a["score"], b["score"])
    assert qinb.cache.clear() == 12


def test_long_texts_are_batched_by_tokens_and_keep_their_order(client):
    from qinb import embed

    words = ["stars", "planets", "moons", "comets"]
    texts = [" ".join(words[i % 4] for _ in range(5 + (i * 37) % 400)) + f" n{i}" for i in range(60)]
    df = pd.DataFrame({"text": texts})
    items = [embed.document_item(qinb.Text("text").document(t)) for t in texts]
    batches = embed._batches(items)
    assert sorted(i for b in batches for i in b) == list(range(60))
    for batch in batches:
        longest = max(embed._tokens(texts[i]) for i in batch)
        assert len(batch) * longest <= embed.TOKEN_BUDGET or len(batch) == 1
    report = df.qdrant.upsert("long", vectors={"text": qinb.Text("text")}, client=client,
                              progress=False)
    assert report.embedded == 60
    # each row got its own vector back, in order: a text finds itself first
    for i in (0, 17, 59):
        assert df.qdrant.search("long", texts[i], client=client, limit=1).index[0] == i


def test_an_empty_source_says_so_and_leaves_no_collection(client):
    empty = pd.DataFrame({"text": pd.Series([], dtype=object)})
    with pytest.warns(qinb.QinbWarning, match="the source has 0 rows, so the collection was not"):
        report = empty.qdrant.upsert("nothing", vectors=VECTORS, client=client, progress=False)
    assert (report.rows, report.upserted, report.created) == (0, 0, False)
    assert not client.exists("nothing")
    bad = pd.DataFrame({"text": ["", None]})
    with pytest.warns(qinb.QinbWarning, match="2 rows, all of them failed"):
        report = bad.qdrant.upsert("nothing", vectors=VECTORS, client=client, progress=False,
                                   errors="skip")
    assert report.failed_rows == 2 and not client.exists("nothing")


def test_progress_written_to_a_file_is_plain_lines(tmp_path):
    # a log file or a pipe gets whole lines, not a bar's carriage returns and cursor moves
    # (issue 18, item 7: nested bars came out as lines of escape codes)
    script = (
        "import pandas as pd, qinb\n"
        f"store = qinb.connect({str(tmp_path / 'store')!r})\n"
        "df = pd.DataFrame({'text': [f'row {i} about planets' for i in range(40)]})\n"
        "df.qdrant.upsert('c', vectors={'text': qinb.Text('text'), 'bm25': qinb.Bm25('text')},"
        " client=store)\n")
    log = tmp_path / "log.txt"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-c", script], stderr=out, check=True, timeout=300)
    text = log.read_text()
    assert "\r" not in text and "\x1b[" not in text
    lines = text.splitlines()
    assert any(line.startswith("upserting 'c': 100%") and "40/40" in line for line in lines)
    assert any(line.startswith("embedding") for line in lines)


def test_the_stored_digest_and_the_cache_key_are_one_digest(client, corpus):
    # issue 18, item 14: the name stored to tell a changed cell and the cache's key come from
    # one function, so the diff of stored rows and the cache cannot drift apart
    from qinb import cache
    from qinb.embed import digest, document_item

    corpus.qdrant.upsert("digest", vectors={"text": qinb.Text("text")}, client=client,
                         progress=False)
    record = client.retrieve("digest", [fourth_id(corpus, "doc03")])[0]
    stored = record.payload["_qinb_objects"]["text"]
    key = digest(document_item(qinb.Text("text").document(corpus.loc["doc03", "text"])).key)
    assert len(stored) == 24 and key.startswith(stored)
    assert key in cache.get_many([key])
