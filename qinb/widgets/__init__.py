"""Interactive search in Jupyter: ``qinb.SearchWidget`` (ipywidgets). Display only: every search
goes through :func:`qinb.search`, every card through :mod:`qinb.cards`."""

from __future__ import annotations

from qinb.widgets._search import SearchWidget, widget

__all__ = ["SearchWidget", "widget"]
