"""Small sample data for demos and tests; nothing is downloaded."""

from __future__ import annotations

import io
import re

import pandas as pd

__all__ = ["photos", "python_questions", "python_topics"]

PHOTOS = [
    ("astronaut.png", "an astronaut in a spacesuit in front of a flag", "people"),
    ("coffee.png", "a cup of coffee on a saucer", "food"),
    ("chelsea.png", "a tabby cat looking to the side", "animals"),
    ("rocket.jpg", "a rocket standing on its launch pad", "space"),
    ("hubble_deep_field.jpg", "galaxies in the Hubble deep field", "space"),
    ("motorcycle_left.png", "a motorcycle in a garage", "vehicles"),
]


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


def python_questions() -> tuple[pd.Series, pd.DataFrame]:
    """34 questions about Python with the :func:`python_topics` that answer them, judged by hand.

    Returns ``(queries, qrels)`` as :func:`qinb.evaluate` takes them: the questions indexed by
    id (``q01``...), and one row per judged topic with ``query``, ``row`` (the topic) and
    ``relevance`` (2: the topic that answers it, 1: one a reader would also want).

    How they were made: each question was written in the words a user would type, mostly
    avoiding the reference's own terms, from knowledge of the language; then the topics that
    answer it were judged from the topic titles and the reference's contents, before any
    search was run on them (so that no configuration shaped the judgements). The questions
    are committed as ``qinb/data/python_questions.csv``.

    Examples
    --------
    >>> queries, qrels = qinb.datasets.python_questions()
    >>> queries["q01"]
    'how do I stop a loop early'
    """
    from importlib.resources import files

    raw = pd.read_csv(io.StringIO(files("qinb").joinpath("data/python_questions.csv").read_text()),
                      dtype=str)
    queries = raw.set_index("id")["question"].rename("query")
    qrels = pd.DataFrame([
        {"query": qid, "row": topic, "relevance": int(grade)}
        for qid, judged in zip(raw["id"], raw["relevant"], strict=True)
        for topic, grade in (pair.split(":") for pair in judged.split(";"))
    ])
    return queries, qrels


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


def photos() -> pd.DataFrame:
    """Six photographs that ship inside scikit-image, with captions and fields to filter on.

    Columns: ``photo`` (file path), ``caption``, ``kind`` and ``megapixels``; the index is the
    file's stem.

    Examples
    --------
    >>> df = qinb.datasets.photos()
    >>> df.loc["chelsea", "caption"]
    'a tabby cat looking to the side'
    """
    import importlib.util
    from pathlib import Path

    from qinb.errors import MissingDependencyError

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            'the sample photos ship with scikit-image: pip install "qinb[notebooks]"')
    from PIL import Image

    data = Path(spec.submodule_search_locations[0]) / "data"
    rows = []
    for name, caption, kind in PHOTOS:
        with Image.open(data / name) as image:
            megapixels = round(image.width * image.height / 1e6, 2)
        rows.append({"photo": str(data / name), "caption": caption, "kind": kind,
                     "megapixels": megapixels})
    index = pd.Index([name.split(".")[0] for name, _, _ in PHOTOS], name="name")
    return pd.DataFrame(rows, index=index)
