"""A credential given as a spec option reaches the server call that needs it and nothing else:
not the collection's metadata, files on disk, reprs, errors, reports, widget state or HTML, nor
an executed notebook."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import nbformat
import pytest
from fakeserver import FakeServer

import qinb

KEY = "sk-qinb-7f3a9c-do-not-leak"


def keyed(key: str = KEY, column: str = "text") -> dict[str, qinb.Text | qinb.Bm25]:
    return {"text": qinb.Text(column, options={"jina-api-key": key}),
            "bm25": qinb.Bm25(column, options={"api_key": key})}


def files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_an_embedded_store_saves_shows_and_compares_no_key(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("QINB_CACHE", str(tmp_path / "cache"))
    store = qinb.connect(tmp_path / "store")
    specs = keyed()
    assert KEY not in repr(specs) and "'jina-api-key': '***'" in repr(specs["text"])
    report = corpus.qdrant.upsert("c", vectors=specs, client=store, progress=False)
    assert report.upserted == 12
    shown = [str(report), repr(report), report._repr_html_(), repr(store.shape("c").metadata)]
    assert not [s for s in shown if KEY in s]
    saved = store.shape("c").metadata["qinb"]["vectors"]["text"]
    assert saved["secrets"] == ["jina-api-key"] and "jina-api-key" not in saved["options"]

    # a rotated key is no conflict and embeds nothing again
    again = corpus.qdrant.upsert("c", vectors=keyed("sk-rotated"), client=store, progress=False)
    assert (again.unchanged, again.embedded) == (12, 0)
    # an error about the specs shows the options without the key
    with pytest.raises(qinb.SpecConflictError) as err:
        corpus.assign(body=corpus["text"]).qdrant.upsert(
            "c", vectors=keyed(column="body"), client=store, progress=False)
    assert "column 'body'" in str(err.value) and KEY not in str(err.value)
    hits = qinb.search("c", "red planet", client=store)
    assert KEY not in hits.to_string()
    store.close()
    assert files_holding(tmp_path, KEY) == []


def test_a_server_gets_the_key_with_each_call_and_never_in_metadata(corpus, monkeypatch):
    server = FakeServer()
    cloud = qinb.connect(url="https://cluster.qdrant.test:6333", api_key="k",
                         cloud_inference=True, transport=httpx.MockTransport(server),
                         check_compatibility=False)
    corpus.qdrant.upsert("c", vectors=keyed(), client=cloud, progress=False)
    create = next(b for m, p, b in server.requests if m == "PUT" and p == "/collections/c")
    assert KEY not in json.dumps(create)
    points = next(b for m, p, b in server.requests if p == "/collections/c/points")
    assert points["points"][0]["vector"]["text"]["options"] == {"jina-api-key": KEY}

    monkeypatch.delenv("QINB_JINA_API_KEY", raising=False)
    with pytest.raises(qinb.QueryError) as err:
        qinb.search("c", "red planet", using="text", client=cloud)
    assert "pass secrets={'jina-api-key': ...}" in str(err.value)
    assert "QINB_JINA_API_KEY" in str(err.value)

    qinb.search("c", "red planet", using="text", client=cloud, secrets={"jina-api-key": KEY})
    monkeypatch.setenv("QINB_JINA_API_KEY", "from-the-environment")
    qinb.search("c", "red planet", using="text", client=cloud)
    queries = [q for _, p, b in server.requests if p == "/collections/c/points/query/batch"
               for q in b["searches"]]
    assert [q["query"]["nearest"]["options"]["jina-api-key"] for q in queries] == [
        KEY, "from-the-environment"]
    cloud.close()


def test_the_widget_state_and_html_hold_no_key(corpus, tmp_path):
    from ipywidgets.embed import embed_minimal_html

    store = qinb.connect(tmp_path / "store")
    corpus.qdrant.upsert("c", vectors=keyed(), client=store, progress=False)
    w = qinb.widget("c", client=store, df=corpus, secrets={"jina-api-key": KEY})
    w.search("red planet")
    assert len(w.results) > 0
    page = tmp_path / "widget.html"
    embed_minimal_html(page, views=[w], title="secrets")
    assert KEY not in page.read_text() and KEY not in repr(w)
    store.close()


def test_an_executed_notebook_holds_no_key(tmp_path):
    from nbclient import NotebookClient

    cells = [
        "import pandas as pd, qinb\n"
        f"store = qinb.connect({str(tmp_path / 'store')!r})\n"
        "df = pd.DataFrame({'text': ['red planet', 'a sponge cake']})\n"
        f"spec = qinb.Text('text', options={{'jina-api-key': {KEY!r}}})\n"
        "spec",
        "report = df.qdrant.upsert('c', vectors={'text': spec}, client=store)\nreport",
        "qinb.connect(" + repr(str(tmp_path / "store")) + ").shape('c').metadata",
        "df.qdrant.search('c', 'mars', client=store)",
        textwrap.dedent("""\
            try:
                df.assign(x=df.text).qdrant.upsert(
                    'c', vectors={'text': qinb.Text('x', options=spec.options)}, client=store)
            except qinb.QinbError as exc:
                print(exc)"""),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    # the cells hold the key the user typed; what qinb put in the outputs must not
    outputs = json.dumps([c["outputs"] for c in notebook.cells])
    assert "'jina-api-key': '***'" in outputs and "Traceback" not in outputs
    assert "the specs conflict" in outputs  # the error cell ran and printed its message
    assert "2 upserted" in outputs and "red planet" in outputs  # report and hits were shown
    assert KEY not in outputs
    assert files_holding(tmp_path, KEY) == []


def test_keys_an_older_qinb_saved_are_dropped_on_upsert_and_copy(corpus, tmp_path):
    store = qinb.connect(tmp_path / "a")
    corpus.qdrant.upsert("c", vectors=keyed(), client=store, progress=False)
    old = json.loads(json.dumps(store.shape("c").metadata))  # as an older qinb saved it:
    old["qinb"]["vectors"]["text"]["options"] = {"jina-api-key": KEY}  # the key in the options
    del old["qinb"]["vectors"]["text"]["secrets"]
    store.save_metadata("c", old)
    elsewhere = qinb.connect(tmp_path / "b")
    assert qinb.copy("c", to=elsewhere, source=store, progress=False) == 12
    assert KEY not in json.dumps(elsewhere.shape("c").metadata)
    assert elsewhere.shape("c").metadata["qinb"]["vectors"]["text"]["secrets"] == ["jina-api-key"]
    report = corpus.qdrant.upsert("c", vectors=keyed(), client=store, progress=False)
    assert report.unchanged == 12 and KEY not in json.dumps(store.shape("c").metadata)
    store.close()
    elsewhere.close()
    assert files_holding(tmp_path, KEY) == []
