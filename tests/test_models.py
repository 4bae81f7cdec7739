"""Offline models: the QINB_MODELS directory, register_local, the `qinb models` command."""

from __future__ import annotations

import shutil

import pytest

import qinb
from qinb import models


def test_models_dir_lookup_nested_and_flat(tmp_path, monkeypatch, local_models):
    monkeypatch.setenv("QINB_MODELS", str(tmp_path))
    assert models.local_path(models.MINILM) is None
    flat = tmp_path / "sentence-transformers__all-MiniLM-L6-v2"
    shutil.copytree(local_models, flat)
    assert models.local_path(models.MINILM) == flat


def test_register_local_loads_from_that_directory(tmp_path, monkeypatch, local_models, client,
                                                  corpus):
    monkeypatch.setenv("QINB_MODELS", str(tmp_path / "empty"))
    own = tmp_path / "my-minilm"
    shutil.copytree(local_models, own)
    models.register_local(models.MINILM, own)
    try:
        assert models.local_path(models.MINILM) == own.resolve()
        report = corpus.qdrant.upsert("reg", vectors={"text": qinb.Text("text")}, client=client,
                                      progress=False)
        assert report.embedded == 12
    finally:
        models._registered.pop(models.MINILM.lower(), None)
        models._load.cache_clear()


def test_register_local_checks_name_and_path(tmp_path):
    with pytest.raises(qinb.ModelError, match="unknown model 'minilm'"):
        models.register_local("minilm", tmp_path)
    with pytest.raises(qinb.ModelError, match="is not a directory"):
        models.register_local(models.MINILM, tmp_path / "missing")


def test_describe_uses_fastembeds_descriptions():
    assert models.describe("sentence-transformers/all-MiniLM-L6-v2").dim == 384
    assert models.describe("BAAI/bge-base-en-v1.5").dim == 768
    assert models.describe("Qdrant/clip-ViT-B-32-vision").modality == "image"


def test_qinb_models_command_builds_a_checked_directory(tmp_path, capsys):
    from qinb.cli import main

    target = tmp_path / "minilm"
    assert main(["models", "--dir", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == sorted(["model.onnx", *models.TOKENIZER_FILES])
    assert "sha256 of model.onnx checked" in capsys.readouterr().out


def test_a_tampered_onnx_file_is_refused(tmp_path, monkeypatch, local_models):
    fake = tmp_path / "pkg"
    fake.mkdir()
    (fake / "model.onnx").write_bytes(b"not the model")
    real = models._package_dir
    monkeypatch.setattr(
        models, "_package_dir",
        lambda dist, module, tmp: fake if module == models.MINILM_ONNX[1] else real(dist, module, tmp),
    )
    with pytest.raises(qinb.ModelError, match="refusing to use it"):
        models.build_minilm(tmp_path / "out")


def test_missing_clip_weights_point_to_clip_and_the_stand_ins(monkeypatch, tmp_path, photos,
                                                              local_models):
    import pandas as pd

    import qinb
    import qinb.standin
    from qinb import models

    monkeypatch.setattr(models, "_registered", {models.MINILM.lower(): local_models})
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setenv("QINB_MODELS", str(tmp_path / "empty"))
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path / "no-cache"))
    models._load.cache_clear()
    df = pd.DataFrame({"photo": photos["photo"][:2]})
    try:
        with pytest.raises(qinb.ModelError) as err:
            df.qdrant.upsert("p", vectors={"image": qinb.Image("photo")}, progress=False,
                             client=qinb.connect(":memory:"))
        message = str(err.value)
        assert "CLIP needs both of its ONNX directories" in message
        assert "qinb.standin.use_where_no_clip()" in message and "qinb models" not in message
        # what the images notebook does, under make lab as under the demo
        assert qinb.standin.use_where_no_clip() is True
        report = df.qdrant.upsert("p", vectors={"image": qinb.Image("photo")}, progress=False,
                                  client=qinb.connect(":memory:"))
        assert report.upserted == 2
    finally:
        models._load.cache_clear()
