"""The public surface: a complete, sorted __all__, a light import, a stateless accessor."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pandas as pd

import qinb


def test_all_is_sorted_and_complete():
    assert qinb.__all__ == sorted(qinb.__all__)
    exported = {
        name for name, value in vars(qinb).items()
        if not name.startswith("_") and name != "annotations" and not inspect.ismodule(value)
    }
    lazy = {"SearchWidget", "widget"}  # resolved on first use, so ipywidgets loads only then
    assert exported | lazy | {"cache", "models", "datasets", "__version__"} == set(qinb.__all__)
    for name in qinb.__all__:
        assert hasattr(qinb, name), name


def test_every_accessor_method_has_a_plain_function_twin():
    accessor = pd.DataFrame().qdrant
    for name in ("upsert", "search", "to_points", "widget"):
        assert callable(getattr(accessor, name)) and callable(getattr(qinb, name))


def test_accessor_keeps_no_state():
    df = pd.DataFrame({"text": ["a"]})
    assert vars(df.qdrant).keys() == {"_df"}


def test_import_loads_no_widgets_plots_or_models():
    # qdrant-client itself imports fastembed when it is installed; qinb must add nothing heavy
    code = (
        "import sys, qdrant_client; before = set(sys.modules); import qinb; "
        "added = set(sys.modules) - before; "
        "print(sorted(m for m in added if m.split('.')[0] in "
        "{'ipywidgets', 'matplotlib', 'onnxruntime', 'fastembed', 'qdrant_edge', 'PIL', 'tqdm'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
