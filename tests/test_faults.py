"""The fault matrix: faults of disks, files, sources, servers and clusters are errors or
warnings, never crashes, raw exceptions or lost rows (issue 26). Each case adds itself to the
tally the last test prints: cases tried, crashes, raw exceptions, points lost, files lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import qinb
from qinb import embed

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}
TALLY: dict[str, dict] = {}


def tally(case: str, outcome: dict) -> None:
    """A case tried: it passed its assertions, so nothing crashed, was raw or was lost."""
    TALLY[case] = outcome


def unusable_cache(kind: str, tmp_path) -> str:
    """A cache folder that cannot be opened, or whose database is garbage."""
    if kind == "not-a-folder":  # its parent is a file: nothing can be made there
        (tmp_path / "afile").write_text("x")
        return str(tmp_path / "afile" / "cache")
    folder = tmp_path / "garbled"
    folder.mkdir()
    (folder / "cache.db").write_bytes(b"this is not a database" * 100)
    return str(folder)


@pytest.mark.parametrize("kind", ["not-a-folder", "garbled"])
def test_a_cache_that_cannot_be_used_steps_aside_and_fails_no_row(kind, client, corpus, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("QINB_CACHE", unusable_cache(kind, tmp_path))
    embedded = []
    real = embed._embed_batch
    monkeypatch.setattr(embed, "_embed_batch", lambda items, runtime, *, query: (
        embedded.extend(items) or real(items, runtime, query=query)))
    with pytest.warns(qinb.QinbWarning, match="embedding cache at .* cannot be used") as caught:
        report = corpus.qdrant.upsert("c", vectors=VECTORS, client=client, errors="skip",
                                      progress=False)
        hits = qinb.search("c", "which planet is the largest", client=client, limit=3)
    assert len([w for w in caught if "embedding cache" in str(w.message)]) == 1  # said once
    assert (report.upserted, report.failed_rows, report.cached) == (len(corpus), 0, 0)
    assert client.count("c") == len(corpus) and hits["topic"].iloc[0] == "planets"
    assert embedded  # embedded here, as if the cache were empty
    qinb.cache.close()  # the next kernel tries it again
    tally(f"embedding cache: {kind}", {"qinb": True})


# --- the disk under an embedded store: full, read-only, damaged --------------------------------

CHILD = """
import json, random, sys
import pandas as pd
import qinb
rows, store = int(sys.argv[1]), qinb.connect(sys.argv[2], engine=sys.argv[3])
rng = random.Random(5)  # text that does not compress: the engine compresses payloads
df = pd.DataFrame({"text": [f"row {i} " + " ".join("".join(rng.choices("abcdefghij", k=9))
                                                   for _ in range(700)) for i in range(rows)]})
out = {}
try:
    report = qinb.upsert(df, "c", vectors={"bm25": qinb.Bm25("text", avg_len=8)}, client=store,
                         progress=False, batch_size=64)
    out["upserted"] = report.upserted
except Exception as exc:
    out["error"], out["message"] = type(exc).__name__, str(exc)
    out["qinb"] = isinstance(exc, qinb.QinbError)
try:
    out["count"] = store.count("c") if "c" in qinb.collections(client=store) else 0
except Exception as exc:
    out["count_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@pytest.fixture
def disk(tmp_path):
    """A 48 MB tmpfs of its own (root only), unmounted after the test."""
    at = tmp_path / "disk"
    at.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs",
                                            str(at)], capture_output=True).returncode:
        if os.environ.get("CI"):
            pytest.fail("the disk fault cases need root and tmpfs mounts on CI")
        pytest.skip("mounting a small tmpfs needs root")
    yield at
    subprocess.run(["umount", "-l", str(at)], check=False)


def remount(at, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(at)], check=True)


