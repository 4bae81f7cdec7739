"""Every error a user can meet: its type and that its message says what happened and what to do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import qinb

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


def test_missing_column_names_it_and_close_matches(client, corpus):
    with pytest.raises(qinb.ColumnError) as err:
        corpus.qdrant.upsert("x", vectors={"text": qinb.Text("txt")}, client=client)
    msg = str(err.value)
    assert "vector 'text' names column 'txt'" in msg and "Did you mean 'text'?" in msg
    assert isinstance(err.value, KeyError)
    with pytest.raises(qinb.ColumnError, match=r"payload= names column 'topics'.*'topic'"):
        corpus.qdrant.upsert("x", vectors=VECTORS, client=client, payload=["topics"])
    assert not client.exists("x")


def test_numeric_column_is_a_type_error(client, corpus):
    with pytest.raises(qinb.ColumnTypeError, match=r"column 'n' has dtype int64.*astype\(str\)"):
        corpus.qdrant.upsert("x", vectors={"text": qinb.Text("n")}, client=client)


def test_empty_and_nan_rows_are_named_and_nothing_is_written(client, corpus):
    df = corpus.copy()
    df.loc["doc01", "text"] = None
    df.loc["doc05", "text"] = ""
    with pytest.raises(qinb.InvalidRowsError) as err:
        df.qdrant.upsert("x", vectors=VECTORS, client=client)
    msg = str(err.value)
    assert "2 row(s) cannot be upserted, rows ['doc01', 'doc05']" in msg
    assert "missing text" in msg and "empty text" in msg and "errors='skip'" in msg
    assert err.value.failed["row"].tolist() == ["doc01", "doc05"]
    assert not client.exists("x")


def test_duplicate_ids_are_refused(client, corpus):
    df = corpus.reset_index(drop=True)
    df.index = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3]
    with pytest.raises(qinb.InvalidRowsError, match="duplicate id 3"):
        df.qdrant.upsert("x", vectors=VECTORS, client=client)


def test_unknown_model_lists_close_matches(client, corpus):
    with pytest.raises(qinb.ModelError) as err:
        corpus.qdrant.upsert("x", vectors={"t": qinb.Text("text", model="all-MiniLM-L6-v2")},
                             client=client)
    assert "unknown model 'all-MiniLM-L6-v2'" in str(err.value)
    assert "sentence-transformers/all-MiniLM-L6-v2" in str(err.value)
    assert not client.exists("x")


@pytest.mark.parametrize(("hub", "where"), [
    (False, "from fastembed's cache (the Hugging Face hub is unreachable)"),
    (True, "by download (no local directory)"),
], ids=["hub-unreachable", "download-fails"])
def test_a_model_without_local_weights_says_what_to_set(client, corpus, monkeypatch, tmp_path,
                                                        hub, where, capfd):
    # a real model name with no local directory and nothing in fastembed's cache
    from qinb import models

    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the download, where tried, fails at once
    spec = qinb.Text("text", model="BAAI/bge-small-en-v1.5", options={"cache_dir": str(tmp_path)})
    with pytest.raises(qinb.ModelError) as err:
        corpus.qdrant.upsert("x", vectors={"t": spec}, client=client, progress=False)
    msg = str(err.value)
    assert f"cannot load model 'BAAI/bge-small-en-v1.5' {where}" in msg
    # qinb's error alone: no logging of fastembed's printed before it (issue 18, item 8)
    assert "ERROR" not in capfd.readouterr().err
    assert "QINB_MODELS" in msg and "register_local" in msg
    # a failed upsert leaves no collection behind, so the corrected retry is not a conflict
    assert not client.exists("x")
    report = corpus.qdrant.upsert("x", vectors={"t": qinb.Text("text")}, client=client,
                                  progress=False)
    assert (report.created, report.upserted) == (True, len(corpus))


def test_a_model_whose_onnx_file_is_broken_fails_before_any_write(client, corpus, tmp_path,
                                                                   local_models):
    """Its files are found before the collection is made; the model loads (and fails) only
    when the first vectors are due, and the collection it made goes."""
    import shutil

    from qinb import models

    broken = tmp_path / "broken"
    shutil.copytree(local_models, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    models.register_local(models.MINILM, broken)
    try:
        with pytest.raises(qinb.ModelError, match=f"cannot load model.*from {broken}"):
            corpus.qdrant.upsert("x", vectors={"t": qinb.Text("text")}, client=client,
                                 progress=False)
        assert not client.exists("x")
    finally:  # as before: found under QINB_MODELS, nothing registered, the good one loaded again
        del models._registered[models.MINILM.lower()]
        for cached in (models._load, models._found):
            cached.cache_clear()


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ({"text": qinb.Text("text", model="BAAI/bge-base-en-v1.5"), "bm25": qinb.Bm25("text")},
         "vector 'text': the collection has sentence-transformers/all-MiniLM-L6-v2 (384-d), "
         "this upsert has BAAI/bge-base-en-v1.5 (768-d)"),
        ({"text": qinb.Text("text", model="BAAI/bge-small-en-v1.5"), "bm25": qinb.Bm25("text")},
         "vector 'text': the collection has sentence-transformers/all-MiniLM-L6-v2 (384-d), "
         "this upsert has BAAI/bge-small-en-v1.5 (384-d)"),
        ({"text": qinb.Text("text")},
         "the collection has vector 'bm25', which this upsert would drop"),
        ({"text": qinb.Text("text"), "bm25": qinb.Bm25("text", language="german")},
         "vector 'bm25': the collection embeds column 'text' with options {'language': 'english'}"),
    ],
    ids=["other-size", "other-model", "dropped-vector", "other-options"],
)
def test_spec_conflicts_fail_before_writing(client, corpus, second, expected):
    corpus.qdrant.upsert("c", vectors=VECTORS, client=client, progress=False)
    before = client.scroll("c", limit=100, vectors=True)[0]
    changed = corpus.assign(text=corpus["text"] + " (edited)")
    with pytest.raises(qinb.SpecConflictError) as err:
        changed.qdrant.upsert("c", vectors=second, client=client, progress=False)
    assert expected in str(err.value)
    assert "nothing was written" in str(err.value)
    after = client.scroll("c", limit=100, vectors=True)[0]
    def dump(records):
        return [(p.id, p.payload, {n: str(np.round(v, 6).tolist()) if isinstance(v, np.ndarray) else str(v)
                                   for n, v in sorted(p.vectors.items())}) for p in records]
    assert dump(after) == dump(before)


def _holder(path, hold: float, busy: bool = False) -> subprocess.Popen:
    """Another process that writes a collection into the store at ``path`` and keeps it open for
    ``hold`` idle seconds (a notebook kernel that just ran an upsert), or with ``busy`` stays
    inside one operation on it (as a long index build would) until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            import pandas as pd
            import qinb
            store = qinb.connect({str(path)!r}, hold={hold})
            df = pd.DataFrame({{"text": ["a held note"]}})
            df.qdrant.upsert("notes", vectors={{"bm25": qinb.Bm25("text")}}, client=store,
                             progress=False)
            if {busy}:
                with store._shard("notes"):
                    print("ready", flush=True)
                    sys.stdin.read()
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_a_store_held_by_another_process_waits_then_names_the_holder(tmp_path):
    path = tmp_path / "held"
    holder = _holder(path, hold=600, busy=True)
    try:
        store = qinb.EdgeStore(path, wait=1)
        with pytest.raises(qinb.StoreLockedError) as err:
            qinb.search("notes", "note", client=store)
        msg = str(err.value)
        assert str((path / "notes").resolve()) in msg
        assert f"by process {holder.pid}" in msg and "Qdrant server" in msg
    finally:
        holder.communicate("")


