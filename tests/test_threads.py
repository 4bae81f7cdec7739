"""One store used from several threads at once, as a notebook does when a widget callback runs
beside a cell; and a store closed, reloaded or opened again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pandas as pd
import pytest
from qdrant_client import QdrantClient

import qinb

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


def frame(start: int, n: int) -> pd.DataFrame:
    words = ["planet", "orbit", "bread", "oven", "river", "mountain", "violin", "chess"]
    return pd.DataFrame({"text": [f"{words[i % 8]} number {i} near {words[(i * 3) % 8]}"
                                  for i in range(start, start + n)]},
                        index=range(start, start + n))


@pytest.fixture(params=["edge", "local", "raw-client"])
def shared(request, tmp_path):
    """The same store as threads get it: Qdrant Edge, local mode, or a QdrantClient passed
    as it is (each call wraps it)."""
    if request.param == "edge":
        store = qinb.connect(tmp_path / "store")
    elif request.param == "local":
        store = qinb.connect(":memory:")
    else:
        store = QdrantClient(":memory:")
    yield store
    store.close()


def test_two_upserts_and_a_search_loop_in_threads_lose_nothing(shared):
    frame(0, 4).qdrant.upsert("c", vectors=VECTORS, client=shared, progress=False)
    reports: dict[str, qinb.UpsertReport] = {}
    failures: list[BaseException] = []
    searches: list[int] = []
    writing = threading.Event()

    def upsert(name: str, df: pd.DataFrame) -> None:
        writing.set()
        try:
            reports[name] = df.qdrant.upsert("c", vectors=VECTORS, client=shared, progress=False)
        except BaseException as exc:
            failures.append(exc)

    def search_while_writing() -> None:
        writing.wait()
        while len(reports) + len(failures) < 2:
            try:
                hits = qinb.search("c", "planet orbit", client=shared, limit=3)
                searches.append(len(hits))
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=upsert, args=("a", frame(4, 300))),
               threading.Thread(target=upsert, args=("b", frame(304, 300))),
               threading.Thread(target=search_while_writing)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert reports["a"].upserted == reports["b"].upserted == 300
    store = shared if isinstance(shared, qinb.Store) else qinb.store.as_store(shared)
    assert store.count("c") == 604
    assert searches and set(searches) == {3}


def test_a_closed_store_is_opened_again_by_connect(tmp_path):
    path = tmp_path / "local"
    store = qinb.connect(path, engine="local")
    frame(0, 3).qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)
    store.close()
    with pytest.raises(qinb.StoreError, match=r"this store was closed; qinb\.connect"):
        store.count("c")
    again = qinb.connect(path, engine="local")
    assert again is not store and again.count("c") == 3
    again.close()


def test_a_reload_of_qinb_does_not_lock_this_process_out(tmp_path):
    # in a process of its own: a reload replaces the classes the other tests hold
    script = textwrap.dedent(f"""
        import importlib, pandas as pd, qinb
        import qinb.store._connect, qinb.store.edge, qinb.store.edge_handle
        store = qinb.connect({str(tmp_path / "edge")!r}, wait=5)
        df = pd.DataFrame({{"text": ["a red planet", "a loaf of bread", "a river"]}})
        df.qdrant.upsert("c", vectors={{"bm25": qinb.Bm25("text")}}, client=store, progress=False)
        for module in (qinb.store.edge_handle, qinb.store.edge, qinb.store._connect, qinb.store):
            importlib.reload(module)
        fresh = qinb.store.connect({str(tmp_path / "edge")!r}, wait=5)
        print(fresh is store, fresh.count("c"))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False", "3"]


def test_processes_creating_one_collection_at_once_all_write_into_it(tmp_path):
    # two notebooks running their first upsert at the same moment: one creates, the others
    # find the whole collection and check their specs against it
    script = textwrap.dedent(f"""
        import sys, pandas as pd, qinb
        i = int(sys.argv[1])
        df = pd.DataFrame({{"text": [f"row {{j}} of {{i}}" for j in range(50)]}},
                          index=[f"{{i}}-{{j}}" for j in range(50)])
        report = df.qdrant.upsert("c", vectors={{"bm25": qinb.Bm25("text")}},
                                  client=qinb.connect({str(tmp_path / "store")!r}), progress=False)
        print(report.created, report.upserted)
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, [err[-1500:] for _, err in outs]
    results = sorted(out.split()[0] for out, _ in outs)
    assert results == ["False", "False", "False", "True"]
    store = qinb.connect(tmp_path / "store")
    assert store.count("c") == 200 and store.collections() == ["c"]
    store.close()


def test_processes_handing_a_collection_back_and_forth_never_corrupt_it(tmp_path):
    # hold=0: each process loads the shard for every operation and closes it after, so the
    # shard changes hands hundreds of times. Edge's own lock is let go before its segments
    # are all closed; a load in that moment corrupted the collection for good (stop 20's CI)
    path = tmp_path / "store"
    store = qinb.connect(path)
    store.create("c", dense={}, sparse=["s"], metadata={})
    store.close()
    # counted in operations, not seconds: the writer starts once both readers have read, and
    # the readers read until the writer is done, so they take turns however loaded the machine
    writes = 30
    script = textwrap.dedent(f"""
        import pathlib, sys, time
        from qinb.store.base import Point
        from qinb.store.edge import EdgeStore
        from qdrant_client import models
        store = EdgeStore({str(path)!r}, hold=0, wait=120)
        marks = pathlib.Path({str(tmp_path)!r})
        role, done = sys.argv[1], 0
        if role == "write":
            while len(list(marks.glob("ready.*"))) < 2:
                time.sleep(0.05)
            for done in range({writes}):
                store.upsert("c", [Point(id=(done * 200 + k) % 4000, payload={{"k": k}},
                                         vectors={{"s": models.SparseVector(
                                             indices=list(range(k % 50, k % 50 + 20)),
                                             values=[1.0] * 20)}}) for k in range(200)])
            (marks / "written").touch()
        else:
            store.count("c")
            (marks / f"ready.{{sys.argv[2]}}").touch()
            while not (marks / "written").exists():
                store.count("c")
                done += 1
        print(done)
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script, role, str(i)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for i, role in enumerate(("write", "read", "read"))]
    outs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err[-1500:] for _, err in outs]
    assert int(outs[0][0]) == writes - 1
    # each reader opened the shard between the writer's writes, many times over
    assert all(int(out) >= 5 for out, _ in outs[1:]), [out for out, _ in outs]
    store = qinb.connect(path)
    assert store.count("c") == 4000
    store.close()