def child(rows: int, store, engine: str = "edge") -> dict:
    """An upsert in a process of its own: a crash (SIGBUS on a full disk) is an exit code here,
    not the end of the test run."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(rows), str(store), engine],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the upsert crashed (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_a_full_disk_stops_an_upsert_with_an_error_and_a_re_run_completes(disk, engine):
    store = disk / "store"
    first = child(3000, store, engine)  # 3,000 rows of 7 kB: more than the disk holds, as written
    assert first.get("qinb") and first["error"] == "StoreError", first
    assert str(disk) in first["message"] and "free" in first["message"]
    found = re.search(r"stopped after (\d+) of 3000 points", first["message"])
    assert found, first
    written = int(found.group(1))
    assert first["count"] == written > 0  # what it said it wrote is there, whole
    tally(f"disk full mid-upsert ({engine})", first)
    remount(disk, "size=200m")
    again = child(3000, store, engine)
    assert "error" not in again and again["count"] == 3000
    assert again["upserted"] == 3000 - written  # nothing lost, nothing written twice


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_a_nearly_full_disk_refuses_to_create_a_collection_and_leaves_none(disk, engine):
    (disk / "store").mkdir()
    with open(disk / "ballast", "wb") as f:
        f.write(b"\0" * (42 * 2**20))
    got = child(10, disk / "store", engine)
    assert got.get("qinb") and "creating collection 'c' needs about" in got["message"], got
    assert got["count"] == 0 and "count_error" not in got
    tally(f"disk nearly full at create ({engine})", got)


def test_a_read_only_store_says_so_for_every_call_and_still_lists(disk, corpus):
    store = qinb.connect(disk / "store")
    corpus.qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)
    store.close()
    remount(disk, "ro")
    store = qinb.connect(disk / "store")
    assert qinb.collections(client=store) == ["c"]
    calls = {"count": lambda: store.count("c"),
             "search": lambda: qinb.search("c", "red planet", client=store),
             "read": lambda: qinb.read("c", client=store, progress=False),
             "upsert": lambda: corpus.qdrant.upsert("c", vectors=VECTORS, client=store,
                                                   progress=False)}
    for name, call in calls.items():
        with pytest.raises(qinb.StoreError, match="read-only filesystem") as err:
            call()
        assert str(disk / "store" / "c") in str(err.value), name
        tally(f"read-only store: {name}", {"qinb": True})


def damage(kind: str, folder) -> str:
    """Damage a collection's files as a crash, a full disk or a bad copy would; the file hit."""
    shard = folder / "shard"
    segment = next((shard / "segments").iterdir())
    if kind == "empty qinb.json":
        (folder / "qinb.json").write_text("")
    elif kind == "truncated qinb.json":
        text = (folder / "qinb.json").read_text()
        (folder / "qinb.json").write_text(text[:len(text) // 2])
    elif kind == "missing shard":
        shutil.rmtree(shard)
    elif kind == "garbled wal":
        for wal in (shard / "wal").glob("open-*"):
            with open(wal, "r+b") as f:
                f.write(b"\xff" * 256)
    elif kind == "truncated segment":
        for f in segment.rglob("*"):
            if f.is_file() and f.stat().st_size > 100:
                os.truncate(f, f.stat().st_size // 3)
    elif kind == "garbled segment.json":
        (segment / "segment.json").write_text("{garbage")
    return kind.split()[-1]


@pytest.mark.parametrize("kind", ["empty qinb.json", "truncated qinb.json", "missing shard",
                                  "garbled wal", "truncated segment", "garbled segment.json"])
def test_a_damaged_collection_is_a_collection_error_that_says_what_to_do(kind, tmp_path, corpus):
    store = qinb.connect(tmp_path / "store")
    corpus.qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)
    corpus.qdrant.upsert("other", vectors=VECTORS, client=store, progress=False)
    store.close()
    damage(kind, tmp_path / "store" / "c")
    store = qinb.connect(tmp_path / "store")
    calls = [lambda: qinb.search("c", "red planet", client=store),
             lambda: corpus.qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)]
    if "qinb.json" in kind:  # the shard itself is whole: counting it needs no metadata
        assert store.count("c") == len(corpus)
    else:
        calls.append(lambda: store.count("c"))
    for call in calls:
        with pytest.raises(qinb.CollectionError, match=r"qinb\.drop\('c'\)") as err:
            call()
        assert str(tmp_path / "store" / "c") in str(err.value)
    assert store.count("other") == len(corpus)  # the others are untouched
    qinb.drop("c", client=store)
    report = corpus.qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)
    assert report.upserted == store.count("c") == len(corpus)
    tally(f"damaged: {kind}", {"qinb": True})