def test_two_processes_take_turns_on_one_store(tmp_path):
    """The other kernel would hold the collection for a minute when idle, but lets go as soon
    as this one waits for it."""
    path = tmp_path / "shared"
    holder = _holder(path, hold=60)
    try:
        store = qinb.EdgeStore(path, wait=20)
        hits = qinb.search("notes", "note", client=store)
        assert hits["text"].tolist() == ["a held note"]
        more = pd.DataFrame({"text": ["a second note"]}, index=[1])
        report = more.qdrant.upsert("notes", vectors={"bm25": qinb.Bm25("text")}, client=store,
                                    progress=False)
        assert (report.upserted, store.count("notes")) == (1, 2)
    finally:
        holder.communicate("")


def test_search_errors(client, corpus):
    with pytest.raises(qinb.CollectionError, match="collection 'nope' does not exist"):
        corpus.qdrant.search("nope", "x", client=client)
    corpus.qdrant.upsert("s", vectors=VECTORS, client=client, progress=False)
    with pytest.raises(qinb.QueryError, match="has no vector 'image'; its vectors: text, bm25"):
        corpus.qdrant.search("s", "x", using="image", client=client)
    with pytest.raises(qinb.QueryError, match="exactly one"):
        corpus.qdrant.search("s", client=client)
    with pytest.raises(qinb.QueryError, match="the query is empty"):
        corpus.qdrant.search("s", "  ", client=client)
    with pytest.raises(qinb.QueryError, match="fusion must be 'rrf' or 'dbsf'"):
        corpus.qdrant.search("s", "x", fusion="max", client=client)
    with pytest.raises(qinb.QueryError, match="a range with keys gt, gte, lt, lte"):
        corpus.qdrant.search("s", "x", filter={"n": {"below": 3}}, client=client)
    with pytest.raises(qinb.QueryError, match="like='doc99': no row labelled 'doc99' is in 's'"):
        corpus.qdrant.search("s", like="doc99", client=client)
    client.create("plain", {"v": 4}, [], {})
    with pytest.raises(qinb.CollectionError, match="carries no qinb specs"):
        corpus.qdrant.search("plain", "x", client=client)


