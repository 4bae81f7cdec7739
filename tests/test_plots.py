"""Plots rendered to PNG (saved under artifacts/ to look at): sizes, axes, cards, markers."""

from __future__ import annotations

import matplotlib
import pytest
from PIL import Image as PILImage

import qinb

matplotlib.use("Agg")


@pytest.fixture
def photo_hits(photos, client, clip_standins):
    photos.qdrant.upsert("photos", client=client, progress=False, vectors={
        "image": qinb.Image("photo"), "text": qinb.Text("caption"), "bm25": qinb.Bm25("caption")})
    return photos.qdrant.search("photos", "galaxies in deep space", client=client, limit=6)


@pytest.fixture
def text_hits(corpus, client):
    corpus.qdrant.upsert("mixed", vectors={"text": qinb.Text("text")}, client=client,
                         progress=False)
    return corpus.qdrant.search("mixed", "rings of a gas giant", client=client, limit=5)


def test_plot_hits_grid_of_photos(photo_hits, artifacts):
    fig = qinb.plot_hits(photo_hits, columns=3)
    axes = fig.get_axes()
    assert len(axes) == 6 and all(len(ax.images) == 1 for ax in axes)
    assert axes[0].get_title().startswith(f"#1  {photo_hits['score'].iloc[0]:.3f}")
    fig.savefig(artifacts / "plot_hits_photos.png", dpi=80)
    with PILImage.open(artifacts / "plot_hits_photos.png") as png:
        assert png.size == (720, 552)


def test_plot_hits_text_cards(text_hits, artifacts):
    fig = qinb.plot_hits(text_hits, columns=4)
    axes = fig.get_axes()
    assert len(axes) == 8  # two rows of four, the last three empty
    texts = [t.get_text() for ax in axes[:5] for t in ax.texts]
    assert len(texts) == 5 and texts[0].startswith("Saturn")
    assert all(not ax.images for ax in axes)
    fig.savefig(artifacts / "plot_hits_text.png", dpi=80)


def test_plot_scores_bars(text_hits, artifacts):
    fig = qinb.plot_scores(text_hits, label="topic")
    ax = fig.get_axes()[0]
    assert len(ax.patches) == 5
    assert [round(p.get_width(), 5) for p in ax.patches] == [round(s, 5) for s in text_hits["score"]]
    assert ax.get_yticklabels()[0].get_text() == "#1 planets"
    fig.savefig(artifacts / "plot_scores.png", dpi=80)


def test_plot_map_highlights_hits_and_query(text_hits, client, artifacts):
    fig = qinb.plot_map("mixed", using="text", hits=text_hits, query="rings of a gas giant",
                        client=client)
    ax = fig.get_axes()[0]
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes == [12, 5, 1]  # every point, the hits, the query
    assert [t.get_text() for t in ax.texts] == ["1", "2", "3", "4", "5"]
    fig.savefig(artifacts / "plot_map.png", dpi=80)


def test_plot_map_samples_large_collections(text_hits, client):
    fig = qinb.plot_map("mixed", using="text", client=client, sample=8)
    assert len(fig.get_axes()[0].collections[0].get_offsets()) == 8


def test_empty_hits_say_so(text_hits):
    with pytest.raises(qinb.QueryError, match="no hits to plot"):
        qinb.plot_hits(text_hits.iloc[:0])
