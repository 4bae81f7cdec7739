"""An upsert into the embedded store killed (``kill -9``) or interrupted (SIGINT) at random
moments: every re-run ends with the exact count, each point whole with all its named vectors,
and Ctrl-C says how many points were written.

The moments are counted in writes, not seconds: the child says when each batch is in the
store, and the signal goes after a chosen number of them (plus a random fraction of the next
batch's time), so a loaded machine changes how long the test takes, never what it cuts."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import qinb

ROWS = 8000
BATCH = 64  # points per write: 125 writes for the whole table
CHILD = textwrap.dedent("""
    import os, sys, pandas as pd, qinb
    from qinb.store.edge import EdgeStore
    ROWS, BATCH = int(sys.argv[2]), int(sys.argv[3])
    words = ["planet", "orbit", "bread", "oven", "river", "mountain", "violin", "chess"]
    df = pd.DataFrame({"text": [f"{words[i % 8]} {i} beside the {words[i * 5 % 8]} {i % 97}"
                                for i in range(ROWS)], "n": range(ROWS)})
    store = qinb.connect(sys.argv[1], hold=0)
    written = EdgeStore.upsert

    def upsert(self, collection, points):  # says when each batch is in the store
        written(self, collection, points)
        os.write(1, f"wrote {len(points)}\\n".encode())  # one write: whole beside other prints

    EdgeStore.upsert = upsert
    print("started", flush=True)
    try:
        report = df.qdrant.upsert("k", vectors={"dense": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                                  client=store, batch_size=BATCH, progress=False)
    except KeyboardInterrupt as exc:
        print("interrupted:", exc, flush=True)
        sys.exit(130)
    print("done", report.upserted, report.unchanged, flush=True)
""")


def run(path, *, writes: int | None = None, jitter: float = 0.0, sig: int = signal.SIGKILL):
    """Run the child upsert; with ``writes``, send ``sig`` once it has written that many
    batches, ``jitter`` seconds later (inside the next batch's write or embedding)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(ROWS), str(BATCH)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    if writes is not None:
        for line in child.stdout:
            lines.append(line)
            if sum(x.startswith("wrote") for x in lines) == writes:
                time.sleep(jitter)
                child.send_signal(sig)
                break
    out, err = child.communicate(timeout=600)
    return child.returncode, "".join(lines) + out, err


def announced(out: str) -> int:
    """The points of the writes the child said were in the store."""
    return sum(int(x.split()[1]) for x in out.splitlines() if x.startswith("wrote"))


def last(out: str) -> str:
    return [x for x in out.strip().splitlines() if not x.startswith(("wrote", "started"))][-1]


def test_kills_and_interrupts_at_random_moments_end_exact(tmp_path):
    path = tmp_path / "store"
    rng = random.Random(9)
    # Ctrl-C first, while the collection is new, after three writes: the message's count is
    # the whole store, and at least those three batches
    code, out, err = run(path, writes=3, jitter=0.05, sig=signal.SIGINT)
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    line = last(out)
    assert line.startswith("interrupted: upsert into 'k' interrupted: ")
    assert "Run the same upsert again to write the rest" in line
    written = int(line.split("interrupted: ")[2].split(" points")[0])
    store = qinb.connect(path)
    assert 0 < announced(out) <= written < ROWS and store.count("k") == written
    store.close()
    # each re-run skips what is stored and is cut after a few writes of its own, once mid-batch
    rounds = [(rng.randint(1, 6), rng.uniform(0.0, 0.3), signal.SIGKILL) for _ in range(4)]
    rounds.append((rng.randint(1, 4), rng.uniform(0.0, 0.3), signal.SIGINT))
    counts = [written]
    for writes, jitter, sig in rounds:
        code, out, err = run(path, writes=writes, jitter=jitter, sig=sig)
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL, (code, out, err[-2000:])
        else:
            assert code == 130 and "Traceback" not in err, (code, out, err[-2000:])
            assert "interrupted: upsert into 'k' interrupted: " in last(out)
        store = qinb.connect(path)
        counts.append(store.count("k"))
        store.close()
        # a write the child announced is in the store, whatever came after it
        assert counts[-1] >= counts[-2] + announced(out), (counts, rounds)
    code, out, err = run(path)
    assert code == 0, err[-2000:]
    done = last(out).split()
    assert done[0] == "done" and int(done[1]) + int(done[2]) == ROWS
    assert int(done[2]) == counts[-1]  # every point stored before is found unchanged
    assert counts == sorted(counts) and all(a < b < ROWS for a, b in itertools.pairwise(counts))
    store = qinb.connect(path)
    assert store.count("k") == ROWS
    ids, whole = set(), 0
    for records, _ in store.pages("k", payload=True, vectors=True):
        for record in records:
            ids.add(record.id)
            whole += (len(record.vectors["dense"]) == 384 and len(record.vectors["bm25"].indices) > 0
                      and record.payload["n"] == record.id)
    assert ids == set(range(ROWS)) and whole == ROWS
    store.close()
    assert os.path.isdir(path / "k")
