"""qinb.copy between the two engines: vectors, payloads and specs, nothing embedded again."""

from __future__ import annotations

import numpy as np
import pytest

import qinb

VECTORS = {"text": qinb.Text("text"), "bm25": qinb.Bm25("text")}


@pytest.mark.parametrize("direction", ["edge to local mode", "local mode to edge"])
def test_copy_keeps_vectors_payloads_and_specs_and_resumes(direction, corpus, tmp_path):
    edge, local = qinb.EdgeStore(tmp_path / "edge"), qinb.connect(":memory:")
    source, target = (edge, local) if direction.startswith("edge") else (local, edge)
    corpus.qdrant.upsert("notes", vectors=VECTORS, client=source, progress=False)
    assert qinb.copy("notes", to=target, source=source, progress=False) == 12
    for using in ("text", "bm25"):
        a = corpus.qdrant.search("notes", "largest planet", using=using, client=source)
        b = corpus.qdrant.search("notes", "largest planet", using=using, client=target)
        # each row scores the same (rows with tied scores may come in either order)
        assert a["score"].round(4).to_dict() == b["score"].round(4).to_dict()
        assert a.index[0] == b.index[0] == "doc00"
    stored = {r.id: r.vectors["text"] for r in source.scroll("notes", limit=20, vectors=["text"])[0]}
    for record in target.scroll("notes", limit=20, vectors=["text"])[0]:
        assert np.allclose(stored[record.id], record.vectors["text"])
    # the copy is a qinb collection: a re-run of the upsert there embeds and writes nothing
    again = corpus.qdrant.upsert("notes", vectors=VECTORS, client=target, progress=False)
    assert (again.unchanged, again.embedded) == (12, 0)
    # an interrupted copy resumes: only the missing points are written
    target.delete("notes")
    qinb.copy("notes", to=target, source=source, progress=False)
    assert qinb.copy("notes", to=target, source=source, progress=False) == 0


def test_copy_refuses_a_destination_with_other_vectors(corpus, tmp_path):
    edge = qinb.EdgeStore(tmp_path / "edge")
    local = qinb.connect(":memory:")
    corpus.qdrant.upsert("notes", vectors=VECTORS, client=edge, progress=False)
    corpus.qdrant.upsert("notes", vectors={"text": qinb.Text("text")}, client=local, progress=False)
    with pytest.raises(qinb.SpecConflictError, match=r"holds other vectors.*nothing was copied"):
        qinb.copy("notes", to=local, source=edge, progress=False)
    with pytest.raises(qinb.CollectionError, match="'nope' does not exist"):
        qinb.copy("nope", to=local, source=edge, progress=False)
