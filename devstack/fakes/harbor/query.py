"""Harbor's list query syntax (``q``, ``sort``, ``page``, ``page_size``) and its pagination headers, for the
Harbor fake. Test double only; see ``devstack/fakes/harbor/__init__.py``.

``q`` is a comma-separated list of ``key=value`` terms (swagger ``parameters/query``; goharbor/harbor
src/lib/q/builder.go): exact ``k=v``, fuzzy ``k=~v``, range ``k=[min~max]``, any-of ``k={v1 v2}`` and
all-of ``k=(v1 v2)``. A term without ``=`` or with an empty key or value is a 400. Pagination follows
src/server/v2.0/handler/base.go: ``X-Total-Count`` and a ``Link`` header whose targets are the request's own
path and query with ``page`` changed, the query left unescaped, entries joined by " , ".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from .state import HarborError

MAX_PAGE_SIZE = 100  # swagger parameters/pageSize: maximum 100
DEFAULT_PAGE_SIZE = 10  # swagger parameters/pageSize: default 10

Json = dict[str, Any]


@dataclass(frozen=True)
class Term:
    """One ``q`` term: ``kind`` is exact, fuzzy, range, or or and; ``values`` are its strings."""

    key: str
    kind: str
    values: tuple[str, ...]

    def matches(self, value: Any) -> bool:
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if self.kind == "exact":
            return text == self.values[0]
        if self.kind == "fuzzy":
            return self.values[0] in text
        if self.kind == "or":
            return text in self.values
        if self.kind == "and":
            return all(text == v for v in self.values)
        low, high = self.values
        try:
            number = int(text)
            return (not low or number >= int(low)) and (not high or number <= int(high))
        except ValueError:
            return (not low or text >= low) and (not high or text <= high)


def parse_q(raw: str) -> dict[str, Term]:
    """The terms of a ``q`` parameter (already URL-decoded once, as Go's query parsing does; Harbor
    unescapes it once more)."""
    terms: dict[str, Term] = {}
    if not raw:
        return terms
    text = unquote_plus(raw)
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise HarborError(
                400, "BAD_REQUEST", 'the query string must contain "=" and the key/value cannot be empty'
            )
        terms[key] = _term(key, value)
    return terms


def _term(key: str, value: str) -> Term:
    bad = HarborError(400, "BAD_REQUEST", f"invalid query string value: {value}")
    head = value[0]
    if head == "~":
        if len(value) < 2:
            raise bad
        return Term(key, "fuzzy", (value[1:],))
    if head == "[":
        if not value.endswith("]") or value.count("~") != 1:
            raise bad
        low, high = (s.strip() for s in value[1:-1].split("~", 1))
        if not low and not high:
            raise bad
        return Term(key, "range", (low, high))
    if head in "{(":
        close = "}" if head == "{" else ")"
        if not value.endswith(close):
            raise bad
        items = tuple(v.strip() for v in value[1:-1].split(" ") if v.strip())
        return Term(key, "or" if head == "{" else "and", items)
    return Term(key, "exact", (value,))


def page_params(query: dict[str, list[str]]) -> tuple[int, int]:
    """``page`` and ``page_size``: integers (go-swagger answers 422 otherwise), page_size at most 100."""

    def number(name: str, default: int) -> int:
        values = query.get(name)
        if not values or values[-1] == "":
            return default
        try:
            return int(values[-1])
        except ValueError:
            raise HarborError(
                422, "UNPROCESSABLE_ENTITY", f"{name} in query must be of type int64: {values[-1]!r}"
            ) from None

    page = number("page", 1)
    size = number("page_size", DEFAULT_PAGE_SIZE)
    if size > MAX_PAGE_SIZE:
        raise HarborError(
            422, "UNPROCESSABLE_ENTITY", f"page_size in query should be less than or equal to {MAX_PAGE_SIZE}"
        )
    if page < 1 or size < 1:  # fake-only: Harbor's behaviour here is not documented
        raise HarborError(422, "UNPROCESSABLE_ENTITY", "page and page_size must be at least 1")
    return page, size


def sort_items(items: list[Json], sort: str, fields: dict[str, Callable[[Json], Any]], default: str) -> None:
    """Sort in place by ``sort`` (``k1,-k2``); unknown keys are ignored; ``default`` when none is given."""
    keys = [k for k in (sort or default).split(",") if k.lstrip("-").lower() in fields]
    for key in reversed(keys):
        field = fields[key.lstrip("-").lower()]
        items.sort(key=lambda item: (field(item) is None, field(item)), reverse=key.startswith("-"))


def link_header(path: str, query: dict[str, list[str]], page: int, size: int, total: int) -> str:
    """Harbor's ``Link``: prev and next as the request's path with ``page`` and ``page_size`` set, the query
    re-encoded with sorted keys and then unescaped (base.go Links)."""

    def target(number: int) -> str:
        params = {k: list(v) for k, v in query.items()}
        params["page"] = [str(number)]
        params["page_size"] = [str(size)]
        text = "&".join(f"{k}={v}" for k in sorted(params) for v in params[k])
        return f"<{path}?{text}>"

    links = []
    if page > 1 and (page - 1) * size < total:
        links.append(f'{target(page - 1)}; rel="prev"')
    if size * page < total:
        links.append(f'{target(page + 1)}; rel="next"')
    return " , ".join(links)


# ---- the robot table's columns, as Harbor's ORM filters and sorts on them


def column(rec: Json, key: str) -> Any:
    return {
        "name": rec["name"],
        "description": rec["description"],
        "duration": rec["duration"],
        "expiresat": rec["expires_at"],
        "expires_at": rec["expires_at"],
        "disabled": rec["disable"],
        "creatorref": rec.get("creator_ref"),
        "creator_ref": rec.get("creator_ref"),
        "creatortype": rec.get("creator_type"),
        "creator_type": rec.get("creator_type"),
        "id": rec["id"],
    }.get(key.lower(), _IGNORED)


_IGNORED = object()


def robot_matches(rec: Json, terms: Iterable[Term]) -> bool:
    """Harbor's ORM filters on the robot table's columns; keys it does not know are ignored."""
    for term in terms:
        value = column(rec, term.key)
        if value is not _IGNORED and not term.matches(value):
            return False
    return True


ROBOT_SORT_FIELDS: dict[str, Callable[[Json], Any]] = {
    "name": lambda r: r["name"],
    "id": lambda r: r["id"],
    "creation_time": lambda r: r["creation_time"],
    "update_time": lambda r: r["update_time"],
    "expires_at": lambda r: r["expires_at"],
    "duration": lambda r: r["duration"],
    "description": lambda r: r["description"],
}
