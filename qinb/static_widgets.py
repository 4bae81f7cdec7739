"""Executed notebooks as HTML reports that need no network: each widget is drawn from the state
saved with the notebook, as static HTML, instead of by widget JavaScript from a CDN."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["static_widgets"]

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
BOX_STYLE = {"VBoxModel": "display:flex;flex-direction:column;gap:4px",
             "HBoxModel": "display:flex;flex-direction:row;flex-wrap:wrap;gap:6px;align-items:center"}


def static_widgets(notebook: Any) -> int:
    """Give every widget output of an executed notebook a static HTML rendering of its saved
    state, in place of the live view (which needs the widget JavaScript); how many."""
    states = (notebook.metadata.get("widgets") or {}).get(STATE, {}).get("state", {})
    drawn = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW)
            if view and view.get("model_id") in states:
                output["data"]["text/html"] = (
                    '<div class="qinb-static" title="a snapshot of the widget as it was run">'
                    + _draw(view["model_id"], states) + "</div>")
                del output["data"][VIEW]
                drawn += 1
    return drawn


def _draw(model_id: str, states: Mapping[str, Any], depth: int = 0) -> str:
    entry = states.get(model_id)
    if entry is None or depth > 40:
        return ""
    kind, state = entry.get("model_name", ""), entry.get("state", {})
    if kind in BOX_STYLE or kind == "GridBoxModel":
        style = BOX_STYLE.get(kind) or (
            "display:grid;gap:8px;grid-template-columns:"
            + html.escape(_layout(state, states).get("grid_template_columns")
                          or "repeat(auto-fill,minmax(190px,1fr))"))
        inner = "".join(_draw(child.removeprefix("IPY_MODEL_"), states, depth + 1)
                        for child in state.get("children", []))
        return f'<div style="{style}">{inner}</div>'
    label = html.escape(str(state.get("description") or ""))
    prefix = f"<b>{label}</b> " if label and kind != "ButtonModel" else ""
    if kind == "HTMLModel":
        return str(state.get("value") or "")  # the widget's own HTML, escaped where it was made
    if kind in ("TextModel", "ComboboxModel"):
        value = html.escape(str(state.get("value") or state.get("placeholder") or ""))
        return f'{prefix}<input readonly value="{value}" style="width:40%">'
    if kind == "ButtonModel":
        return f"<button disabled>{label}</button>"
    if kind in ("DropdownModel", "SelectMultipleModel", "ToggleButtonsModel"):
        labels = state.get("_options_labels") or []
        chosen = state.get("index")
        picked = chosen if isinstance(chosen, list) else [chosen]
        shown = ", ".join(html.escape(str(labels[i])) for i in picked
                          if isinstance(i, int) and i < len(labels))
        return f"<span>{prefix}{shown}</span>"
    if kind in ("IntRangeSliderModel", "FloatRangeSliderModel", "BoundedIntTextModel"):
        value = state.get("value")
        shown = " – ".join(map(str, value)) if isinstance(value, list) else str(value)
        return f"<span>{prefix}{html.escape(shown)}</span>"
    if kind == "FileUploadModel":
        return f"<button disabled>{label or 'upload'}</button>"
    return ""


def _layout(state: Mapping[str, Any], states: Mapping[str, Any]) -> dict[str, Any]:
    layout = str(state.get("layout") or "").removeprefix("IPY_MODEL_")
    found: dict[str, Any] = (states.get(layout) or {}).get("state", {})
    return found
