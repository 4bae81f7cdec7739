"""Image vectors beside text and BM25 vectors. The CLIP models here are STAND-INS (see
qinb/standin.py): these tests assert mechanics — ids, counts, which model ran — not meaning."""

from __future__ import annotations

import base64
import http.server
import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import raw_nearest
from PIL import Image as PILImage
from qdrant_client import models

import qinb

MIXED = {
    "image": qinb.Image("photo"),
    "text": qinb.Text("caption"),
    "bm25": qinb.Bm25("caption"),
}


@pytest.fixture
def stored(photos, client, clip_standins):
    report = photos.qdrant.upsert("photos", vectors=MIXED, client=client, progress=False)
    assert report.failed.empty
    return photos


def test_one_upsert_gives_each_point_three_named_vectors(stored, client):
    points = client.scroll("photos", limit=10, vectors=True)[0]
    assert len(points) == 6
    for p in points:
        assert set(p.vectors) == {"image", "text", "bm25"}
        assert len(p.vectors["image"]) == 512 and len(p.vectors["text"]) == 384
        assert isinstance(p.vectors["bm25"], models.SparseVector)
    astronaut = next(p for p in points if p.payload["_qinb_row"] == "astronaut")
    assert astronaut.payload["photo"] == stored.loc["astronaut", "photo"]  # the reference only