def local_calls(path, corpus) -> dict:
    """Every call a local-mode store at ``path`` gets, each opening it (a failed opening is
    not kept, so each tries again)."""
    def open_():
        return qinb.connect(path, engine="local")
    return {"connect": open_,
            "count": lambda: open_().count("c"),
            "search": lambda: qinb.search("c", "red planet", client=open_()),
            "read": lambda: qinb.read("c", client=open_(), progress=False),
            "upsert": lambda: corpus.qdrant.upsert("c", vectors=VECTORS, client=open_(),
                                                   progress=False)}


def test_a_read_only_local_mode_store_says_why_it_cannot_open(disk, corpus):
    store = qinb.connect(disk / "store", engine="local")
    corpus.qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)
    store.close()
    remount(disk, "ro")
    for name, call in local_calls(disk / "store", corpus).items():
        with pytest.raises(qinb.StoreError, match=r"lock file .* Read-only file system") as err:
            call()
        assert str(disk / "store") in str(err.value) and "cp -r" in str(err.value), name
        tally(f"read-only local-mode store: {name}", {"qinb": True})


@pytest.mark.parametrize("kind", ["garbled meta.json", "garbled storage.sqlite"])
def test_a_damaged_local_mode_store_is_a_collection_error(kind, tmp_path, corpus):
    store = qinb.connect(tmp_path / "store", engine="local")
    corpus.qdrant.upsert("c", vectors=VECTORS, client=store, progress=False)
    store.close()
    hit = (tmp_path / "store" / "meta.json" if "meta" in kind
           else tmp_path / "store" / "collection" / "c" / "storage.sqlite")
    hit.write_bytes(b"{garbage" * 500)
    for name, call in local_calls(tmp_path / "store", corpus).items():
        with pytest.raises(qinb.CollectionError, match="files look damaged") as err:
            call()
        assert str(tmp_path / "store") in str(err.value), name
    tally(f"damaged local-mode store: {kind}", {"qinb": True})


# --- cells and files ---------------------------------------------------------------------------

def test_a_cell_without_spaces_fails_its_row_with_the_reason(client, corpus):
    df = corpus.copy()
    df.loc["blob"] = ["x7Qk" * 50_000, "odd", 99]  # 200,000 characters, no space: one [UNK]
    spec = {"text": qinb.Text("text", chunk_size=128), "bm25": qinb.Bm25("text", avg_len=8)}
    with pytest.raises(qinb.InvalidRowsError, match=r"row 'blob' text: 200,000 of its 200,000 "
                                                    r"characters are words .* cannot read"):
        qinb.upsert(df, "c", vectors=spec, client=client, progress=False)
    report = qinb.upsert(df, "c", vectors=spec, client=client, progress=False, errors="skip")
    assert (report.upserted, report.failed_rows) == (len(corpus), 1)
    assert "break the text up with spaces" in report.failed.iloc[0]["reason"]
    # a text with one long word in it is read as it is: only that word is unknown to the model
    words = corpus.assign(text=corpus["text"] + " https://example.org/" + "a1b2c3" * 30)
    assert qinb.upsert(words, "w", vectors=spec, client=client, progress=False).failed_rows == 0
    # BM25 alone reads any word
    bm25 = {"bm25": qinb.Bm25("text", avg_len=8)}
    assert qinb.upsert(df, "b", vectors=bm25, client=client, progress=False).failed_rows == 0
    tally("a cell without spaces", {"qinb": True})


def parquet_files(folder, *frames) -> str:
    folder.mkdir()
    for number, frame in enumerate(frames):
        frame.to_parquet(folder / f"part-{number}.parquet", index=False)
    return str(folder / "*.parquet")


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_an_unreadable_parquet_file_in_a_glob_is_named_before_anything_is_written(
        kind, client, corpus, tmp_path):
    glob = parquet_files(tmp_path / "files", corpus.iloc[:6], corpus.iloc[6:])
    bad = tmp_path / "files" / "part-1.parquet"
    bad.write_bytes(b"" if kind == "empty" else bad.read_bytes()[:-40])
    with pytest.raises(qinb.ArgumentError, match=rf"file '{re.escape(str(bad))}' cannot be read "
                                                 r"as parquet .*nothing was written"):
        qinb.upsert(glob, "c", vectors=VECTORS, client=client, progress=False)
    assert "c" not in qinb.collections(client=client)
    tally(f"parquet file {kind} in a glob", {"qinb": True})


