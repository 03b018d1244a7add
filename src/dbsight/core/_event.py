"""The one data type: a `QueryEvent` per statement, whoever ran it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Operation = Literal["select", "insert", "update", "delete", "ddl", "tx", "other"]
Outcome = Literal["ok", "error"]


@dataclass(slots=True, frozen=True)
class QueryError:
    """What went wrong with a statement.

    ``message`` (the server's or the client library's) may quote literal values from the
    statement, so sinks export it as is only when ``include_query_bodies`` is on, and
    otherwise only what `dbsight.core.public_message` keeps of it; ``type`` and ``sqlstate``
    are always safe.
    """

    type: str
    sqlstate: str | None = None
    message: str = ""


def statement_rows(tag_rows: int | None, returned: int) -> int | None:
    """A statement's ``rows``: the count its command tag (or the driver) gives ('UPDATE 3',
    'SELECT 5', 'COPY 100'), else the rows it returned when it returned some (SHOW,
    EXPLAIN, a portal suspended after its row limit, which ends without a tag), else None
    (BEGIN, CREATE TABLE: no row count)."""
    if tag_rows is not None:
        return tag_rows
    return returned if returned else None


@dataclass(slots=True)
class QueryEvent:
    """One executed statement, as seen by an in-process instrument or by the proxy.

    ``sql`` and ``params`` stay in memory: sinks never log or export them unless
    ``include_query_bodies`` is enabled. ``normalized`` has every literal replaced by a
    placeholder and is always safe to export.

    ``rows`` is what `statement_rows` makes of what the client or the server said: the rows
    a statement touched or returned, the same whichever way it ran (an in-process
    instrument, SQLAlchemy on that driver, the proxy); None when it is unknown (the driver
    does not say, the statement failed) or the statement has no row count (BEGIN,
    CREATE TABLE). Never 0 for "unknown": sinks treat None as unknown, not as zero.
    """

    sql: str
    normalized: str
    fingerprint: str
    operation: Operation
    tables: tuple[str, ...]
    read_only: bool
    system: str
    source: str
    duration_s: float
    started_at: float
    rows: int | None = None
    error: QueryError | None = None
    request_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    route: str | None = None
    app: str | None = None
    function: str | None = None
    database: str | None = None
    user: str | None = None
    application_name: str | None = None
    client_addr: str | None = None
    params: object | None = None

    @property
    def outcome(self) -> Outcome:
        return "ok" if self.error is None else "error"

    @property
    def table(self) -> str:
        """The statement's main table (the first one it names), or '' when it has none."""
        return self.tables[0] if self.tables else ""
