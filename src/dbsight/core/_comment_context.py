"""Reading sqlcommenter comments: who sent a statement, as its comment says.

The sqlcommenter specification (https://google.github.io/sqlcommenter/spec/) puts
``/*key='value',key2='value2'*/`` after a statement (some libraries put it before), keys and
values URL-encoded and a ``'`` in a value escaped as ``\\'``. The keys its libraries use:
``traceparent``, ``tracestate`` (W3C Trace Context), ``route``, ``controller``, ``action``,
``framework``, ``application``, ``db_driver`` ... and dbsight's own ``request_id``.

`split_comment(sql)` is what the proxy calls for every statement that has a ``/*`` in it:
the text without the comment (so that the analysis cache, keyed by text, hits for the
statement however many requests tagged it) and a `CommentContext`. Comments are parsed once
per distinct comment text (a bounded cache): with ``sqlcommenter=route`` a route's comment
is always the same; with ``full`` it changes per request (and per traced statement), which
costs one small regular-expression pass over the comment alone.

Values are untrusted (any client can write a comment): a request id or trace context of
the wrong shape is ignored, like a malformed ``X-Request-ID`` or ``traceparent`` header, and
a route is kept only when it is short and printable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote

from ._correlation import parse_traceparent, parse_tracestate, valid_request_id

if TYPE_CHECKING:
    from ._event import QueryEvent

__all__ = ["CommentContext", "has_comment", "parse_comment", "parse_pairs", "split_comment"]

# key='value' and its separator; the value's escapes as an unrolled loop (several times
# faster than an alternation per character)
_PAIR = re.compile(r"\s*([^=,\s]+)\s*=\s*'([^'\\]*(?:\\.[^'\\]*)*)'\s*(?:,|$)")
_ESCAPE = re.compile(r"\\(.)")
# A route, controller or application name is kept from a comment when printable and at most
# this long (it ends up in the statistics table and in logs).
_NAME_MAX = 200
_CACHE_MAX = 1024
_NO_TAGS: Mapping[str, str] = MappingProxyType({})


def _decode(value: str) -> str:
    """URL-decoded ``value``; the decoded routes (the values that repeat) are kept."""
    if "%" not in value:
        return value
    decoded = _decoded.get(value)
    if decoded is None:
        decoded = unquote(value)
        if len(_decoded) >= _CACHE_MAX:
            _decoded.clear()
        _decoded[value] = decoded
    return decoded


_decoded: dict[str, str] = {}


def parse_pairs(text: str) -> dict[str, str]:
    """The decoded key/value pairs of a comment's body (between ``/*`` and ``*/``); {} when
    it is not a sqlcommenter comment. ``%%`` (what a pyformat driver sends before
    interpolation) is read as ``%``."""
    if "%%" in text:
        text = text.replace("%%", "%")
    text = text.strip()
    if not text or "/*" in text:  # a nested comment: not one of sqlcommenter's
        return {}
    pairs: dict[str, str] = {}
    pos = 0
    end = len(text)
    match_at = _PAIR.match
    while pos < end:
        match = match_at(text, pos)
        if match is None:
            return {}
        key, value = match.groups()
        if "\\" in value:
            value = _ESCAPE.sub(r"\1", value)
        pairs[_decode(key)] = _decode(value)
        pos = match.end()
    return pairs


def _strip_end(sql: str) -> tuple[str, str]:
    """Split ``sql`` into its body and its trailing ``;`` and whitespace."""
    body = sql.rstrip()
    if body.endswith(";"):
        body = body[:-1].rstrip()
    return body, sql[len(body) :]


def _trailing_comment(sql: str) -> str | None:
    body, _ = _strip_end(sql)
    if not body.endswith("*/"):
        return None
    start = body.rfind("/*")
    if start < 0:
        return None
    return body[start + 2 : -2]


def parse_comment(sql: str) -> dict[str, str]:
    """The key/value pairs of the sqlcommenter comment ending ``sql``; {} when there is none."""
    text = _trailing_comment(sql)
    return parse_pairs(text) if text is not None else {}


def has_comment(sql: str) -> bool:
    """True when ``sql`` already ends with a sqlcommenter comment."""
    text = _trailing_comment(sql)
    return text is not None and bool(parse_pairs(text))


def _name(value: str | None) -> str | None:
    if value and len(value) <= _NAME_MAX and value.isprintable():
        return value
    return None


class CommentContext(NamedTuple):
    """What a statement's sqlcommenter comment says about its sender.

    ``span_id`` is the sender's span (the traceparent's parent id): the span a receiver's
    own span is a child of. ``route`` is the comment's ``route``, else
    ``controller#action`` (or the ``controller``) of frameworks that send those instead.
    ``tags`` holds every pair, decoded. (A named tuple: one is made per distinct comment,
    which with ``sqlcommenter=full`` is per statement.)
    """

    route: str | None = None
    request_id: str | None = None
    app: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    trace_flags: int = 0
    tracestate: tuple[tuple[str, str], ...] = ()
    tags: Mapping[str, str] = _NO_TAGS

    @property
    def sampled(self) -> bool:
        return bool(self.trace_flags & 0x01)

    @classmethod
    def from_pairs(cls, pairs: dict[str, str]) -> CommentContext:
        route = _name(pairs.get("route"))
        if route is None:
            controller, action = _name(pairs.get("controller")), _name(pairs.get("action"))
            if controller is not None:
                route = _name(f"{controller}#{action}") if action is not None else controller
        parent = parse_traceparent(pairs.get("traceparent"))
        state = pairs.get("tracestate")
        members = parse_tracestate([state]) if state and parent is not None else None
        return cls(
            route=route,
            request_id=valid_request_id(pairs.get("request_id")),
            app=_name(pairs.get("application") or pairs.get("app_name")),
            trace_id=parent.trace_id if parent is not None else None,
            span_id=parent.span_id if parent is not None else None,
            trace_flags=parent.flags if parent is not None else 0,
            tracestate=tuple(members) if members else (),
            tags=pairs,
        )

    def apply(self, event: QueryEvent) -> None:
        """Attribute ``event`` to the sender (what the comment does not say is left as is)."""
        if self.request_id is not None:
            event.request_id = self.request_id
        if self.route is not None:
            event.route = self.route
        if self.app is not None:
            event.app = self.app
        if self.trace_id is not None:
            event.trace_id = self.trace_id
            event.span_id = self.span_id


# comment text (with its /* */) -> what it says; None for a comment that is not sqlcommenter's
_contexts: dict[str, CommentContext | None] = {}


def _context_of(comment: str) -> CommentContext | None:
    try:
        return _contexts[comment]
    except KeyError:
        pass
    pairs = parse_pairs(comment[2:-2])
    found = CommentContext.from_pairs(pairs) if pairs else None
    if len(_contexts) >= _CACHE_MAX:
        _contexts.clear()  # cheaper than an LRU; with "full" comments few would hit anyway
    _contexts[comment] = found
    return found


def _inside_comment(sql: str, start: int) -> bool:
    """Whether ``sql[start:]`` may be nested in an earlier comment left open (PostgreSQL
    nests block comments): then it is not the statement's last comment, leave it alone."""
    opened = sql.count("/*", 0, start)
    return opened > 0 and opened > sql.count("*/", 0, start)


def split_comment(sql: str) -> tuple[str, CommentContext | None]:
    """``sql`` without its sqlcommenter comment, and what the comment says; ``(sql, None)``
    when it has none. The comment is the last thing in the text (before any ``;``), or the
    first; any other comment is left in place."""
    if "/*" not in sql:
        return sql, None
    body, tail = _strip_end(sql)
    if body.endswith("*/"):
        start = body.rfind("/*")
        if start >= 0 and not _inside_comment(body, start):
            found = _context_of(body[start:])
            if found is not None:
                return sql[:start].rstrip() + tail, found
    head = sql.lstrip()
    if head.startswith("/*"):
        end = head.find("*/", 2)
        if end >= 0:
            found = _context_of(head[: end + 2])
            if found is not None:
                return head[end + 2 :].lstrip(), found
    return sql, None
