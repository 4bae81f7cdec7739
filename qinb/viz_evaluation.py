"""Matplotlib view of :func:`qinb.evaluate`: configurations side by side, and which queries one
configuration answers better or worse than another."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from qinb.errors import ArgumentError, require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_evaluation"]

COLOURS = ["#dc244c", "#038fe1", "#8a5cd6", "#2f9e44", "#f08c00"]


def _name(using: str, fusion: str) -> str:
    return using if fusion == "-" else f"{using} · {fusion}"


def plot_evaluation(result: pd.DataFrame, *, compare: tuple[str, str] | None = None,
                    metric: str | None = None) -> Figure:
    """Each configuration's measures as bars, and the per-query difference between two.

    Parameters
    ----------
    result : DataFrame
        What :func:`qinb.evaluate` returned.
    compare : (str, str), optional
        The two configurations whose per-query difference is drawn, named as on the bars
        (``"text+bm25 · rrf"``, ``"bm25"``). Default: the best against the best single vector.
    metric : str, optional
        The measure compared per query (default ``ndcg@k``).

    Examples
    --------
    >>> result = qinb.evaluate("python-docs", queries, qrels)
    >>> qinb.plot_evaluation(result, compare=("text+bm25 · rrf", "bm25"))
    """
    require("matplotlib", "plots")
    import matplotlib.pyplot as plt

    from qinb._evaluate import query_scores

    if result.empty or "using" not in result.columns:
        raise ArgumentError("plot_evaluation takes what qinb.evaluate returned")
    measures = [c for c in result.columns if c not in ("using", "fusion", "queries")]
    metric = metric or f"ndcg@{result.attrs.get('k', 10)}"
    names = [_name(u, f) for u, f in zip(result["using"], result["fusion"], strict=True)]
    detail = query_scores(result)
    detail["name"] = [_name(u, f) for u, f in zip(detail["using"], detail["fusion"], strict=True)]
    if compare is None:
        singles = [n for n, f in zip(names, result["fusion"], strict=True) if f == "-"]
        other = next((n for n in singles if n != names[0]), names[-1])
        compare = (names[0], other)
    for name in compare:
        if name not in names:
            raise ArgumentError(f"no configuration {name!r} in this result; there are "
                                f"{', '.join(map(repr, names))}")

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(0.5 * len(names) + 3, 5)),
                                      gridspec_kw={"width_ratios": [1.1, 1]})
    height = 0.8 / len(measures)
    for i, measure in enumerate(measures):
        rows = [r + i * height - 0.4 + height / 2 for r in range(len(names))]
        left.barh(rows, result[measure], height=height, label=measure,
                  color=COLOURS[i % len(COLOURS)])
    left.set_yticks(range(len(names)), [n.replace("$", r"\$") for n in names])
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel(f"mean over {int(result['queries'].iloc[0])} queries")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(measures), fontsize=8,
                frameon=False)
    left.set_title("configurations, best first")

    wide = detail.pivot_table(index="query", columns="name", values=metric)
    difference = (wide[compare[0]] - wide[compare[1]]).sort_values()
    colours = ["#2f9e44" if d > 0 else "#dc244c" if d < 0 else "0.7" for d in difference]
    right.barh(range(len(difference)), difference, color=colours)
    right.set_yticks(range(len(difference)), [str(q).replace("$", r"\$") for q in difference.index],
                     fontsize=7)
    right.axvline(0, color="0.3", linewidth=0.8)
    better, worse = int((difference > 0).sum()), int((difference < 0).sum())
    right.set_title(f"{metric}: {compare[0]} minus {compare[1]}\n"
                    f"{better} queries better, {worse} worse, {len(difference) - better - worse} same"
                    .replace("$", r"\$"), fontsize=10)
    fig.tight_layout()
    return fig

