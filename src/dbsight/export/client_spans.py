"""CLIENT spans for calls that are not SQL statements (Redis commands, outgoing HTTP).

They come from the tracer provider of the runtime's `TracingSink` and follow its sampling
rule, so a cache or HTTP span lands in the same trace, exporter and sample as the database
spans around it: under a current span, the parent's sampled flag decides; outside any
trace, the sink's root rate. Without an active `TracingSink` (tracing off, or no SDK)
there are no client spans at all. Spans are children of the current span and are not
made current themselves.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .tracing import TRACER_NAME, TracingSink

if TYPE_CHECKING:
    from .._runtime import Runtime

_get_current_span = trace.get_current_span
_random = random.random
_CLIENT = SpanKind.CLIENT


def should_sample(root_rate: float) -> bool:
    """Whether a span started now should exist: inside a trace the parent's sampled flag
    decides; outside any trace a fraction ``root_rate`` of calls start one."""
    parent = _get_current_span().get_span_context()
    if parent.is_valid:
        return bool(parent.trace_flags.sampled)
    return root_rate >= 1.0 or _random() < root_rate


class ClientSpans:
    """Starts and ends CLIENT spans with the tracing sink's tracer and sampling."""

    __slots__ = ("_tracer", "_root_rate", "include_bodies")

    def __init__(self, tracer: Any, root_rate: float, include_bodies: bool) -> None:
        self._tracer = tracer
        self._root_rate = root_rate
        self.include_bodies = include_bodies

    @classmethod
    def of(cls, runtime: Runtime) -> ClientSpans | None:
        """Client spans for ``runtime``, or None when it has no active tracing sink."""
        for sink in runtime.sinks:
            if isinstance(sink, TracingSink) and sink.active and sink.provider is not None:
                return cls(
                    sink.provider.get_tracer(TRACER_NAME),
                    sink.root_rate,
                    runtime.settings.include_query_bodies,
                )
        return None

    def start(self, name: str, attributes: Mapping[str, Any]) -> Any:
        """A recording CLIENT span, child of the current span, or None when not sampled."""
        if not should_sample(self._root_rate):
            return None
        span = self._tracer.start_span(name, kind=_CLIENT, attributes=attributes)
        return span if span.is_recording() else None

    def fail(self, span: Any, exc: BaseException) -> None:
        """End ``span`` as failed by ``exc``; the message (which may quote values) only
        with ``include_query_bodies``."""
        kind = type(exc).__name__
        span.set_attribute("error.type", kind)
        message = str(exc) if self.include_bodies else ""
        span.set_status(Status(StatusCode.ERROR, message or kind))
        span.end()
