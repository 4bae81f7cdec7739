"""A Dask DataFrame is a source: on a 2-process LocalCluster its partitions are checked and
embedded by the workers (a model loaded once per worker), and the points are written by the
client to the embedded store, or by the workers to a server; the same rows give the same points
and hits as pandas, a re-run embeds nothing, and a worker killed mid-run loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qinb
from qinb.errors import ArgumentError, InvalidRowsError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

WORDS = ["planet", "orbit", "bread", "oven", "river", "mountain", "violin", "chess", "garden"]


def frame(n: int = 48) -> pd.DataFrame:
    """Short texts (every ninth one repeated), a long text every twelfth row, and an id column."""
    text = [f"{WORDS[i % 9]} number {i % 40} near the {WORDS[(i * 4) % 9]}" for i in range(n)]
    long = [" ".join(f"{WORDS[(i + k) % 9]} {k}" for k in range(300 if i % 12 == 0 else 20))
            for i in range(n)]
    return pd.DataFrame({"doc_id": [1000 + i for i in range(n)], "text": text, "body": long,
                         "tag": [WORDS[i % 3] for i in range(n)]})


VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8),
           "body": qinb.Text("body", chunk_size=64, chunk_overlap=8)}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local, distributed.Client(local) as c:
        yield c


def points_of(store, collection: str) -> dict[int, tuple[dict, dict]]:
    records, _ = store.scroll(collection, limit=10_000, vectors=True)
    return {r.id: (r.payload, r.vectors) for r in records}


def same_points(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for pid, (payload, vectors) in a.items():
        assert payload == b[pid][0]
        assert sorted(vectors) == sorted(b[pid][1])
        for name, vector in vectors.items():
            other = b[pid][1][name]
            if isinstance(vector, np.ndarray):
                np.testing.assert_allclose(vector, other, atol=1e-5)
            else:
                assert list(vector.indices) == list(other.indices)
                np.testing.assert_allclose(vector.values, other.values, atol=1e-5)


def test_a_dask_frame_without_id_column_is_refused(tmp_path):
    ddf = dd.from_pandas(frame(), npartitions=2)
    with pytest.raises(ArgumentError, match="id_column="):
        qinb.upsert(ddf, "c", vectors=VECTORS, client=qinb.connect(tmp_path))


def test_without_a_cluster_the_partitions_go_in_one_at_a_time(tmp_path):
    store = qinb.connect(tmp_path)
    df = frame()
    report = dd.from_pandas(df, npartitions=3).qdrant.upsert(
        "c", vectors=VECTORS, client=store, id_column="doc_id", progress=False)
    qinb.upsert(df, "p", vectors=VECTORS, client=store, id_column="doc_id", progress=False)
    assert report.upserted == len(df)
    same_points(points_of(store, "c"), points_of(store, "p"))


def test_workers_embed_and_the_client_writes_the_points_pandas_gives(cluster, tmp_path):
    store = qinb.connect(tmp_path)
    df = frame()
    ddf = dd.from_pandas(df, npartitions=4)
    report = ddf.qdrant.upsert("dask", vectors=VECTORS, client=store, id_column="doc_id",
                               progress=False)
    by_pandas = qinb.upsert(df, "pandas", vectors=VECTORS, client=store, id_column="doc_id",
                            progress=False)
    assert (report.rows, report.upserted, report.failed_rows) == (48, 48, 0)
    assert report.passages == by_pandas.passages > 48
    same_points(points_of(store, "dask"), points_of(store, "pandas"))
    # each vector's ranking (a fused ranking of these tie-heavy rows differs between two
    # pandas upserts of the same rows too: the engine ranks tied candidates in no fixed order)
    for query in ("river near the violin", "chess number 7"):
        for using in VECTORS:
            a = qinb.search("dask", query, client=store, limit=10, using=using)
            b = qinb.search("pandas", query, client=store, limit=10, using=using)
            assert a.index.tolist() == b.index.tolist()
            np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)

    # a warm re-run: every row unchanged, nothing embedded, no object asked for
    again = ddf.qdrant.upsert("dask", vectors=VECTORS, client=store, id_column="doc_id",
                              progress=False)
    assert (again.unchanged, again.upserted, again.objects, again.embedded) == (48, 0, 0, 0)

    # one changed row: only its objects are embedded, by a worker
    changed = df.copy()
    changed.loc[5, "text"] = "a violin by the river at night"
    third = dd.from_pandas(changed, npartitions=4).qdrant.upsert(
        "dask", vectors=VECTORS, client=store, id_column="doc_id", progress=False)
    assert (third.upserted, third.unchanged, third.objects) == (1, 47, 2)
    assert qinb.search("dask", "violin by the river at night", client=store,
                       limit=1)["doc_id"].tolist() == [1005]


def test_bad_rows_and_duplicate_ids_across_partitions_are_reported_by_row(cluster, tmp_path):
    store = qinb.connect(tmp_path)
    df = frame(40)
    df.loc[7, "text"] = ""
    df.loc[30, "doc_id"] = 1003  # the id of row 3, in another partition
    ddf = dd.from_pandas(df, npartitions=4)
    report = qinb.upsert(ddf, "c", vectors=VECTORS, client=store, id_column="doc_id",
                         errors="skip", progress=False)
    assert report.upserted == 38 and report.failed_rows == 2
    # labelled by their ids, as every row is with id_column
    assert sorted(report.failed["row"]) == [1003, 1007]
    assert "duplicate id 1003" in report.failed.set_index("row").loc[1003, "reason"]
    assert store.count("c") == 38

    with pytest.raises(InvalidRowsError, match="row 1007"):
        qinb.upsert(ddf, "raise", vectors=VECTORS, client=store, id_column="doc_id",
                    progress=False)


def test_delete_missing_on_a_cluster_mirrors_the_table_and_a_failed_row_keeps_its_point(
        cluster, tmp_path):
    store = qinb.connect(tmp_path)
    df = frame()
    qinb.upsert(dd.from_pandas(df, npartitions=4), "c", vectors=VECTORS, client=store,
                id_column="doc_id", progress=False)
    cleaned = df.drop(index=[2, 13, 14, 40, 47]).copy()
    cleaned.loc[20, "text"] = "a garden of chess players"
    cleaned.loc[21, "text"] = ""  # fails its checks: its stored point stays as it was
    report = qinb.upsert(dd.from_pandas(cleaned, npartitions=3), "c", vectors=VECTORS,
                         client=store, id_column="doc_id", errors="skip", progress=False,
                         delete_missing=True)
    assert (report.rows, report.upserted, report.failed_rows, report.deleted) == (43, 1, 1, 5)
    assert report.objects == 2  # the changed row's text and bm25: nothing else embedded
    assert "5 deleted (not in the source)" in str(report)
    assert sorted(points_of(store, "c")) == sorted(df["doc_id"].drop(index=[2, 13, 14, 40, 47]))
    # the fused ranking (ties and all) is the one of the same rows upserted from pandas
    held = cleaned.copy()
    held.loc[21, "text"] = df.loc[21, "text"]
    qinb.upsert(held, "p", vectors=VECTORS, client=store, id_column="doc_id", progress=False)
    for query in ("garden of chess", "river near the violin", "number 7"):
        a = qinb.search("c", query, client=store, limit=10)
        b = qinb.search("p", query, client=store, limit=10)
        assert a.index.tolist() == b.index.tolist()


def test_each_worker_loads_a_model_once_with_its_share_of_the_cores_or_the_threads_given(
        cluster, tmp_path):
    store = qinb.connect(tmp_path)
    df = frame(64)
    # a worker of one Dask thread runs its models on one; a spec's own threads= wins
    vectors = {"text": qinb.Text("text"), "tag": qinb.Text("tag", options={"threads": 2})}
    report = qinb.upsert(dd.from_pandas(df, npartitions=16), "c", vectors=vectors, client=store,
                         id_column="doc_id", progress=False)
    assert report.upserted == 64
    loads = cluster.run(qinb.models.loads)
    assert len(loads) == 2
    for worker, loaded in loads.items():
        assert sorted(loaded, key=str) == [(qinb.models.MINILM, {"threads": 1}),
                                           (qinb.models.MINILM, {"threads": 2})], (worker, loaded)


@pytest.fixture
def fake_url():
    from fakeserver import FakeServer, serve_http

    fake = FakeServer()
    with serve_http(fake) as url:
        yield url, fake


def test_workers_write_to_a_server_themselves(cluster, fake_url):
    url, fake = fake_url
    store = qinb.connect(url=url, check_compatibility=False)
    df = frame(32)
    vectors = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}
    report = qinb.upsert(dd.from_pandas(df, npartitions=4), "dask", vectors=vectors, client=store,
                         id_column="doc_id", progress=False)
    assert report.upserted == 32
    writers = {body["points"][0]["id"] for method, path, body in fake.requests
               if method == "PUT" and path == "/collections/dask/points"}
    assert len(writers) >= 2  # a write request per partition at least, every body validated
    qinb.upsert(df, "pandas", vectors=vectors, client=store, id_column="doc_id", progress=False)
    dask_points, pandas_points = fake.points["dask"], fake.points["pandas"]
    assert sorted(dask_points) == sorted(pandas_points) == sorted(df["doc_id"])
    for pid, point in dask_points.items():
        assert point["payload"] == pandas_points[pid]["payload"]
        np.testing.assert_allclose(point["vector"]["text"], pandas_points[pid]["vector"]["text"],
                                   atol=1e-5)
        assert point["vector"]["bm25"] == pandas_points[pid]["vector"]["bm25"]
    # the client wrote none of these points: the workers did
    again = qinb.upsert(dd.from_pandas(df, npartitions=4), "dask", vectors=vectors, client=store,
                        id_column="doc_id", progress=False)
    assert (again.unchanged, again.embedded) == (32, 0)


def test_with_cloud_inference_workers_send_documents_and_load_no_model(cluster, fake_url):
    url, fake = fake_url
    store = qinb.connect(url=url, cloud_inference=True, check_compatibility=False)
    df = frame(24)
    before = cluster.run(qinb.models.loads)
    vectors = {"text": qinb.Text("text", options={"threads": 2}), "bm25": qinb.Bm25("text")}
    report = qinb.upsert(dd.from_pandas(df, npartitions=4), "cloud", vectors=vectors,
                         client=store, id_column="doc_id", progress=False)
    assert report.upserted == 24
    assert cluster.run(qinb.models.loads) == before  # the server embeds, not the workers
    sent = {point["id"]: point["vector"] for method, path, body in fake.requests
            if method == "PUT" and path == "/collections/cloud/points" for point in body["points"]}
    assert sorted(sent) == sorted(df["doc_id"])
    for pid, vector in sent.items():
        text = df.loc[df["doc_id"] == pid, "text"].item()
        assert vector["text"] == {"text": text, "model": qinb.models.MINILM}  # no runtime options
        assert vector["bm25"]["text"] == text and vector["bm25"]["model"] == "qdrant/bm25"


def test_a_worker_killed_mid_run_loses_nothing_and_a_rerun_embeds_nothing_stored(tmp_path):
    store = qinb.connect(tmp_path)
    df = frame(160)
    vectors = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = threading.Event()

        def kill_when_a_worker_has_embedded() -> None:
            deadline = time.time() + 60
            while time.time() < deadline and not killed.is_set():
                if store.exists("c") and store.count("c") > 0:
                    os.kill(victim, signal.SIGKILL)
                    killed.set()
                time.sleep(0.05)

        watcher = threading.Thread(target=kill_when_a_worker_has_embedded, daemon=True)
        watcher.start()
        report = qinb.upsert(dd.from_pandas(df, npartitions=16), "c", vectors=vectors,
                             client=store, id_column="doc_id", progress=False)
        watcher.join()
        assert killed.is_set()
        assert report.upserted == 160 and store.count("c") == 160
        again = qinb.upsert(dd.from_pandas(df, npartitions=16), "c", vectors=vectors,
                            client=store, id_column="doc_id", progress=False)
    assert (again.unchanged, again.embedded, again.objects) == (160, 0, 0)


def test_the_same_calls_run_on_a_cluster_started_by_dask_s_own_commands(tmp_path):
    """A scheduler and workers started as on a real cluster (``dask scheduler``, ``dask
    worker``), reached by the scheduler's address, reading a Parquet source."""
    dask_command = Path(sys.executable).with_name("dask")
    address_file = tmp_path / "scheduler.json"
    started = [subprocess.Popen([str(dask_command), *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for args in (["scheduler", "--scheduler-file", str(address_file), "--port", "0",
                             "--dashboard-address", ":0"],
                            ["worker", "--scheduler-file", str(address_file), "--nworkers", "2",
                             "--nthreads", "1", "--no-dashboard"])]
    try:
        deadline = time.time() + 60
        while not address_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        assert address.startswith("tcp://")
        df = frame(40)
        df.to_parquet(tmp_path / "rows.parquet", row_group_size=10)
        store = qinb.connect(tmp_path / "store")
        with distributed.Client(address) as client:
            client.wait_for_workers(2, timeout=60)
            ddf = dd.read_parquet(tmp_path / "rows.parquet", split_row_groups=True)
            assert ddf.npartitions == 4
            report = ddf.qdrant.upsert("c", vectors=VECTORS, client=store, id_column="doc_id",
                                       progress=False)
            workers = client.run(os.getpid)
            loaded = client.run(qinb.models.loads)
        assert report.upserted == 40 and len(workers) == 2
        assert all(loads for loads in loaded.values())  # both workers embedded
        # the same rows as pandas has them (each row group's index starts at 0 again)
        rows = pd.concat(pd.read_parquet(tmp_path / "rows.parquet").pipe(
            lambda whole: [whole[i:i + 10].reset_index(drop=True) for i in range(0, 40, 10)]))
        qinb.upsert(rows, "pandas", vectors=VECTORS, client=store, id_column="doc_id",
                    progress=False)
        same_points(points_of(store, "c"), points_of(store, "pandas"))
    finally:
        for process in started[::-1]:
            process.terminate()
            process.wait(timeout=30)
