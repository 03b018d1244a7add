"""A capture written by ``dbsight proxy --capture``, read back as the sessions a replay plays.

Each session is the statements and transaction boundaries it recorded, in the order written
(the proxy writes a session's records in the order they happened). The rotated backups of the
file (``path.N`` ... ``path.1``, oldest first) are read before it, so a session cut by a
rotation is played whole; the lines are read by `dbsight.workload.capture_lines`, the one
reader of the capture format. Session ids start again at 1 when the proxy restarts: a
``session_start`` for an id already open begins a new session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..workload import CaptureLine, WorkloadError, capture_lines
from ._errors import bad_input


@dataclass(slots=True)
class CapturedStatement:
    """One statement record. ``sql`` and ``params`` are there only when the capture was
    written with ``capture_params`` (``params`` None for a simple-protocol Query)."""

    session: int
    at: float
    duration_s: float
    normalized: str
    fingerprint: str
    sqlstate: str | None
    in_transaction: bool
    sql: str | None = None
    params: list[Any] | None = None


@dataclass(slots=True)
class Boundary:
    """A transaction record: the session's transaction began, committed or rolled back."""

    session: int
    event: Literal["begin", "commit", "rollback"]
    at: float


Step = CapturedStatement | Boundary


@dataclass(slots=True)
class CapturedSession:
    id: int
    started_at: float
    steps: list[Step] = field(default_factory=list)

    @property
    def statements(self) -> Iterator[CapturedStatement]:
        return (step for step in self.steps if isinstance(step, CapturedStatement))


@dataclass(slots=True)
class Capture:
    path: Path
    sessions: list[CapturedSession]
    first_at: float  # the earliest statement's start: the replay's time zero

    @property
    def statement_count(self) -> int:
        return sum(1 for s in self.sessions for _ in s.statements)


def read_capture(path: str | Path, *, rotated: bool = True) -> Capture:
    """The sessions of the capture at ``path`` (with its backups when ``rotated``); raises
    `ReplayError` for a file that is missing, unreadable or not a capture."""
    path = Path(path)
    if not path.is_file():
        raise bad_input(f"{path}: no such capture file")
    open_sessions: dict[int, CapturedSession] = {}
    sessions: list[CapturedSession] = []

    def session(sid: int, at: float) -> CapturedSession:
        found = open_sessions.get(sid)
        if found is None:
            found = open_sessions[sid] = CapturedSession(sid, at)
            sessions.append(found)
        return found

    for line in _lines(path, rotated):
        where = f"{line.file}, line {line.number}"
        record = line.record
        if record is None:
            raise bad_input(
                f"{where}: {line.problem}; expected a capture written by dbsight proxy --capture"
            )
        kind = record["type"]
        try:
            if kind == "statement":
                statement = _statement(record)
                session(statement.session, statement.at).steps.append(statement)
            elif kind == "transaction":
                event = record["event"]
                if event not in ("begin", "commit", "rollback"):
                    raise ValueError(f"unknown transaction event {event!r}")
                boundary = Boundary(int(record["session"]), event, float(record["at"]))
                session(boundary.session, boundary.at).steps.append(boundary)
            elif kind == "session_start":
                sid = int(record["session"])
                open_sessions.pop(sid, None)  # the proxy restarted: a new session
                session(sid, float(record["at"]))
            elif kind == "session_end":
                open_sessions.pop(int(record["session"]), None)
            # other types: records a later dbsight may add, not needed to replay
        except (KeyError, TypeError, ValueError) as exc:
            raise bad_input(
                f"{where}: not a dbsight capture record ({_reason(exc)})"
            ) from None
    sessions = [s for s in sessions if any(True for _ in s.statements)]
    if not sessions:
        raise bad_input(f"{path}: the capture holds no statements")
    first_at = min(step.at for s in sessions for step in s.statements)
    return Capture(path, sessions, first_at)


def _lines(path: Path, rotated: bool) -> Iterator[CaptureLine]:
    try:
        yield from capture_lines(path, rotated=rotated)
    except WorkloadError as exc:  # a file that cannot be read
        raise bad_input(str(exc)) from None


def _statement(record: dict[str, Any]) -> CapturedStatement:
    sql = record.get("sql")
    params = record.get("params")
    if sql is not None and not isinstance(sql, str):
        raise ValueError("sql is not text")
    if params is not None and not isinstance(params, list):
        raise ValueError("params is not a list")
    sqlstate = record.get("sqlstate")
    return CapturedStatement(
        session=int(record["session"]),
        at=float(record["at"]),
        duration_s=float(record["duration_s"]),
        normalized=str(record["normalized"]),
        fingerprint=str(record["fingerprint"]),
        sqlstate=str(sqlstate) if sqlstate is not None else None,
        in_transaction=bool(record.get("in_transaction", False)),
        sql=sql,
        params=params,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
