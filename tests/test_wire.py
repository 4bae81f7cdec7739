"""What qinb sends to a Qdrant server with cloud inference, checked against the official schema.

No server can be installed here: an httpx mock transport plays a minimal stateful server, and
every request body is validated against tests/data/qdrant-openapi.json (a copy of
../shared/qdrant-openapi.json).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fakeserver import FakeServer

import qinb

RUNTIME = {"cache_dir", "threads", "specific_model_path", "providers", "lazy_load"}


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def cloud(server):
    client = qinb.connect(url="https://cluster.qdrant.test:6333", api_key="secret",
                          cloud_inference=True, transport=httpx.MockTransport(server),
                          check_compatibility=False)
    yield client
    client.close()


def documents_in(body: Any) -> list[dict[str, Any]]:
    """Every inference object (a dict with model and text) anywhere in a request body."""
    found = []
    if isinstance(body, dict):
        if "model" in body and "text" in body:
            found.append(body)
        for value in body.values():
            found.extend(documents_in(value))
    elif isinstance(body, list):
        for value in body:
            found.extend(documents_in(value))
    return found


def test_upsert_and_query_send_documents_without_runtime_options(cloud, server, corpus,
                                                                 local_models):
    vectors = {
        "text": qinb.Text("text", options={"specific_model_path": str(local_models),
                                           "threads": 2, "cache_dir": "/tmp/models"}),
        "bm25": qinb.Bm25("text", options={"k": 1.1}),
    }
    report = corpus.qdrant.upsert("wire", vectors=vectors, client=cloud, progress=False)
    assert (report.upserted, report.objects, report.embedded) == (12, 24, 0)

    create = next(b for m, p, b in server.requests if m == "PUT" and p == "/collections/wire")
    assert create["vectors"] == {"text": {"size": 384, "distance": "Cosine"}}
    assert create["sparse_vectors"] == {"bm25": {"modifier": "idf"}}
    assert create["metadata"]["qinb"]["vectors"]["text"]["model"] == (
        "sentence-transformers/all-MiniLM-L6-v2")

    upserts = [b for m, p, b in server.requests if m == "PUT" and p == "/collections/wire/points"]
    assert len(upserts) == 1 and len(upserts[0]["points"]) == 12
    point = upserts[0]["points"][0]
    assert point["vector"]["text"] == {"text": corpus["text"].iloc[0],
                                       "model": "sentence-transformers/all-MiniLM-L6-v2"}
    assert point["vector"]["bm25"] == {"text": corpus["text"].iloc[0], "model": "qdrant/bm25",
                                       "options": {"language": "english", "k": 1.1}}
    sent = json.dumps(server.requests)
    assert str(local_models) not in sent and "/tmp/models" not in sent
    for doc in documents_in([b for _, _, b in server.requests]):
        assert not RUNTIME & set(doc.get("options") or {})

    hits = corpus.qdrant.search("wire", "red planet", client=cloud, limit=5)
    # each vector's list in one batch request, fused here (ties by point id, on every engine)
    assert [(p["using"], p["query"]["nearest"]) for p in server.searches("wire")] == [
        ("text", {"text": "red planet", "model": "sentence-transformers/all-MiniLM-L6-v2"}),
        ("bm25", {"text": "red planet", "model": "qdrant/bm25",
                  "options": {"language": "english", "k": 1.1}}),
    ]
    assert hits.index.tolist() == ["doc01"] and hits["text"].tolist() == ["Mars"]


def test_single_vector_query_with_a_filter(cloud, server, corpus):
    corpus.qdrant.upsert("wire2", vectors={"text": qinb.Text("text")}, client=cloud,
                         progress=False)
    corpus.qdrant.search("wire2", "moons", client=cloud, limit=3,
                         filter={"topic": "planets", "n": {"lt": 3}, "tag": ["a", "b"]})
    [query] = server.searches("wire2")
    # ten past the cut, without payloads, so that a tie there is seen whole; the hits'
    # payloads are read after
    assert query["using"] == "text" and query["limit"] == 13 and query["with_payload"] is False
    assert server.requests[-1][:2] == ("POST", "/collections/wire2/points")
    assert query["query"] == {"nearest": {"text": "moons",
                                          "model": "sentence-transformers/all-MiniLM-L6-v2"}}
    assert query["filter"]["must"] == [
        {"key": "topic", "match": {"value": "planets"}},
        {"key": "n", "range": {"lt": 3}},
        {"key": "tag", "match": {"any": ["a", "b"]}},
    ]


def test_the_fake_server_rejects_what_qdrant_would(server):
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        server.validate("PUT", "/collections/x/points", {"points": [{"id": -1.5, "vector": {}}]})


def test_batches_of_images_for_a_server_stay_under_the_request_limit():
    from qdrant_client import models

    from qinb.ingest.writer import batches
    from qinb.store import Point

    image = models.Image(image="A" * 6_000_000, model="Qdrant/clip-ViT-B-32-vision")
    points = [Point(i, {"image": image}, {}) for i in range(12)]
    split = batches(points, batch_size=256)
    assert [len(b) for b in split] == [4, 4, 4]  # 4 x 6 MB fit in 24 MiB, 5 do not
    assert [p.id for b in split for p in b] == list(range(12))
    plain = [Point(i, {"v": [0.0] * 4}, {}) for i in range(600)]
    assert [len(b) for b in batches(plain, batch_size=256)] == [256, 256, 88]


def test_copy_from_the_embedded_store_to_a_server_sends_vectors_and_specs(server, corpus, client):
    """qinb.copy moves an embedded collection up: the server gets the schema, the specs and the
    stored vectors (no inference objects), and a second copy sends no points again."""
    corpus.qdrant.upsert("local", vectors={"text": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                         client=client, progress=False)
    up = qinb.connect(url="https://cluster.qdrant.test:6333", api_key="secret",
                      transport=httpx.MockTransport(server), check_compatibility=False)
    assert qinb.copy("local", to=up, source=client, name="moved", progress=False) == 12
    create = next(b for m, p, b in server.requests if m == "PUT" and p == "/collections/moved")
    assert create["vectors"] == {"text": {"size": 384, "distance": "Cosine"}}
    assert create["sparse_vectors"] == {"bm25": {"modifier": "idf"}}
    assert list(create["metadata"]["qinb"]["vectors"]) == ["text", "bm25"]
    sent = [pt for m, p, b in server.requests if m == "PUT" and p == "/collections/moved/points"
            for pt in b["points"]]
    assert len(sent) == 12 and not documents_in(sent)
    assert all(len(pt["vector"]["text"]) == 384 and set(pt["vector"]["bm25"]) == {"indices", "values"}
               for pt in sent)
    assert sorted(pt["payload"]["_qinb_row"] for pt in sent) == sorted(corpus.index)
    before = len(server.requests)
    assert qinb.copy("local", to=up, source=client, name="moved", progress=False) == 0
    assert not [p for m, p, _ in server.requests[before:] if m == "PUT"]


def test_hybrid_hits_from_a_server_are_scored_per_vector_in_one_batch(server, corpus):
    """Without cloud inference the hits' own scores under each vector come from one batch
    request that names the hits, with each probe as embedded here."""
    remote = qinb.connect(url="https://cluster.qdrant.test:6333", api_key="secret",
                          transport=httpx.MockTransport(server), check_compatibility=False)
    corpus.qdrant.upsert("why", vectors={"text": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                         client=remote, progress=False)
    server.points["why"][7] = {"id": 7}  # the point the fake server's query answers
    hits = corpus.qdrant.search("why", "red planet", client=remote, limit=5)
    batch = [b for m, p, b in server.requests if p == "/collections/why/points/query/batch"
             and "has_id" in json.dumps(b)]  # the other batch is the query itself
    assert len(batch) == 1
    searches = batch[0]["searches"]
    assert [s["using"] for s in searches] == ["text", "bm25"]
    assert len(searches[0]["query"]["nearest"]) == 384
    assert set(searches[1]["query"]["nearest"]) == {"indices", "values"}
    assert all(s["filter"] == {"must": [{"has_id": [7]}]} and s["limit"] == 1 for s in searches)
    assert hits[["score_text", "score_bm25"]].values.tolist() == [[0.5, 0.6]]
    remote.close()


def test_a_chunked_vector_is_embedded_here_and_sent_as_a_multivector(cloud, server, corpus):
    """Cloud inference embeds one Document per vector: a chunked vector's passages are
    embedded here and sent as a matrix; the other vectors still go as Documents."""
    from qinb.objects import point_id

    long = corpus.copy()
    long.loc["doc00", "text"] = " ".join([corpus["text"].iloc[0]] * 60)  # past the window
    vectors = {"body": qinb.Text("text", chunk_size=64, chunk_overlap=8), "bm25": qinb.Bm25("text")}
    report = long.qdrant.upsert("chunks", vectors=vectors, client=cloud, progress=False)
    assert report.upserted == 12 and report.vectors.loc["body", "embedded"] > 0
    assert report.vectors.loc["bm25", "embedded"] == 0  # the server embeds BM25
    create = next(b for m, p, b in server.requests if m == "PUT" and p == "/collections/chunks")
    # searched exactly: no HNSW graph on passages (bench/multivector_hnsw.py)
    assert create["vectors"] == {"body": {"size": 384, "distance": "Cosine", "hnsw_config": {"m": 0},
                                          "multivector_config": {"comparator": "max_sim"}}}
    sent = {pt["id"]: pt for m, p, b in server.requests
            if m == "PUT" and p == "/collections/chunks/points" for pt in b["points"]}
    matrix = sent[point_id("doc00")]["vector"]["body"]
    assert len(matrix) > 5 and all(len(row) == 384 for row in matrix)
    assert all(len(pt["vector"]["body"]) == 1 for i, pt in sent.items()
               if i != point_id("doc00"))  # a short text is one passage
    assert len(documents_in([pt["vector"]["bm25"] for pt in sent.values()])) == 12
    spans = sent[point_id("doc00")]["payload"]["_qinb_passages"]["body"]
    assert len(spans) == len(matrix) and spans[0][0] == 0

    long.qdrant.search("chunks", "red planet", client=cloud, limit=3)
    body, bm25 = server.searches("chunks")
    assert body["using"] == "body" and len(body["query"]["nearest"]) == 1  # a one-row matrix
    assert len(body["query"]["nearest"][0]) == 384
    # passages are searched exactly, whatever graph a server may have built for them
    assert body["params"] == {"exact": True} and "params" not in bm25
    assert bm25["query"]["nearest"] == {"text": "red planet", "model": "qdrant/bm25",
                                        "options": {"language": "english"}}


def test_a_quantized_on_disk_vector_and_its_graph_are_made_so_on_a_server_and_rescored(cloud, server, corpus):
    vectors = {"text": qinb.Text("text", on_disk=True, quantization="int8"),
               "bm25": qinb.Bm25("text", on_disk=True)}
    corpus.qdrant.upsert("compact", vectors=vectors, client=cloud, progress=False)
    create = next(b for m, p, b in server.requests if m == "PUT" and p == "/collections/compact")
    assert create["sparse_vectors"]["bm25"] == {"modifier": "idf", "index": {"on_disk": True}}
    assert create["vectors"]["text"] == {
        "size": 384, "distance": "Cosine", "on_disk": True, "hnsw_config": {"on_disk": True},
        "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}}
    graph = {"text": qinb.Text("text", on_disk=True, hnsw={"m": 0}), "bm25": qinb.Bm25("text")}
    corpus.qdrant.upsert("scan", vectors=graph, client=cloud, progress=False)
    create = next(b for m, p, b in server.requests if m == "PUT" and p == "/collections/scan")
    assert create["vectors"]["text"] == {"size": 384, "distance": "Cosine", "on_disk": True,
                                         "hnsw_config": {"m": 0, "on_disk": True}}
    corpus.qdrant.search("compact", "red planet", client=cloud, limit=3)
    text, bm25 = server.searches("compact")
    # the best candidates of the int8 copy are rescored with the full vectors, and the graph
    # search keeps more candidates than Qdrant's default
    assert text["params"] == {"quantization": {"rescore": True, "oversampling": 2.0}, "hnsw_ef": 256}
    assert "params" not in bm25


def test_a_server_builds_the_graph_once_after_the_load(cloud, server, corpus):
    corpus.qdrant.upsert("bulk", vectors={"text": qinb.Text("text")}, client=cloud,
                         batch_size=4, progress=False)
    calls = [(m, b) for m, p, b in server.requests if p in ("/collections/bulk",
                                                          "/collections/bulk/points")]
    writes = [i for i, (m, b) in enumerate(calls) if m == "PUT" and "points" in b]
    create, [update] = calls[0], [i for i, (m, b) in enumerate(calls) if m == "PATCH"]
    # made with indexing off, every point written, then indexing on (Qdrant's default)
    assert create[1]["optimizers_config"] == {"indexing_threshold": 0}
    assert len(writes) == 3 and update > writes[-1]
    assert calls[update][1] == {"optimizers_config": {"indexing_threshold": 20000}}
    # a later upsert into it leaves the server's settings alone
    corpus.qdrant.upsert("bulk", vectors={"text": qinb.Text("text")}, client=cloud,
                         progress=False)
    assert sum(m == "PATCH" for m, p, b in server.requests if p == "/collections/bulk") == 1


def test_diverse_and_grouped_search_on_a_server_send_what_qdrant_takes(cloud, server, corpus):
    """The explore options ask a server only what Qdrant's API takes: the fake server checks
    every body against the OpenAPI schema (a grouped query reads the field of its candidates)."""
    corpus.qdrant.upsert("ex", vectors={"text": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                         client=cloud, progress=False)
    hits = corpus.qdrant.search("ex", "red planet", client=cloud, group_by="text", diverse=0.5)
    assert list(hits.index) == ["doc01"] and list(hits["group"]) == ["Mars"]
    reads = [b for m, p, b in server.requests if p == "/collections/ex/points" and m == "POST"]
    assert {"with_payload": ["text"]}.items() <= reads[0].items()
