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


def test_no_public_function_shares_its_name_with_a_module():
    # qinb.search the function made qinb.search the module unreachable; implementation modules
    # are private (qinb._search), so each name means one thing
    import importlib
    import pkgutil

    functions = {n for n in qinb.__all__ if callable(getattr(qinb, n)) and
                 not inspect.ismodule(getattr(qinb, n))}
    for package in (qinb, qinb.store):
        modules = {m.name for m in pkgutil.iter_modules(package.__path__)}
        assert not functions & modules, functions & modules
    assert importlib.import_module("qinb._search").search is qinb.search
    assert importlib.import_module("qinb._evaluate").evaluate is qinb.evaluate
    assert importlib.import_module("qinb.store._copy").copy is qinb.copy is qinb.store.copy


def test_every_accessor_method_has_a_plain_function_twin():
    accessor = pd.DataFrame().qdrant
    for name in ("upsert", "search", "to_points", "widget"):
        assert callable(getattr(accessor, name)) and callable(getattr(qinb, name))


def test_accessor_methods_show_the_parameters_of_their_twins():
    # df.qdrant.upsert? and Shift-Tab showed (collection, **kwargs)
    accessor = pd.DataFrame().qdrant
    for name in ("upsert", "search", "to_points", "widget"):
        shown = inspect.signature(getattr(accessor, name)).parameters
        twin = [p for p in inspect.signature(getattr(qinb, name)).parameters if p != "df"]
        assert list(shown) == twin, name
        assert "kwargs" not in shown
    assert qinb.upsert.__doc__.split("\n")[0] in accessor.upsert.__doc__
    assert "delete_missing" in accessor.upsert.__doc__


def test_all_extra_installs_every_optional_feature():
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    (every,) = extras["all"]
    named = set(every.split("[")[1].rstrip("]").split(","))
    assert named == set(extras) - {"all", "test", "notebooks"}
    # df.qdrant on Dask frames registers through wrapt: a dependency of qinb itself
    assert any(d.startswith("wrapt") for d in project["project"]["dependencies"])


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
