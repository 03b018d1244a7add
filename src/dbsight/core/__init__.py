"""dbsight's core: the event type, observers, request context, settings and the recorder."""

from ._context import (
    FingerprintTally,
    RequestContext,
    current_function,
    current_request,
    function_scope,
    new_request_id,
    request_scope,
)
from ._errors import error_info, error_summary, public_message
from ._event import Operation, Outcome, QueryError, QueryEvent, statement_rows
from ._explain import Explainer, PlanCallback
from ._observer import QueryContext, QueryObserver
from ._pools import PoolRegistry, PoolUsage, TimeoutCounter, pools
from ._recorder import Recorder, dialect_for
from ._settings import ConfigError, Settings, load_settings

__all__ = [
    "ConfigError",
    "Explainer",
    "FingerprintTally",
    "Operation",
    "Outcome",
    "PlanCallback",
    "PoolRegistry",
    "PoolUsage",
    "TimeoutCounter",
    "QueryContext",
    "QueryError",
    "QueryEvent",
    "QueryObserver",
    "Recorder",
    "RequestContext",
    "Settings",
    "current_function",
    "current_request",
    "dialect_for",
    "error_info",
    "error_summary",
    "function_scope",
    "load_settings",
    "new_request_id",
    "pools",
    "public_message",
    "request_scope",
    "statement_rows",
]
