"""Small sample data for demos and tests; nothing is downloaded."""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["python_topics"]


def python_topics() -> pd.DataFrame:
    """The Python language reference topics that ship with the interpreter (``pydoc_data``).

    One row per topic: ``topic`` (its name, the index), ``title`` (first line), ``text``,
    ``words`` (length) and ``section`` (a coarse kind worth filtering on).

    Examples
    --------
    >>> df = qinb.datasets.python_topics()
    >>> len(df) > 50
    True
    """
    from pydoc_data.topics import topics

    rows = []
    for name, body in sorted(topics.items()):
        # drop reStructuredText heading underlines such as "*****"
        text = " ".join(re.sub(r"[*=~^-]{4,}", " ", body).split())
        title = body.strip().splitlines()[0].strip() if body.strip() else name
        rows.append({"topic": name, "title": title, "text": text, "words": len(text.split()),
                     "section": _section(name)})
    return pd.DataFrame(rows).set_index("topic")


def _section(name: str) -> str:
    if name.startswith(("types", "bltin-")) or name.endswith(("-methods", "-types")):
        return "types"
    if name in {"if", "while", "for", "try", "with", "match", "break", "continue", "return",
                "pass", "else", "async", "raise", "del", "global", "nonlocal", "import", "assert", "yield",
                "assignment", "augassign", "exprlists", "compound", "function", "class"}:
        return "statements"
    if name in {"lambda", "comparisons", "booleans", "binary", "unary", "power", "bitwise",
                "shifting", "conditional", "operator-summary", "atom-literals",
                "atom-identifiers", "subscriptions", "slicings", "calls", "attribute-references",
                "await", "in", "is", "not", "integers", "floating", "imaginary", "strings",
                "numbers", "lists", "dict", "formatstrings"}:
        return "expressions"
    return "data model"