@pytest.mark.parametrize("kind", ["path", "pil", "bytes", "models.Image"])
def test_an_image_finds_itself_first_with_score_one(stored, client, kind):
    path = Path(stored.loc["chelsea", "photo"])
    query = {
        "path": path,
        "pil": PILImage.open(path),
        "bytes": path.read_bytes(),
        "models.Image": models.Image(image=str(path), model="Qdrant/clip-ViT-B-32-vision"),
    }[kind]
    hits = stored.qdrant.search("photos", query, client=client, limit=3)
    assert hits.index[0] == "chelsea"
    assert hits["score"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert hits["score"].iloc[1] < 0.99


def test_same_bytes_under_two_paths_are_embedded_once(photos, client, clip_standins, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "copy-of-a.png"
    shutil.copyfile(photos.loc["coffee", "photo"], a)
    shutil.copyfile(photos.loc["coffee", "photo"], b)
    df = pd.DataFrame({"photo": [str(a), str(b), photos.loc["rocket", "photo"]]})
    report = df.qdrant.upsert("dups", vectors={"image": qinb.Image("photo")}, client=client,
                              progress=False)
    assert (report.objects, report.embedded, report.upserted) == (3, 2, 3)


def test_text_query_on_the_image_vector_runs_the_query_model(stored, client, clip_standins):
    from fastembed import TextEmbedding

    text_model = TextEmbedding("Qdrant/clip-ViT-B-32-text",
                               specific_model_path=str(clip_standins["text"]))
    vector = next(iter(text_model.query_embed(["a rocket on the pad"]))).tolist()
    expected = raw_nearest(client, "photos", "image", vector, 6)
    hits = stored.qdrant.search("photos", "a rocket on the pad", using="image", client=client,
                                limit=6)
    assert hits["id"].tolist() == [i for i, _ in expected]
    assert np.allclose(hits["score"], [s for _, s in expected])


def test_more_like_this_and_hybrid_across_image_and_text(stored, client):
    like = stored.qdrant.search("photos", like="rocket", using="image", client=client, limit=5)
    assert "rocket" not in like.index and len(like) == 5
    hybrid = stored.qdrant.search("photos", "galaxies in deep space", client=client, limit=3)
    assert hybrid.index[0] == "hubble_deep_field"  # text and BM25 agree on the caption


def test_an_image_query_needs_an_image_vector(stored, client):
    with pytest.raises(qinb.QueryError, match="an image query needs an image vector"):
        stored.qdrant.search("photos", Path(stored.loc["coffee", "photo"]), using="text",
                             client=client)


def test_cells_may_be_pil_bytes_base64_and_urls(photos, client, clip_standins):
    path = Path(photos.loc["astronaut", "photo"])
    data = path.read_bytes()
    server, url = _serve(path.parent)
    try:
        df = pd.DataFrame({"photo": [
            str(path), PILImage.open(path), data,
            "data:image/png;base64," + base64.b64encode(data).decode(), f"{url}/astronaut.png",
        ]}, index=["path", "pil", "bytes", "base64", "url"])
        report = df.qdrant.upsert("cells", vectors={"image": qinb.Image("photo")}, client=client,
                                  progress=False)
    finally:
        server.shutdown()
    assert report.failed.empty and report.upserted == 5
    assert report.embedded == 2  # the file's bytes (path, bytes, base64, URL) and the PNG of PIL
    stored = {p.payload["_qinb_row"]: p.payload["photo"] for p in client.scroll("cells", limit=100)[0]}
    assert stored == {"path": str(path), "pil": "<PIL image>", "bytes": "<bytes>",
                      "base64": "<base64>", "url": f"{url}/astronaut.png"}


def _serve(directory: Path):
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_bad_images_are_reported_per_row_and_the_rest_stored(photos, client, clip_standins,
                                                             tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    big = tmp_path / "big.png"
    PILImage.new("RGB", (2000, 2000), "white").save(big)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1_000_000)  # big.png is now a bomb
    df = pd.DataFrame({"photo": [
        photos.loc["coffee", "photo"], str(tmp_path / "missing.png"), str(corrupt),
        "ftp://example.org/cat.png", str(big), "http://127.0.0.1:9/unreachable.png",
    ]}, index=["ok", "missing", "corrupt", "ftp", "bomb", "unreachable"])
    vectors = {"image": qinb.Image("photo")}
    with pytest.raises(qinb.InvalidRowsError, match=r"5 row\(s\) cannot be upserted"):
        df.qdrant.upsert("bad", vectors=vectors, client=client, progress=False)
    assert not client.exists("bad")
    report = df.qdrant.upsert("bad", vectors=vectors, client=client, errors="skip", progress=False)
    assert report.upserted == 1 and client.count("bad") == 1
    reasons = report.failed.set_index("row")["reason"]
    assert reasons["missing"].startswith("file not found")
    assert reasons["corrupt"].startswith("not a readable image")
    assert reasons["ftp"].startswith("unsupported URL scheme 'ftp'")
    assert reasons["bomb"].startswith("image too large (decompression bomb guard)")
    assert reasons["unreachable"].startswith("cannot fetch http://127.0.0.1:9/unreachable.png")


def test_thumbnails_are_small_jpegs_in_the_payload(photos, client, clip_standins):
    photos.qdrant.upsert("thumbs", vectors={"image": qinb.Image("photo")}, client=client,
                         thumbnails=True, progress=False)
    hits = photos.qdrant.search("thumbs", Path(photos.loc["coffee", "photo"]), client=client,
                                limit=1)
    uri = hits.iloc[0]["photo_thumbnail"]
    assert uri.startswith("data:image/jpeg;base64,")
    thumb = PILImage.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert thumb.format == "JPEG" and max(thumb.size) == 128


def test_to_points_gives_image_objects_ready_for_a_server(photos, clip_standins):
    points = photos.qdrant.to_points(vectors=MIXED)
    first = points[0].vector
    assert isinstance(first["image"], models.Image)
    assert first["image"].model == "Qdrant/clip-ViT-B-32-vision"
    assert base64.b64decode(first["image"].image) == Path(photos.iloc[0]["photo"]).read_bytes()
    assert isinstance(first["text"], models.Document)


def test_wire_mixed_upsert_is_one_request_of_images_and_documents(photos, clip_standins):
    import json

    import httpx
    from fakeserver import FakeServer

    server = FakeServer()
    cloud = qinb.connect(url="https://cluster.qdrant.test:6333", api_key="secret",
                         cloud_inference=True, transport=httpx.MockTransport(server),
                         check_compatibility=False)
    df = photos.assign(photo=[*photos["photo"][:-1], "https://images.example/moto.png"])
    vectors = {**MIXED, "image": qinb.Image("photo", options={"threads": 1})}
    report = df.qdrant.upsert("mixed", vectors=vectors, client=cloud, progress=False)
    assert (report.upserted, report.objects, report.embedded) == (6, 18, 0)
    upserts = [b for m, p, b in server.requests if m == "PUT" and p == "/collections/mixed/points"]
    assert len(upserts) == 1  # validated against the schema by the fake server
    points = upserts[0]["points"]
    images = [p["vector"]["image"] for p in points]
    assert all(i["model"] == "Qdrant/clip-ViT-B-32-vision" and "options" not in i for i in images)
    assert images[-1]["image"] == "https://images.example/moto.png"
    assert base64.b64decode(images[0]["image"]) == Path(photos.iloc[0]["photo"]).read_bytes()
    assert all(p["vector"]["text"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
               for p in points)
    body = json.dumps(upserts[0])
    assert str(Path(photos.iloc[0]["photo"]).parent) not in json.dumps(
        [p["vector"] for p in points])
    assert len(body) < 32 * 2**20
    cloud.close()


def test_missing_image_cells_are_named_as_missing(photos, client, clip_standins):
    df = pd.DataFrame({"photo": [photos.loc["coffee", "photo"], None, float("nan"), pd.NA]},
                      index=["ok", "none", "nan", "na"])
    report = df.qdrant.upsert("gaps", vectors={"image": qinb.Image("photo")}, client=client,
                              errors="skip", progress=False)
    assert report.upserted == 1
    assert report.failed.set_index("row")["reason"].to_dict() == dict.fromkeys(
        ["none", "nan", "na"], "missing image (NaN/None)")
