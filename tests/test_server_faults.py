"""A Qdrant server that fails in every way a real one does: each failure reaches the user as a
QinbError naming the server, the call and the status, busy answers are retried, and a re-run
loses nothing."""

from __future__ import annotations

import httpx
import pytest
from fakeserver import FakeServer

import qinb
from qinb.store import client as client_engine

URL = "https://cluster.qdrant.test:6333"
VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


@pytest.fixture
def server(monkeypatch) -> FakeServer:
    monkeypatch.setattr(client_engine, "BACKOFF", 0.0)  # retries without waiting
    return FakeServer()


@pytest.fixture
def remote(server):
    store = qinb.connect(url=URL, api_key="k", transport=httpx.MockTransport(server),
                         check_compatibility=False)
    yield store
    store.close()


def error(status: int, message: str = "boom", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers,
                          json={"status": {"error": message}, "time": 0.0})


def points_sent(server: FakeServer, name: str) -> int:
    return len(server.points.get(name, {}))


def test_an_unreachable_server_is_named_with_what_to_check(server, remote, corpus):
    server.fail(r"/exists$", httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(qinb.StoreError) as err:
        corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False)
    assert str(err.value) == (
        f"checking collection 'c' in {URL} failed (ConnectError: [Errno 111] Connection "
        "refused); cannot reach it: check that the server runs and that the URL is right")


@pytest.mark.parametrize(("status", "kind", "advice"), [
    (500, qinb.StoreError, "the server failed: see its log"),
    (400, qinb.QueryError, "see the detail above"),
    (403, qinb.StoreError, "the server refused the credentials: check api_key="),
])
def test_search_failures_name_the_call_and_the_status(server, remote, corpus, status, kind,
                                                      advice):
    corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False)
    server.fail(r"/points/query/batch$", error(status, "Wrong input: bad filter"))
    with pytest.raises(kind) as err:
        qinb.search("c", "red planet", client=remote)
    assert f"querying collection 'c' in {URL} failed ({status} " in str(err.value)
    assert "Wrong input: bad filter" in str(err.value) and advice in str(err.value)


def test_busy_answers_are_retried_honouring_retry_after(server, remote, corpus):
    server.fail(r"PUT /collections/c/points$", error(429, "too many requests", **{"Retry-After": "0"}),
                times=2)
    server.fail(r"PUT /collections/c/points$", error(503, "overloaded"))
    report = corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False)
    assert report.upserted == points_sent(server, "c") == 12
    tries = [p for m, p, _ in server.requests if m == "PUT" and p == "/collections/c/points"]
    assert len(tries) == 4


def test_a_server_busy_past_the_retries_fails_and_a_re_run_writes_everything(server, remote,
                                                                               corpus):
    server.fail(r"PUT /collections/c/points$", error(503, "overloaded"), times=5)
    with pytest.raises(qinb.StoreError) as err:
        corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    # a 5xx answer to a write leaves it unknown whether the server applied it
    assert "stopped after at least 0 of 12 points" in str(err.value)
    assert "503 Service Unavailable: overloaded" in str(err.value)
    assert "stayed busy over 4 tries" in str(err.value)
    assert "c" not in server.collections  # it made the collection and wrote nothing: removed
    report = corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    assert report.upserted == points_sent(server, "c") == 12


def test_a_failure_mid_write_keeps_what_was_written_and_a_re_run_finishes(server, remote, corpus):
    calls = iter(range(100))
    server.fail(r"PUT /collections/c/points$",
                lambda: error(500, "disk full") if next(calls) == 1 else None, times=100)
    with pytest.raises(qinb.StoreError) as err:
        corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    assert "stopped after at least 4 of 12 points" in str(err.value) and "disk full" in str(err.value)
    assert points_sent(server, "c") == 4
    report = corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    assert (report.upserted, report.unchanged) == (8, 4)
    assert points_sent(server, "c") == 12


def test_a_lost_answer_to_a_write_makes_the_count_a_lower_bound(server, remote, corpus):
    server.fail(r"PUT /collections/c/points$", httpx.ReadTimeout("timed out"))
    with pytest.raises(qinb.StoreError) as err:
        corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    assert err.value.uncertain
    assert "stopped after at least 0 of 12 points" in str(err.value)
    assert "may have been written" in str(err.value)


def test_a_write_applied_before_a_500_is_counted_as_a_lower_bound(server, remote, corpus):
    """A cluster that times out waiting for replication has written the points it answers
    500 to: the count says "at least", and the re-run finds them written."""
    server.fail(r"PUT /collections/c/points$", error(500, "Timeout waiting for replication"),
                applied=True)
    with pytest.raises(qinb.StoreError) as err:
        corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    assert err.value.uncertain
    assert "stopped after at least 0 of 12 points" in str(err.value)
    assert "may have been written" in str(err.value)
    assert points_sent(server, "c") == 4  # the server has them all the same
    report = corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False, batch_size=4)
    assert (report.upserted, report.unchanged, points_sent(server, "c")) == (8, 4, 12)


def test_a_garbled_answer_is_a_store_error(server, remote, corpus):
    corpus.qdrant.upsert("c", vectors=VECTORS, client=remote, progress=False)
    server.fail(r"GET /collections/c$", httpx.Response(200, content=b"<html>proxy error</html>"))
    with pytest.raises(qinb.StoreError) as err:
        qinb.search("c", "red planet", client=remote)
    assert f"reading collection 'c' in {URL} failed" in str(err.value)
