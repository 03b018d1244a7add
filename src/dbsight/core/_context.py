"""Request context: who is running the current query, carried in contextvars.

The ASGI middleware opens a request scope; instruments read it when a query finishes, so
a query knows its route, request id and trace without any argument passing. Works the same
in threads (each thread starts with an empty context) and in asyncio tasks (which copy it).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class FingerprintTally:
    """How often one statement shape ran within a request, and for how long (N+1 detection)."""

    __slots__ = ("count", "total_s", "normalized")

    def __init__(self, normalized: str) -> None:
        self.count = 0
        self.total_s = 0.0
        self.normalized = normalized


@dataclass(slots=True)
class RequestContext:
    """One request (or job) that runs queries; accumulates what its queries cost."""

    request_id: str
    route: str | None = None
    app: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    queries: int = 0
    db_time_s: float = 0.0
    cache_time_s: float = 0.0
    # fingerprint -> its tally, for every statement but transaction control (BEGIN, COMMIT ...)
    fingerprints: dict[str, FingerprintTally] = field(default_factory=dict)


_getrandbits = random.getrandbits

_request: ContextVar[RequestContext | None] = ContextVar("dbsight_request", default=None)
_function: ContextVar[str | None] = ContextVar("dbsight_function", default=None)
# Set while an outer layer (say SQLAlchemy) records a statement, so that a driver
# instrumented underneath it (asyncpg, psycopg) does not record the same statement twice.
_recording: ContextVar[bool] = ContextVar("dbsight_recording", default=False)


def current_request() -> RequestContext | None:
    """The request the calling code runs in, or None outside any request scope."""
    return _request.get()


def current_function() -> str | None:
    """The innermost ``@db_observer`` name the calling code runs in."""
    return _function.get()


def new_request_id() -> str:
    """32 random hex digits, like ``uuid4().hex`` at a tenth of its cost (no system call;
    the ``random`` module is reseeded in every forked worker)."""
    return f"{_getrandbits(128):032x}"


@contextmanager
def request_scope(
    request_id: str | None = None,
    *,
    route: str | None = None,
    app: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> Iterator[RequestContext]:
    """Run a block as one request: its queries carry this request id, route and trace.

    Only the context: no span, no N+1 check at the end. ``dbsight.request_scope`` is the
    scope an application opens around a job (it gives what a web request gets); this one is
    for code that manages spans itself, and for tests."""
    ctx = RequestContext(
        request_id=request_id or new_request_id(),
        route=route,
        app=app,
        trace_id=trace_id,
        span_id=span_id,
    )
    token = _request.set(ctx)
    try:
        yield ctx
    finally:
        _request.reset(token)


@contextmanager
def function_scope(name: str) -> Iterator[None]:
    token = _function.set(name)
    try:
        yield
    finally:
        _function.reset(token)
