"""Vectors kept on disk and quantized: set by the spec, made so on each engine, searched with
rescoring, kept by copy, and refused where they cannot be changed."""

from __future__ import annotations

import json
import re

import pytest

import qinb
from qinb.errors import ArgumentError, SpecConflictError
from qinb.store import saved_specs

COMPACT = {"text": qinb.Text("text", on_disk=True, quantization="int8"), "bm25": qinb.Bm25("text")}
PLAIN = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


def vector_config(client, collection: str) -> dict:
    """The dense vector "text" as the engine was told to make it."""
    if isinstance(client, qinb.EdgeStore):
        return json.loads((client.path / collection / "shard" / "edge_config.json").read_text())[
            "vectors"]["text"]
    params = client.client.get_collection(collection).config.params.vectors["text"]
    return json.loads(params.model_dump_json(exclude_none=True))


def test_an_on_disk_int8_vector_is_made_so_and_finds_what_full_precision_finds(client, corpus):
    corpus.qdrant.upsert("compact", vectors=COMPACT, client=client, progress=False)
    corpus.qdrant.upsert("plain", vectors=PLAIN, client=client, progress=False)
    config = vector_config(client, "compact")
    assert config["on_disk"] is True
    scalar = config["quantization_config"]
    scalar = scalar.get("scalar", scalar.get("Scalar", scalar))  # the engines spell it apart
    # Qdrant Edge memory-maps the int8 copy beside on-disk vectors (the process's own memory);
    # a server is asked to keep it in RAM, as Qdrant recommends for on-disk vectors
    in_ram = not isinstance(client, qinb.EdgeStore)
    assert scalar["type"].lower() == "int8" and scalar["always_ram"] is in_ram
    assert "quantization_config" not in vector_config(client, "plain")
    for query in ("red planet", "how to cook pasta", "rivers of europe"):
        compact = qinb.search("compact", query, using="text", limit=5, client=client)
        plain = qinb.search("plain", query, using="text", limit=5, client=client)
        assert compact.index.tolist() == plain.index.tolist()
    # the spec is saved with the collection, so search and a later upsert know it
    again = corpus.qdrant.upsert("compact", vectors=COMPACT, client=client, progress=False)
    assert (again.upserted, again.unchanged) == (0, len(corpus))
    assert "on_disk=True" in repr(COMPACT["text"]) and "quantization='int8'" in repr(COMPACT["text"])


def test_how_a_vector_is_kept_cannot_change_after_it_is_made(client, corpus):
    corpus.qdrant.upsert("kept", vectors=PLAIN, client=client, progress=False)
    with pytest.raises(SpecConflictError, match="set when it is created"):
        corpus.qdrant.upsert("kept", vectors=COMPACT, client=client, progress=False)
    said = "vector 'bm25': the collection keeps it in RAM, full precision, this upsert {'on_disk': True}"
    with pytest.raises(SpecConflictError, match=re.escape(said)):
        corpus.qdrant.upsert("kept", vectors={**PLAIN, "bm25": qinb.Bm25("text", on_disk=True)},
                             client=client, progress=False)
    more = {**PLAIN, "title": qinb.Text("topic", quantization="binary")}
    with pytest.raises(SpecConflictError, match="upsert into a new collection with every vector"):
        corpus.qdrant.upsert("kept", vectors=more, client=client, progress=False)
    assert client.shape("kept").dense.keys() == {"text"}  # nothing was added


def test_a_copy_keeps_the_vectors_on_disk_quantized_and_their_graph(corpus, tmp_path):
    store = qinb.connect(tmp_path / "a")
    vectors = {"text": qinb.Text("text", on_disk=True, quantization="int8", hnsw={"m": 8}),
               "bm25": qinb.Bm25("text", on_disk=True)}
    corpus.qdrant.upsert("compact", vectors=vectors, client=store, progress=False)
    other = qinb.connect(tmp_path / "b")
    qinb.copy("compact", source=store, to=other)
    assert vector_config(other, "compact")["on_disk"] is True
    assert "scalar" in json.dumps(vector_config(other, "compact")["quantization_config"]).lower()
    assert vector_config(other, "compact")["hnsw_config"]["m"] == 8
    sparse = json.loads((other.path / "compact" / "shard" / "edge_config.json").read_text())
    assert sparse["sparse_vectors"]["bm25"]["on_disk"] is True
    assert "on_disk=True" in repr(saved_specs(other, "compact")[0]["bm25"])


def test_storage_options_are_checked_when_the_spec_is_made():
    with pytest.raises(ArgumentError, match="quantization must be one of None, 'int8', 'binary'"):
        qinb.Text("text", quantization="int4")
    with pytest.raises(ArgumentError, match="on_disk must be True or False"):
        qinb.Text("text", on_disk="yes")
    with pytest.raises(ArgumentError, match="on_disk must be True or False"):
        qinb.Bm25("text", on_disk=1)
    with pytest.raises(ArgumentError, match="hnsw takes a dict of m and ef_construct"):
        qinb.Text("text", hnsw={"m": 16, "ef": 64})
    with pytest.raises(ArgumentError, match="hnsw ef_construct must be a whole number, at least 4"):
        qinb.Text("text", hnsw={"ef_construct": 2})
    with pytest.raises(ArgumentError, match="hnsw m must be a whole number, at least 0"):
        qinb.Text("text", hnsw={"m": -1})
    with pytest.raises(ArgumentError, match="passages are searched without a graph"):
        qinb.Text("text", chunk_size=128, hnsw={"m": 32})


def test_the_graph_settings_are_made_saved_and_kept(client, corpus):
    denser = {"text": qinb.Text("text", hnsw={"m": 32, "ef_construct": 200}), "bm25": qinb.Bm25("text")}
    corpus.qdrant.upsert("denser", vectors=denser, client=client, progress=False)
    graph = vector_config(client, "denser")["hnsw_config"]
    assert (graph["m"], graph["ef_construct"]) == (32, 200)
    assert "hnsw={'ef_construct': 200, 'm': 32}" in repr(denser["text"])
    # saved with the collection: search finds it, and another graph is a conflict
    corpus.qdrant.upsert("plain", vectors=PLAIN, client=client, progress=False)
    for query in ("red planet", "rivers of europe"):
        assert (qinb.search("denser", query, using="text", limit=3, client=client).index.tolist()
                == qinb.search("plain", query, using="text", limit=3, client=client).index.tolist())
    with pytest.raises(SpecConflictError, match=re.escape("'hnsw': {'ef_construct': 200, 'm': 32}")):
        corpus.qdrant.upsert("denser", vectors=PLAIN, client=client, progress=False)
    again = corpus.qdrant.upsert("denser", vectors=denser, client=client, progress=False)
    assert again.unchanged == len(corpus)