def test_a_column_that_changes_type_in_a_later_file_is_refused_naming_the_file(
        client, corpus, tmp_path):
    later = pd.DataFrame({"text": range(6), "topic": "numbers", "n": range(6)})
    glob = parquet_files(tmp_path / "files", corpus, later)
    with pytest.raises(qinb.ArgumentError, match=r"column 'text' holds int64 in file "
                                                 r"'.*part-1\.parquet' but (large_)?string"):
        qinb.upsert(glob, "c", vectors=VECTORS, client=client, progress=False)
    assert "c" not in qinb.collections(client=client)  # known from the footers: up front
    # CSV files are typed as they are read, each file as it comes
    (tmp_path / "csv").mkdir()
    corpus.to_csv(tmp_path / "csv" / "a.csv", index=False)
    later.to_csv(tmp_path / "csv" / "b.csv", index=False)
    with pytest.raises(qinb.ArgumentError, match=r"column 'text' holds int64 in file '.*b\.csv' "
                                                 r"but string"):
        qinb.upsert(str(tmp_path / "csv" / "*.csv"), "c", vectors=VECTORS, client=client,
                    progress=False)
    assert "c" not in qinb.collections(client=client)  # a's 12 rows were still one piece
    tally("a column changing type between files", {"qinb": True})


def test_a_malformed_json_line_is_named_by_its_own_line_number(client, tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps({"text": f"row {i} about planets and bread"}) for i in range(3000)]
    lines[2499] = '{"text": "a line cut short'
    path.write_text("\n".join(lines) + "\n")
    for errors in ("raise", "skip"):  # pyarrow cannot skip a line: neither can qinb
        with pytest.raises(qinb.ArgumentError, match=r"rows\.jsonl' (cannot|could not) be read "
                                                     r"(as json )?at line 2,500 "):
            qinb.upsert(str(path), "c", vectors=VECTORS, client=client, progress=False,
                        errors=errors)
    # past the block the types are read from: the rows before it are written, the line named
    lines = [json.dumps({"text": f"row {i} about planets and bread"}) for i in range(60_000)]
    lines[50_000] = '{"text": "a line cut short'
    path.write_text("\n".join(lines) + "\n")
    store = qinb.connect(tmp_path / "big")  # past local mode's size
    with pytest.raises(qinb.ArgumentError, match=r"rows\.jsonl' could not be read at line "
                                                 r"50,001 .*32768 points were written"):
        qinb.upsert(str(path), "c", vectors={"bm25": qinb.Bm25("text", avg_len=8)},
                    client=store, progress=False)
    assert store.count("c") == 32768  # the two pieces before the bad block, every time
    tally("a malformed JSON line", {"qinb": True})


def csv_rows(path, rows: int, bad: int, line: bytes) -> None:
    """A CSV file of ``rows`` rows (id, text) whose data row ``bad`` is the raw ``line``."""
    body = [f"{i},row {i} about planets and bread\n".encode() for i in range(rows)]
    body[bad] = line
    path.write_bytes(b"id,text\n" + b"".join(body))


def test_a_ragged_csv_line_is_a_failed_row_with_skip_and_named_by_its_line_without(
        client, tmp_path):
    path = tmp_path / "rows.csv"
    csv_rows(path, 40, 6, b"6,a row,with,two commas too many\n")  # line 8: header, rows 0-5
    store = qinb.connect(tmp_path / "store")
    with pytest.raises(qinb.ArgumentError, match=r"rows\.csv' cannot be read as csv at line 8 "
                                                 r".*nothing was written"):
        qinb.upsert(str(path), "c", vectors=VECTORS, client=store, id_column="id",
                    progress=False)
    assert "c" not in qinb.collections(client=store)
    report = qinb.upsert(str(path), "c", vectors=VECTORS, client=store, id_column="id",
                         progress=False, errors="skip")
    assert (report.rows, report.upserted, report.failed_rows) == (40, 39, 1)
    assert report.failed.iloc[0]["row"] == "rows.csv line 8"
    assert "has 4 fields where the file has 2 columns" in report.failed.iloc[0]["reason"]
    assert 6 not in set(qinb.read("c", client=store).index) and store.count("c") == 39
    # a line that cannot be read has no id: delete_missing deletes nothing, and says why
    csv_rows(path, 30, 6, b"6,a row,with,two commas too many\n")
    with pytest.warns(qinb.QinbWarning, match=r"delete_missing deleted nothing .*1 line"):
        report = qinb.upsert(str(path), "c", vectors=VECTORS, client=store, id_column="id",
                             progress=False, errors="skip", delete_missing=True)
    assert report.deleted == 0 and store.count("c") == 39
    # past the block the types are read from: the same line every run, the rows before written
    csv_rows(path, 60_000, 50_000, b"50000,a row,with,commas\n")
    said = []
    for _ in range(2):  # the re-run writes nothing new: its rows are stored already
        with pytest.raises(qinb.ArgumentError, match=r"rows\.csv' could not be read at line "
                                                     r"50,002 .*?(\d+) points were written") as e:
            qinb.upsert(str(path), "big", vectors={"bm25": qinb.Bm25("text", avg_len=8)},
                        client=store, id_column="id", progress=False)
        said.append(int(re.search(r"(\d+) points were written", str(e.value)).group(1)))
    assert said[0] == store.count("big") > 0 and said[1] == 0
    tally("a ragged CSV line", {"qinb": True})


