"""dbsight: database observability for Python web services.

    import dbsight
    dbsight.configure(dbsight.Settings(slow_query_threshold_ms=200))
    handle = dbsight.instrument(engine)      # SQLAlchemy, asyncpg, psycopg, ...
    dbsight.stats.top(10)
    dbsight.configure_json_logging()         # optional: every log as JSON lines on stderr
"""

from . import _compiled

_compiled.install()  # DBSIGHT_PURE_PYTHON=1: the hot modules from their sources

from . import sql, stats  # noqa: E402
from ._runtime import add_observer, configure, get_runtime, remove_observer
from .core import (
    ConfigError,
    QueryContext,
    QueryError,
    QueryEvent,
    QueryObserver,
    RequestContext,
    Settings,
    current_request,
)
from .instrument import (
    InstrumentationHandle,
    ObservableRepository,
    db_observer,
    instrument,
)
from .export.logging import configure_json_logging
from .instrument._asgi import DbsightMiddleware
from .instrument._scope import request_scope
from .ops import HealthCheck, add_health_check, remove_health_check

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DbsightMiddleware",
    "HealthCheck",
    "InstrumentationHandle",
    "ObservableRepository",
    "QueryContext",
    "QueryError",
    "QueryEvent",
    "QueryObserver",
    "RequestContext",
    "Settings",
    "__version__",
    "add_health_check",
    "add_observer",
    "configure",
    "configure_json_logging",
    "current_request",
    "db_observer",
    "get_runtime",
    "instrument",
    "remove_health_check",
    "remove_observer",
    "request_scope",
    "sql",
    "stats",
]
