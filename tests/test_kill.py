"""An upsert into the embedded store killed (``kill -9``) or interrupted (SIGINT) at random
moments: every re-run ends with the exact count, each point whole with all its named vectors,
and Ctrl-C says how many points were written."""

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

ROWS = 8000  # enough that a re-run after the first Ctrl-C is still writing when killed
CHILD = textwrap.dedent("""
    import sys, pandas as pd, qinb
    ROWS = int(sys.argv[2])
    words = ["planet", "orbit", "bread", "oven", "river", "mountain", "violin", "chess"]
    df = pd.DataFrame({"text": [f"{words[i % 8]} {i} beside the {words[i * 5 % 8]} {i % 97}"
                                for i in range(ROWS)], "n": range(ROWS)})
    store = qinb.connect(sys.argv[1], hold=0)
    qinb.models.text_model(qinb.models.MINILM)  # loaded before the clock starts
    print("started", flush=True)
    try:
        report = df.qdrant.upsert("k", vectors={"dense": qinb.Text("text"), "bm25": qinb.Bm25("text")},
                                  client=store, batch_size=64, progress=False)
    except KeyboardInterrupt as exc:
        print("interrupted:", exc, flush=True)
        sys.exit(130)
    print("done", report.upserted, report.unchanged, flush=True)
""")


def run(path, *, after: float | None = None, sig: int = signal.SIGKILL):
    """Run the child upsert; with ``after``, send ``sig`` that many seconds after it starts."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(ROWS)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    if after is not None:
        time.sleep(after)
        child.send_signal(sig)
    out, err = child.communicate(timeout=600)
    return child.returncode, out, err


def test_kills_and_interrupts_at_random_moments_end_exact(tmp_path):
    path = tmp_path / "store"
    rng = random.Random(9)
    # Ctrl-C first, while the collection is new: the message's count is the whole store. On a
    # slow machine the first write may come later: then the same again, a little later
    for after in (5.0, 7.0, 9.0, 12.0):
        code, out, err = run(path, after=after, sig=signal.SIGINT)
        assert code == 130, err[-2000:]
        assert "Traceback" not in err
        line = out.strip().splitlines()[-1]
        assert line.startswith("interrupted: upsert into 'k' interrupted: ")
        assert "Run the same upsert again to write the rest" in line
        written = int(line.split("interrupted: ")[2].split(" points")[0])
        if written:
            break
        assert not qinb.connect(path).exists("k")  # made, nothing written: removed
    store = qinb.connect(path)
    assert 0 < written < ROWS and store.count("k") == written
    store.close()
    rounds = [(rng.uniform(0.2, 6.0), signal.SIGKILL) for _ in range(4)]
    rounds.append((rng.uniform(0.5, 4.0), signal.SIGINT))
    counts = [written]
    # on a busy machine a re-run reaches its first write later than every moment above: the
    # rounds run again at twice and four times the moments until one cuts in after a write
    for pace in (1, 2, 4):
        for after, sig in rounds:
            code, out, err = run(path, after=after * pace, sig=sig)
            # a SIGINT that comes after the upsert ended, while Python is shutting down, ends
            # the process by the signal itself: the run finished, and said so
            finished = code == -signal.SIGINT and out.startswith("done")
            assert code in (-signal.SIGKILL, 130, 0) or finished, (code, out, err[-2000:])
            store = qinb.connect(path)
            counts.append(store.count("k"))
            store.close()
        if any(a < b < ROWS for a, b in itertools.pairwise(counts)) or counts[-1] == ROWS:
            break
    code, out, err = run(path)
    assert code == 0, err[-2000:]
    done = out.split()
    assert done[0] == "done" and int(done[1]) + int(done[2]) == ROWS
    assert counts == sorted(counts)  # nothing written is ever lost
    assert any(a < b < ROWS for a, b in itertools.pairwise(counts)), (counts, rounds)  # a cut mid-write
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
