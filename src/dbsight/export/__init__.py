"""Where events go: Prometheus metrics, OpenTelemetry spans, JSON logs, the slow-query log."""

from ._guard import OTHER, LabelGuard
from .logging import JsonFormatter, QueryLogSink, configure_json_logging
from .prometheus import PrometheusSink
from .slowlog import SlowQuerySink, summarize_plan
from .tracing import TracingSink

__all__ = [
    "OTHER",
    "JsonFormatter",
    "LabelGuard",
    "PrometheusSink",
    "QueryLogSink",
    "SlowQuerySink",
    "TracingSink",
    "configure_json_logging",
    "summarize_plan",
]
