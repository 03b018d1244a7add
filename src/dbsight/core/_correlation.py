"""Correlation ids from outside: request ids and W3C Trace Context, as an HTTP request's
``X-Request-ID``/``traceparent``/``tracestate`` headers or a statement's sqlcommenter comment
carry them.

Incoming values are untrusted: they end up in logs, metrics exemplars, SQL comments and
response headers, so only values of a strict shape are kept; anything else is replaced by
a fresh id, never repaired.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

# 1-128 visible ASCII characters without quotes, spaces, commas, semicolons or backslashes:
# enough for UUIDs, ULIDs, base64 and "service:id" styles, nothing that can break a log line,
# a header or a sqlcommenter value.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._~:/+=@-]{1,128}")

# W3C Trace Context level 1, version 00 only: lowercase hex, ids not all zero.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

# tracestate: at most 32 list members ``key=value``; keys are lowercase (optionally
# ``tenant@system``), values printable ASCII without ``,`` and ``=`` and not ending in a space.
_TRACESTATE_KEY = re.compile(
    r"(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})"
)
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
_TRACESTATE_MAX_MEMBERS = 32
_TRACESTATE_MAX_LENGTH = 512

_getrandbits = random.getrandbits


class TraceParent(NamedTuple):
    """A parsed ``traceparent``: ids as lowercase hex, ``sampled`` from the flags."""

    trace_id: str
    span_id: str
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 0x01)


def valid_request_id(value: str | None) -> str | None:
    """``value`` when it is an acceptable request id, else None."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return None


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The parent of an incoming ``traceparent`` header, or None when absent or invalid."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, span_id, int(flags, 16))


def parse_tracestate(values: list[str]) -> list[tuple[str, str]] | None:
    """The members of the incoming ``tracestate`` header(s), in order; None when invalid
    (the spec says to drop a tracestate that cannot be parsed, not to repair it)."""
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    if sum(len(value) for value in values) > _TRACESTATE_MAX_LENGTH:
        return None
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue
            key, sep, val = item.partition("=")
            if (
                not sep
                or key in seen
                or not _TRACESTATE_KEY.fullmatch(key)
                or not _TRACESTATE_VALUE.fullmatch(val)
            ):
                return None
            seen.add(key)
            members.append((key, val))
    if len(members) > _TRACESTATE_MAX_MEMBERS:
        return None
    return members


def new_trace_id() -> str:
    """A random, non-zero 128-bit trace id in hex."""
    value = 0
    while not value:
        value = _getrandbits(128)
    return f"{value:032x}"


def new_span_id() -> str:
    """A random, non-zero 64-bit span id in hex."""
    value = 0
    while not value:
        value = _getrandbits(64)
    return f"{value:016x}"


def remote_context(
    trace_id: str,
    span_id: str,
    flags: int,
    tracestate: Sequence[tuple[str, str]] | None = None,
) -> otel_context.Context:
    """An OpenTelemetry context whose current span is a caller's, known by its ids (from a
    ``traceparent``): what a span of ours is started in to be that span's child."""
    remote = SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(flags),
        trace_state=TraceState(list(tracestate)) if tracestate else None,
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))
