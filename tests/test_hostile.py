"""Hostile cells and payloads: images that would blow up a model, odd PIL modes, long texts in
an image column, URLs that trickle, and payload text that matplotlib would read as math."""

from __future__ import annotations

import http.server
import io
import threading
import time
from typing import ClassVar

import matplotlib
import pandas as pd
import pytest
from PIL import Image as PILImage

import qinb
from qinb import images, viz

matplotlib.use("Agg")


def png(width: int, height: int, mode: str = "L") -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


def test_hostile_images_fail_their_row_and_odd_modes_are_stored(photos, client, clip_standins):
    thin, line = png(20000, 2), png(60000, 1)
    assert len(thin) < 200 and len(line) < 200  # a few bytes that would take gigabytes
    df = pd.DataFrame({"photo": [
        photos.loc["coffee", "photo"], thin, line, PILImage.new("CMYK", (32, 32), (0, 90, 90, 0)),
        PILImage.new("F", (32, 32), 0.5), PILImage.new("RGB", (0, 0)), "x" * 300,
        "/data/" + "long-name-" * 40 + ".png",
    ]}, index=["ok", "thin", "line", "cmyk", "float", "empty", "text", "path"])
    report = df.qdrant.upsert("hostile", vectors={"image": qinb.Image("photo")}, client=client,
                              errors="skip", progress=False)
    assert (report.upserted, report.failed_rows) == (3, 5)
    reasons = report.failed.set_index("row")["reason"]
    assert reasons["thin"].startswith("image of 20000x2 pixels is too long and thin")
    assert reasons["line"].startswith("image of 60000x1 pixels is too long and thin")
    assert reasons["empty"] == "empty image (0x0 pixels)"
    assert reasons["text"] == "a text of 300 characters is not a path, URL or base64 image"
    assert reasons["path"].startswith("file not found: /data/long-name-long-name")
    assert len(reasons["path"]) < 110  # the middle of a long path is left out
    stored = sorted(r.payload["_qinb_row"] for r in client.scroll("hostile", limit=10)[0])
    assert stored == ["cmyk", "float", "ok"]


class Trickle(http.server.BaseHTTPRequestHandler):
    """Serves a PNG slowly: ``/slow/...`` a byte every 0.2 s, ``/ok/...`` after 0.3 s."""

    body = png(8, 8)
    inflight = 0
    most = 0  # the most requests served at once
    seen: ClassVar[list[str]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.seen.append(self.path)
            cls.inflight += 1
            cls.most = max(cls.most, cls.inflight)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            if self.path.startswith("/slow"):
                for byte in self.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            else:
                time.sleep(0.3)
                self.wfile.write(self.body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with cls.lock:
                cls.inflight -= 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle():
    """A Trickle server with counts of its own: (url, handler class)."""
    handler = type("Counted", (Trickle,), {"inflight": 0, "most": 0, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_urls_have_a_deadline_and_are_fetched_several_at_once(trickle, monkeypatch):
    url, served = trickle
    monkeypatch.setattr(images, "URL_DEADLINE", 1.0)
    urls = [f"{url}/ok/{i}.png" for i in range(6)] + [f"{url}/slow/x.png"]
    found = images.load_urls(urls)
    assert all(isinstance(found[u], images.ImageCell) for u in urls[:6])
    slow = found[urls[-1]]
    assert isinstance(slow, images.ImageCellError)
    assert str(slow) == f"URL {urls[-1]} took longer than 1 s"
    assert served.most >= 4  # fetched side by side, not one after another


def test_display_fetching_of_payload_urls_can_be_turned_off(trickle, monkeypatch):
    url, served = trickle
    viz.thumbnail.cache_clear()
    hits = pd.DataFrame({"score": [0.9], "rank": [1], "id": [1], "photo": [f"{url}/ok/shown.png"]})
    monkeypatch.setenv("QINB_DISPLAY_URLS", "0")
    assert viz.hit_images(hits) == [None] and served.seen == []
    assert viz.hit_images(hits, fetch_urls=True)[0].startswith("data:image/jpeg;base64,")
    assert served.seen == ["/ok/shown.png"]
    fig = qinb.plot_hits(hits, fetch_urls=False)
    assert not fig.get_axes()[0].images  # no picture: the card shows its text


def test_payload_text_with_dollars_is_plotted_as_it_is(artifacts):
    hits = pd.DataFrame({"score": [0.9, 0.8], "rank": [1, 2], "id": [1, 2],
                         "caption": ["costs $5 and $10", "x_{1}^2 $$ \\alpha"]},
                        index=["$a$", "b$"])
    fig = qinb.plot_hits(hits, columns=2)
    fig.savefig(artifacts / "plot_hits_dollars.png", dpi=60)
    texts = [t.get_text() for ax in fig.get_axes() for t in ax.texts]
    assert texts == ["costs \\$5 and \\$10", "x_{1}^2 \\$\\$ \\alpha"]  # "\$" draws a "$"
    scores = qinb.plot_scores(hits)
    scores.savefig(artifacts / "plot_scores_dollars.png", dpi=60)
    assert [t.get_text() for t in scores.get_axes()[0].get_yticklabels()] == [
        "#1 \\$a\\$", "#2 b\\$"]


def test_the_widget_fetches_payload_urls_only_where_allowed(trickle, clip_standins):
    url, served = trickle
    frame = pd.DataFrame({"photo": [f"{url}/ok/{i}.png" for i in range(3)]}, index=["a", "b", "c"])
    frame.qdrant.upsert("remote", vectors={"photo": qinb.Image("photo")}, progress=False)
    fetched = len(served.seen)
    assert fetched == 3  # the upsert reads each picture once
    for allowed, pictures, more in ((False, 0, 0), (True, 1, 4)):
        viz.thumbnail.cache_clear()
        w = frame.qdrant.widget("remote", fetch_urls=allowed)
        w.search("a small square")
        assert [card.children[0].value.count("<img") for card in w.cards.children] == [pictures] * 3
        w.cards.children[0].children[1].children[1].click()  # details: the larger picture
        assert len(served.seen) == fetched + more  # three cards and one larger picture, or none
        fetched = len(served.seen)