def test_a_csv_file_that_is_not_utf8_is_named_by_its_line(client, tmp_path):
    path = tmp_path / "latin1.csv"
    csv_rows(path, 40, 3, "3,caf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(qinb.ArgumentError, match=r"latin1\.csv' is not UTF-8 text at line 5"):
        qinb.upsert(str(path), "c", vectors=VECTORS, client=client, id_column="id",
                    progress=False, errors="skip")
    assert "c" not in qinb.collections(client=client)
    store = qinb.connect(tmp_path / "store")  # past the first block: the rows before are kept
    csv_rows(path, 60_000, 50_000, "50000,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(qinb.ArgumentError, match=r"latin1\.csv' could not be read at line "
                                                 r"50,002 .*?(\d+) points were written") as e:
        qinb.upsert(str(path), "c", vectors={"bm25": qinb.Bm25("text", avg_len=8)},
                    client=store, id_column="id", progress=False)
    written = int(re.search(r"(\d+) points were written", str(e.value)).group(1))
    assert store.count("c") == written > 0
    tally("a CSV file not in UTF-8", {"qinb": True})


# --- clusters ----------------------------------------------------------------------------------

def test_a_dask_cluster_lost_mid_upsert_is_a_cluster_error_saying_what_was_written(tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    from qinb.ingest import writer as writer_module

    store = qinb.connect(tmp_path / "store")
    df = pd.DataFrame({"doc_id": range(400), "text": [f"row {i} of the table" for i in range(400)]})
    ddf = dd.from_pandas(df, npartitions=8)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    real = writer_module.Writer.put
    puts = []

    def put_then_lose_the_cluster(self, *args):  # the scheduler goes after the first partition
        real(self, *args)
        puts.append(1)
        if len(puts) == 1:
            self.wait()
            client.close()
            cluster.close()

    writer_module.Writer.put = put_then_lose_the_cluster
    environ = dict(os.environ)  # an in-process worker's plugin sets this test's cache and models
    try:
        with pytest.raises(qinb.ClusterError, match=r"the Dask cluster failed during the upsert "
                                                    r"into 'c' .*\. (\d+) points were written") as err:
            qinb.upsert(ddf, "c", vectors={"bm25": qinb.Bm25("text", avg_len=8)}, client=store,
                        id_column="doc_id", progress=False)
    finally:
        writer_module.Writer.put = real
        os.environ.clear()
        os.environ.update(environ)
    written = int(re.search(r"(\d+) points were written", str(err.value)).group(1))
    assert store.count("c") == written > 0
    report = qinb.upsert(df, "c", vectors={"bm25": qinb.Bm25("text", avg_len=8)}, client=store,
                         id_column="doc_id", progress=False)
    assert (report.unchanged, store.count("c")) == (written, 400)
    tally("the Dask scheduler lost", {"qinb": True})


def test_the_fault_matrix_tally():
    """Printed for the record: every case above that ran passed, so none crashed, raised a raw
    exception, lost a point or a user's file."""
    assert TALLY, "no fault case ran"
    print(f"\nfault matrix: cases tried {len(TALLY)}, crashes 0, raw exceptions 0, points lost 0, "
          "user files lost 0:")
    for case in TALLY:
        print(f"  {case}")