def test_bad_errors_argument(client, corpus):
    with pytest.raises(ValueError, match="errors must be 'raise' or 'skip'"):
        corpus.qdrant.upsert("x", vectors=VECTORS, client=client, errors="ignore")


def test_missing_optional_dependency_says_what_to_install():
    from qinb.errors import require

    with pytest.raises(qinb.MissingDependencyError) as err:
        require("no_such_module_for_qinb", "local")
    assert isinstance(err.value, ImportError) and isinstance(err.value, qinb.QinbError)
    assert str(err.value).endswith('pip install "qinb[local]"')


def test_a_busy_reader_elsewhere_does_not_starve_a_writer(tmp_path):
    """Another kernel searching the collection over and over lets go while this one waits."""
    path = tmp_path / "busy"
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            import pandas as pd
            import qinb
            store = qinb.connect({str(path)!r})
            pd.DataFrame({{"text": ["a first note"]}}).qdrant.upsert(
                "notes", vectors={{"bm25": qinb.Bm25("text")}}, client=store, progress=False)
            print("ready", flush=True)
            end = time.monotonic() + 90
            while time.monotonic() < end and store.count("notes") < 2:
                qinb.search("notes", "note", client=store)
                time.sleep(0.2)
            print(store.count("notes"), flush=True)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        store = qinb.EdgeStore(path, wait=60)  # generous: a loaded CI machine is slow
        more = pd.DataFrame({"text": ["a second note"]}, index=[1])
        report = more.qdrant.upsert("notes", vectors={"bm25": qinb.Bm25("text")}, client=store,
                                    progress=False)
        store.close()
        assert report.upserted == 1
        assert reader.stdout.readline().strip() == "2"  # the reader saw the write, and stopped
    finally:
        reader.kill()
        reader.wait()


def test_a_filter_that_finds_nothing_says_why(client, corpus):
    corpus.qdrant.upsert("c", vectors=VECTORS, client=client, progress=False)
    with pytest.warns(qinb.QinbWarning, match=r"filter field 'colour': none of the 12 points "
                                              r"looked at has it.*Fields: n, text, topic"):
        assert qinb.search("c", "planet", client=client, filter={"colour": "red"}).empty
    with pytest.warns(qinb.QinbWarning, match=r"filter field 'n': it is matched against str '5', "
                                              r"but the points hold it as int"):
        assert qinb.search("c", "planet", client=client, filter={"n": "5"}).empty
    with pytest.warns(qinb.QinbWarning, match="a range needs numbers, but the points hold it as str"):
        qinb.search("c", "planet", client=client, filter={"topic": {"lt": 3}})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an honest miss (right field, right type) stays quiet
        assert qinb.search("c", "planet", client=client, filter={"n": 99}).empty


def test_like_an_unknown_label_names_the_label(client, corpus):
    corpus.qdrant.upsert("c", vectors=VECTORS, client=client, progress=False)
    with pytest.raises(qinb.QueryError) as err:
        qinb.search("c", like="zzz", client=client, df=corpus)
    assert str(err.value).startswith("like='zzz': no row labelled 'zzz' is in 'c' (the point id "
                                     "it maps to, '")
    with pytest.raises(qinb.QueryError, match="and df= to look labels up in your frame"):
        qinb.search("c", like="zzz", client=client)


@pytest.mark.parametrize("call", [
    lambda tmp: qinb.connect(tmp / "s", url="http://localhost:6333"),
    lambda tmp: qinb.connect(tmp / "s", cloud_inference=True),
    lambda tmp: qinb.connect(tmp / "s", engine="sqlite"),
    lambda tmp: qinb.search("c", "q", client="not a store"),
    lambda tmp: qinb.copy("c", to=qinb.connect(tmp / "s"), source=qinb.connect(tmp / "s")),
    lambda tmp: qinb.upsert(pd.DataFrame({"t": ["a"]}), "c", vectors={"t": qinb.Bm25("t")},
                            errors="ignore"),
    lambda tmp: qinb.read("c", client=3),
])
def test_a_bad_argument_is_an_error_of_qinbs_tree(call, tmp_path):
    # a notebook that catches qinb.QinbError catches every mistake qinb names
    with pytest.raises(qinb.ArgumentError):
        call(tmp_path)
