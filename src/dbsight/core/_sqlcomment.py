"""sqlcommenter: tag each statement with who sent it, in a comment the server (and the
proxy) can read.

With ``settings.sqlcommenter`` set, instruments append a comment in the format of the
sqlcommenter specification (https://google.github.io/sqlcommenter/spec/) to the text they
send, never to the text they record::

    SELECT * FROM users WHERE id = $1 /*request_id='4bf9...',route='%2Fusers%2F%7Bid%7D',
    traceparent='00-<trace>-<span>-01'*/                  (one line in reality)

Keys are sorted; keys and values are URL-encoded and a ``'`` in a value is escaped as ``\\'``.
Because every ``*`` and ``/`` of a value is encoded, a value can never close the comment early.

Modes:

``"off"`` (default)
    nothing is appended.
``"route"``
    only the route template (``/users/{id}``, never the raw path). The text of a statement is
    the same for every request of a route, so per-text caches keep working.
``"full"``
    route, request id and W3C ``traceparent`` of the current span: the server's logs,
    ``pg_stat_activity`` and the dbsight proxy can then join a statement to its request and trace.

**The cost of "full" for prepared-statement caches.** asyncpg keys its statement cache by
statement text, and psycopg prepares a statement server-side once the same text has run
``prepare_threshold`` times (5 by default). With "full", the request id and span id make every
text unique: asyncpg parses, plans and caches a new prepared statement for every execution (its
LRU cache churns and the server holds a prepared statement per cache entry), psycopg never
reaches its prepare threshold, and ``pg_stat_statements`` still merges them (it ignores
comments). "route" keeps one text per route and statement, so both caches hit as before; use
"full" where correlating single statements is worth the extra parse/plan per query.

A comment is not added to COPY statements (their payload follows the statement), nor when
the statement already ends with a sqlcommenter comment (an outer layer, or the application,
added one). The statement handed to the recorder is always the original text, so comments
never change a fingerprint.

``parse_comment(sql)`` reads the trailing comment back; the proxy reads comments with
`dbsight.core._comment_context.split_comment` to attribute statements of other processes to
their request, route and trace.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._comment_context import _strip_end, has_comment, parse_comment
from ._context import _request

if TYPE_CHECKING:
    from ._observer import QueryContext

__all__ = [
    "append_comment",
    "comment_for",
    "format_comment",
    "has_comment",
    "parse_comment",
    "traceparent",
]

_COPY = re.compile(r"\s*copy\b", re.IGNORECASE)

# route -> comment, for "route" mode: the text per route never changes, so build it once.
_route_comments: dict[str, str] = {}
_ROUTE_CACHE_MAX = 10_000


def _encode(value: str) -> str:
    # safe="" encodes "/" and "*" too, so a value can never contain "*/".
    return quote(value, safe="").replace("'", "\\'")


def format_comment(pairs: dict[str, str]) -> str:
    """``/*k1='v1',k2='v2'*/`` with keys sorted and both sides URL-encoded; '' when empty."""
    if not pairs:
        return ""
    body = ",".join(f"{_encode(k)}='{_encode(v)}'" for k, v in sorted(pairs.items()) if v)
    return f"/*{body}*/" if body else ""


def traceparent(trace_id: Any, span_id: Any, sampled: bool = True) -> str | None:
    """W3C traceparent from ids given as ints or hex strings; None when either is missing."""
    if not trace_id or not span_id:
        return None
    t = f"{trace_id:032x}" if isinstance(trace_id, int) else str(trace_id).lower()
    s = f"{span_id:016x}" if isinstance(span_id, int) else str(span_id).lower()
    if len(t) != 32 or len(s) != 16:
        return None
    return f"00-{t}-{s}-{'01' if sampled else '00'}"


def _span_traceparent(span: Any) -> str | None:
    try:
        sc = span.get_span_context()
    except Exception:
        return None
    if not getattr(sc, "is_valid", False):
        return None
    return traceparent(sc.trace_id, sc.span_id, bool(sc.trace_flags & 0x01))


def _current_traceparent(ctx: QueryContext | None, request: Any) -> str | None:
    # The statement's own span (set by the tracing sink) is the best parent for anything the
    # server side reports; then the current OpenTelemetry span; then the request's trace ids.
    if ctx is not None and ctx.span is not None:
        tp = _span_traceparent(ctx.span)
        if tp is not None:
            return tp
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        trace = None  # type: ignore[assignment]
    if trace is not None:
        tp = _span_traceparent(trace.get_current_span())
        if tp is not None:
            return tp
    if ctx is not None:
        return traceparent(ctx.trace_id, ctx.span_id)
    if request is not None:
        return traceparent(request.trace_id, request.span_id)
    return None


def comment_for(mode: str, ctx: QueryContext | None = None) -> str:
    """The comment to append for the current request/span in ``mode``; '' when there is none."""
    if mode == "off":
        return ""
    request = ctx.request if ctx is not None else _request.get()
    route = request.route if request is not None else None
    if mode == "route":
        if not route:
            return ""
        comment = _route_comments.get(route)
        if comment is None:
            comment = format_comment({"route": route})
            if len(_route_comments) < _ROUTE_CACHE_MAX:
                _route_comments[route] = comment
        return comment
    pairs: dict[str, str] = {}
    if route:
        pairs["route"] = route
    if request is not None and request.request_id:
        pairs["request_id"] = request.request_id
    tp = _current_traceparent(ctx, request)
    if tp is not None:
        pairs["traceparent"] = tp
    return format_comment(pairs)


def append_comment(sql: str, comment: str, *, escape_percent: bool = False) -> str:
    """``sql`` with ``comment`` placed before any trailing ``;``.

    ``escape_percent`` doubles every ``%`` of the comment, for drivers that will interpolate
    the text with ``%s`` / ``%(name)s`` parameters (psycopg, pymysql with parameters). The
    statement is returned unchanged when ``comment`` is empty, when it is a COPY, or when it
    already ends with a sqlcommenter comment.
    """
    if not comment or _COPY.match(sql) is not None:
        return sql
    body, tail = _strip_end(sql)
    if body.endswith("*/") and has_comment(body):
        return sql
    if escape_percent:
        comment = comment.replace("%", "%%")
    return f"{body} {comment}{tail}"


def add_comment(
    sql: str, ctx: QueryContext | None, mode: str, *, escape_percent: bool = False
) -> str:
    """Shortcut for instruments: ``append_comment(sql, comment_for(mode, ctx))``."""
    if mode == "off":
        return sql
    return append_comment(sql, comment_for(mode, ctx), escape_percent=escape_percent)
