"""Faults of disks and files are errors or warnings, never crashes, raw exceptions or lost
rows (issue 26). So far: the embedding cache, which steps aside when it cannot be used."""

from __future__ import annotations

import pytest

import qinb
from qinb import embed

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text", avg_len=8)}


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
