"""The Binder set-up: binder/requirements.txt and binder/postBuild in a fresh virtual environment.

The hub is unreachable here, so postBuild's model pre-fetch must be skipped with a clear message
while its other steps (installing qinb with the notebook extras, building MiniLM) still run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def test_postbuild_and_start_are_executable():
    assert os.access(BINDER / "postBuild", os.X_OK)
    assert os.access(BINDER / "start", os.X_OK)
    out = subprocess.run([str(BINDER / "start"), "sh", "-c", "echo $FASTEMBED_CACHE_PATH"],
                         capture_output=True, text=True, env={**os.environ, "HOME": "/home/u"},
                         check=True)
    assert out.stdout.strip() == "/home/u/.cache/qinb-fastembed"


@pytest.mark.skipif(sys.platform != "linux", reason="the Binder image is Linux")
def test_binder_environment_installs_and_postbuild_runs_offline(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items()
           if k not in ("QINB_MODELS", "QINB_STORE", "FASTEMBED_CACHE_PATH", "VIRTUAL_ENV")}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    pip = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "-r",
                          str(BINDER / "requirements.txt")], env=env, capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    build = subprocess.run([str(BINDER / "postBuild")], env=env, capture_output=True, text=True,
                           cwd=tmp_path, timeout=1500)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert "model pre-fetch skipped: the Hugging Face hub is unreachable" in build.stdout
    minilm = tmp_path / "home" / ".qinb" / "models" / "sentence-transformers" / "all-MiniLM-L6-v2"
    assert (minilm / "model.onnx").is_file() and (minilm / "tokenizer.json").is_file()
    check = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "import qinb, ipywidgets, skimage, nbclient, jupyterlab, onnx; "
         "print(qinb.models.local_path(qinb.models.MINILM))"],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.strip() == str(minilm)
