"""In-process instruments: ``instrument(target)`` for database clients, ``@db_observer`` and
`ObservableRepository` for application code.

    handle = dbsight.instrument(engine)     # SQLAlchemy Engine / AsyncEngine, asyncpg
    ...                                     # Connection / Pool, psycopg (Async)Connection,
    handle.uninstrument()                   # psycopg_pool (Async)ConnectionPool

One private module per client library; they share ``_common`` (hot-path helpers) and
``_explain`` (background EXPLAIN). Client libraries are imported only when a target of theirs
is instrumented, so importing dbsight never imports a client the application does not use.
"""

from ._decorator import FunctionStats, db_observer, function_stats, reset_function_stats
from ._dispatch import SUPPORTED, instrument
from ._handle import InstrumentationHandle, live_handles, uninstrument_all
from ._repository import ObservableRepository

__all__ = [
    "SUPPORTED",
    "FunctionStats",
    "InstrumentationHandle",
    "ObservableRepository",
    "db_observer",
    "function_stats",
    "instrument",
    "live_handles",
    "reset_function_stats",
    "uninstrument_all",
]
