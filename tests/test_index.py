"""Qdrant Edge builds its HNSW graph once a collection is large enough, and a dense query then
uses it: read back from the segments' own configs, not assumed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from qdrant_client import models

import qinb
from qinb.store import edge
from qinb.store.base import Point, Probe


def graphs(store, collection: str, name: str) -> list[dict]:
    """The graph options of ``name`` in each segment that has a graph for it."""
    found = []
    for config in (store.path / collection / "shard" / "segments").glob("*/segment.json"):
        index = json.loads(config.read_text())["config"]["vector_data"][name]["index"]
        if index["type"] == "hnsw":
            found.append(index["options"])
    return found


def index_types(store, collection: str) -> dict[str, list[str]]:
    """Each dense vector's index type in each segment that holds vectors."""
    found: dict[str, list[str]] = {}
    for config in (store.path / collection / "shard" / "segments").glob("*/segment.json"):
        for name, params in json.loads(config.read_text())["config"]["vector_data"].items():
            found.setdefault(name, []).append(params["index"]["type"])
    return found


def test_an_upsert_past_the_threshold_leaves_a_graph_on_the_dense_vectors(tmp_path, monkeypatch):
    # STAND-IN vectors (random, 384-d like MiniLM), written through the store as an upsert
    # writes them: 14,000 points are 21 MB of vectors, past the 10 MB a segment is indexed from
    monkeypatch.setattr(edge, "INDEX_AFTER", 10_000)
    store = qinb.connect(tmp_path / "store")
    store.create("big", {"dense": 384}, ["bm25"], {})
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((14_000, 384)).astype(np.float32)
    for start in range(0, 14_000, 1000):
        store.upsert("big", [Point(id=i, payload={}, vectors={
            "dense": vectors[i], "bm25": models.SparseVector(indices=[i % 50], values=[1.0])})
            for i in range(start, start + 1000)])
    assert index_types(store, "big") == {"dense": ["plain"]}
    # the shard counts its sparse vectors as indexed: that count alone said "nothing to do"
    assert edge._unindexed(store.path / "big") == ["dense"]
    store.finish("big", progress=False)
    store.close()  # the segments the graph replaced are removed as the shard closes
    assert "hnsw" in index_types(store, "big")["dense"] and edge._unindexed(store.path / "big") == []
    # and searching it finds the nearest points: the query vector's own point first
    [hits] = store.query("big", [Probe("dense", vectors[123])], limit=3)
    assert hits[0].id == 123
    store.close()


def test_a_small_collection_gets_no_graph(tmp_path):
    store = qinb.connect(tmp_path / "store")
    store.create("small", {"dense": 8}, [], {})
    store.upsert("small", [Point(id=i, payload={}, vectors={"dense": np.ones(8, np.float32)})
                           for i in range(100)])
    store.finish("small", progress=False)
    assert index_types(store, "small") == {"dense": ["plain"]}
    store.close()


def test_the_graph_is_built_as_the_spec_says_and_m_0_builds_none(tmp_path, monkeypatch):
    monkeypatch.setattr(edge, "INDEX_AFTER", 10_000)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((14_000, 384)).astype(np.float32)
    store = qinb.connect(tmp_path / "store")
    for name, hnsw in (("denser", {"m": 8, "ef_construct": 32}), ("scan", {"m": 0})):
        store.create(name, {"dense": 384}, [], {}, storage={"dense": {"hnsw": hnsw}})
        for start in range(0, 14_000, 2000):
            store.upsert(name, [Point(id=i, payload={}, vectors={"dense": vectors[i]})
                                for i in range(start, start + 2000)])
        store.finish(name, progress=False)
    store.close()
    [denser] = graphs(store, "denser", "dense")
    assert (denser["m"], denser["ef_construct"]) == (8, 32)
    [scan] = graphs(store, "scan", "dense")  # indexed (a segment made), with no links: a scan
    assert scan["m"] == 0 and edge._unindexed(store.path / "scan") == []
    for name in ("denser", "scan"):
        assert store.query(name, [Probe("dense", vectors[77])], limit=1)[0][0].id == 77
    store.close()


def test_a_sparse_index_asked_on_disk_is_memory_mapped_once_the_load_is_done(tmp_path, monkeypatch):
    # the appendable segment indexes sparse vectors in RAM whatever is asked: finish() moves
    # them into a segment whose index is memory-mapped. 16,000 points of 120 terms take 12 MB
    monkeypatch.setattr(edge, "INDEX_AFTER", 10_000)
    store = qinb.connect(tmp_path / "store")
    store.create("sp", {}, ["bm25"], {}, storage={"bm25": {"on_disk": True}})
    store.create("ram", {}, ["bm25"], {})
    for name in ("sp", "ram"):
        for start in range(0, 16_000, 2000):
            store.upsert(name, [Point(id=i, payload={}, vectors={"bm25": models.SparseVector(
                indices=[(i * 7 + j * 13) % 50_000 for j in range(120)], values=[1.0] * 120)})
                for i in range(start, start + 2000)])
        store.finish(name, progress=False)
    store.close()  # the segments the optimizer replaced are removed as the shard closes
    assert edge._unindexed(store.path / "sp") == []

    def kinds(collection: str) -> set[str]:
        return {json.loads(c.read_text())["config"]["sparse_vector_data"]["bm25"]["index"]["index_type"]
                for c in (store.path / collection / "shard" / "segments").glob("*/segment.json")}

    # the points went into the memory-mapped index; an empty appendable segment waits for more
    assert "Mmap" in kinds("sp") and kinds("ram") == {"MutableRam"}
    query = models.SparseVector(indices=[(42 * 7 + j * 13) % 50_000 for j in range(120)],
                                values=[1.0] * 120)
    assert store.query("sp", [Probe("bm25", query)], limit=1)[0][0].id == 42
    store.close()


def test_a_build_cut_short_is_finished_by_the_next_upsert_and_its_leftovers_removed(
        tmp_path, monkeypatch):
    """Killed while finish() built the graph (issue 25, item 4): the re-run finds every row
    unchanged, and still builds the graph and removes the temporary segments left behind."""
    monkeypatch.setattr(edge, "INDEX_AFTER", 1000)
    monkeypatch.setattr(edge, "INDEX_KB", 64)
    store = qinb.connect(tmp_path / "store")
    df = pd.DataFrame({"text": [f"note {i} about the {('moon', 'bread', 'river')[i % 3]}"
                                for i in range(1500)]})
    vectors = {"dense": qinb.Text("text")}
    built = edge.EdgeStore.finish
    monkeypatch.setattr(edge.EdgeStore, "finish", lambda *a, **k: None)  # the kill, before it
    df.qdrant.upsert("cut", vectors=vectors, client=store, progress=False)
    monkeypatch.setattr(edge.EdgeStore, "finish", built)
    assert index_types(store, "cut") == {"dense": ["plain"]}
    leftover = store.path / "cut" / "shard" / "temp_segments" / "0b5e-killed"
    leftover.mkdir(parents=True)
    (leftover / "vector_storage.dat").write_bytes(b"\0" * 4096)
    report = df.qdrant.upsert("cut", vectors=vectors, client=store, progress=False)
    assert (report.upserted, report.unchanged) == (0, 1500)
    assert "hnsw" in index_types(store, "cut")["dense"] and not leftover.exists()
    hits = qinb.search("cut", "a note about the river", client=store, limit=5)
    assert len(hits) == 5 and hits["text"].str.endswith("the river").all()
    store.close()
