"""``models.Filter`` (qdrant-client's filter, what qinb users write) to Qdrant Edge's filter, and
the payload indexes a filter would use."""

from __future__ import annotations

from typing import Any

from qdrant_client import models

from qinb.errors import QueryError

__all__ = ["edge_filter", "index_types"]


def edge_filter(flt: models.Filter | None) -> Any:
    """The Qdrant Edge filter that selects the same points, or None."""
    if flt is None:
        return None
    import qdrant_edge as E

    def many(conditions: Any) -> list[Any] | None:
        if conditions is None:
            return None
        listed = conditions if isinstance(conditions, list) else [conditions]
        return [condition(c) for c in listed]

    min_should = None
    if flt.min_should is not None:
        min_should = E.MinShould(many(flt.min_should.conditions) or [], flt.min_should.min_count)
    return E.Filter(must=many(flt.must), should=many(flt.should), must_not=many(flt.must_not),
                    min_should=min_should)


def condition(c: Any) -> Any:
    import qdrant_edge as E

    if isinstance(c, models.Filter):
        return edge_filter(c)
    if isinstance(c, models.HasIdCondition):
        return E.HasIdCondition({i if isinstance(i, int) else str(i) for i in c.has_id})
    if isinstance(c, models.IsEmptyCondition):
        return E.IsEmptyCondition(c.is_empty.key)
    if isinstance(c, models.IsNullCondition):
        return E.IsNullCondition(c.is_null.key)
    if isinstance(c, models.HasVectorCondition):
        return E.HasVectorCondition(c.has_vector)
    if isinstance(c, models.FieldCondition):
        return E.FieldCondition(key=c.key, match=_match(c), range=_range(c),
                                is_empty=c.is_empty, is_null=c.is_null,
                                values_count=_values_count(c))
    raise QueryError(f"the embedded store cannot filter on a {type(c).__name__}; use a match, a "
                     "range, has_id, is_empty or is_null condition, or a Qdrant server")


def _match(c: models.FieldCondition) -> Any:
    import qdrant_edge as E

    m = c.match
    if m is None:
        return None
    if isinstance(m, models.MatchValue):
        return E.MatchValue(m.value)
    if isinstance(m, models.MatchAny):
        return E.MatchAny(list(m.any))  # type: ignore[arg-type]
    if isinstance(m, models.MatchExcept):
        return E.MatchExcept(list(m.except_))  # type: ignore[arg-type]
    if isinstance(m, models.MatchText):
        return E.MatchText(m.text)
    raise QueryError(f"filter on {c.key!r}: the embedded store cannot run a {type(m).__name__}")


def _range(c: models.FieldCondition) -> Any:
    import qdrant_edge as E

    r = c.range
    if r is None:
        return None
    if isinstance(r, models.DatetimeRange):
        def iso(v: Any) -> str | None:
            return None if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v)
        return E.RangeDateTime(gte=iso(r.gte), gt=iso(r.gt), lte=iso(r.lte), lt=iso(r.lt))
    return E.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)


def _values_count(c: models.FieldCondition) -> Any:
    import qdrant_edge as E

    v = c.values_count
    if v is None:
        return None
    return E.ValuesCount(lt=v.lt, gt=v.gt, gte=v.gte, lte=v.lte)


def index_types(flt: models.Filter | None) -> dict[str, str]:
    """Payload keys the filter matches or ranges on, with the index each needs
    ("keyword", "integer", "float" or "bool")."""
    found: dict[str, str] = {}

    def walk(c: Any) -> None:
        if isinstance(c, models.Filter):
            for part in (c.must, c.should, c.must_not):
                for sub in part if isinstance(part, list) else [part] if part else []:
                    walk(sub)
            if c.min_should is not None:
                for sub in c.min_should.conditions:
                    walk(sub)
        elif isinstance(c, models.FieldCondition):
            kind = _kind(c)
            if kind:
                found.setdefault(c.key, kind)

    walk(flt)
    return found


def _kind(c: models.FieldCondition) -> str | None:
    if c.range is not None:
        return None if isinstance(c.range, models.DatetimeRange) else "float"
    m = c.match
    values: list[Any] = []
    if isinstance(m, models.MatchValue):
        values = [m.value]
    elif isinstance(m, models.MatchAny):
        values = list(m.any)
    elif isinstance(m, models.MatchExcept):
        values = list(m.except_)
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if values and all(isinstance(v, str) for v in values):
        return "keyword"
    return None
