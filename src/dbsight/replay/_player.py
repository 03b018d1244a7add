"""Plays a capture's sessions against a target PostgreSQL, timing every statement it sends.

Each captured session gets a connection of its own (psycopg 3, autocommit: the session's own
BEGIN and COMMIT drive its transactions, as they did through the proxy) and sends its
statements in their order: a simple-protocol Query's text as a simple Query again (a text of
several statements once, as it was sent), an extended-protocol statement's ``$n`` text with
its parameters as text (type unknown: the server infers each as it does for a literal).

Transaction boundaries are the capture's ``transaction`` records: when one says a
transaction began or ended and the replayed session is not where it should be (the BEGIN was
not captured with its text, the proxy answered it itself), the replay begins or ends it there
(COMMIT, or ROLLBACK when it was rolled back or failed); a statement captured
``in_transaction`` while the replayed session is not in one gets a BEGIN first. A write skipped inside a transaction
leaves the rest of it to run: its reads are timed on data without that write, and since
nothing else it ran can write, how it ends changes nothing on the target.

Timing: the capture's start times, scaled by ``speed`` (2: twice as fast; 0: no waiting), are
when each statement is sent, counted from the first statement of the capture; a statement
whose time has passed (its session waited for one of the ``concurrency`` connections, or an
earlier statement ran longer) goes at once. A statement's replayed time is from sending it
to having its whole result, as the proxy timed it from the client's first message to the
server's last.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from dataclasses import dataclass, field

import psycopg
from psycopg import AsyncConnection, AsyncCursor, AsyncRawCursor
from psycopg.pq import TransactionStatus

from .._progress import ProgressCallback as Progress
from ._errors import ReplayError
from ._policy import Policy
from ._reader import Boundary, Capture, CapturedSession, CapturedStatement
from ._target import connect


STAGE = "statements"  # progress(STAGE, statements sent, statements to send)

# the SQLSTATE a statement gets when its session lost its connection before it ran
CONNECTION_LOST = "08006"


@dataclass(frozen=True, slots=True)
class PlayOptions:
    speed: float = 1.0
    concurrency: int = 10
    allow_writes: bool = False

    def __post_init__(self) -> None:
        if self.speed < 0:
            raise ValueError(f"speed cannot be negative, got {self.speed}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")


@dataclass(slots=True)
class Outcome:
    """A statement sent: ``duration_s`` None when it never ran (its connection was lost);
    ``control`` when it is transaction control (BEGIN, COMMIT...)."""

    statement: CapturedStatement
    duration_s: float | None
    sqlstate: str | None
    control: bool = False


@dataclass(slots=True)
class PlayResult:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    wall_s: float = 0.0
    boundaries_added: int = 0  # BEGIN/COMMIT/ROLLBACK the replay sent for a boundary


class _Run:
    """What the sessions of one replay share: the clock, the connection slots, the tally."""

    def __init__(
        self,
        capture: Capture,
        target: str,
        options: PlayOptions,
        policy: Policy,
        progress: Progress | None,
        total: int,
    ) -> None:
        self.capture = capture
        self.policy = policy
        self.target = target
        self.options = options
        self.progress = progress
        self.total = total
        self.done = 0
        self.slots = asyncio.Semaphore(options.concurrency)
        self.result = PlayResult(sessions=len(capture.sessions))
        self.start = time.perf_counter()

    async def wait_until(self, at: float) -> None:
        speed = self.options.speed
        if speed <= 0:
            return
        delay = self.start + (at - self.capture.first_at) / speed - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    def record(self, outcome: Outcome) -> None:
        self.result.outcomes.append(outcome)
        self.done += 1
        if self.progress is not None:
            self.progress(STAGE, self.done, self.total)


async def play(
    capture: Capture, target: str, options: PlayOptions, progress: Progress | None = None
) -> PlayResult:
    """Replay ``capture`` against ``target`` (a libpq URL or key=value string); raises
    `ReplayError` when the target cannot be reached at all."""
    policy = Policy(allow_writes=options.allow_writes)
    total = sum(1 for s in capture.sessions for st in s.statements if policy.reason(st) is None)
    probe = await connect(target)  # one clear error before any session starts
    await probe.close()
    run = _Run(capture, target, options, policy, progress, total)
    if progress is not None:
        progress(STAGE, 0, total)
    await asyncio.gather(*(_play_session(run, session) for session in capture.sessions))
    run.result.wall_s = time.perf_counter() - run.start
    return run.result


async def _play_session(run: _Run, session: CapturedSession) -> None:
    steps: list[tuple[CapturedStatement | Boundary, str | None]] = []
    for step in session.steps:
        reason = None
        if isinstance(step, CapturedStatement):
            reason = run.policy.reason(step)
            if reason is not None:
                run.result.skipped[reason] += 1
        steps.append((step, reason))
    to_send = [s for s, reason in steps if isinstance(s, CapturedStatement) and reason is None]
    if not to_send:
        return
    await run.wait_until(to_send[0].at)
    async with run.slots:
        try:
            conn = await connect(run.target)
        except ReplayError:
            for statement in to_send:
                control = run.policy.controls_transaction(statement)
                run.record(Outcome(statement, None, CONNECTION_LOST, control))
            return
        try:
            await _steps(run, conn, steps)
        finally:
            await conn.close()


async def _steps(
    run: _Run,
    conn: AsyncConnection[object],
    steps: list[tuple[CapturedStatement | Boundary, str | None]],
) -> None:
    simple: AsyncCursor[object] = conn.cursor()
    extended: AsyncRawCursor[object] = AsyncRawCursor(conn)
    for step, reason in steps:
        if reason is not None:
            continue
        if conn.broken or conn.closed:  # the rest of the session cannot run
            if isinstance(step, CapturedStatement):
                control = run.policy.controls_transaction(step)
                run.record(Outcome(step, None, CONNECTION_LOST, control))
            continue
        if isinstance(step, Boundary):
            if await _boundary(conn, step):
                run.result.boundaries_added += 1
            continue
        control = run.policy.controls_transaction(step)
        # captured in a transaction the replayed session is not in (its BEGIN was not
        # captured with its text): begin one. Never the other way: statements pipelined
        # before one Sync are all captured with the status the previous Sync left.
        if (
            not control
            and step.in_transaction
            and await _align(conn, in_transaction=True, failed=False)
        ):
            run.result.boundaries_added += 1
        await run.wait_until(step.at)
        outcome = await _send(simple, extended, step)
        outcome.control = control
        run.record(outcome)


async def _send(
    simple: AsyncCursor[object], extended: AsyncRawCursor[object], statement: CapturedStatement
) -> Outcome:
    assert statement.sql is not None
    text = statement.sql.encode("utf-8", "surrogateescape")  # the bytes the client sent
    started = time.perf_counter()
    try:
        if statement.params is None:  # simple protocol, never prepared: it may hold several
            await simple.execute(text, prepare=False)
        else:
            await extended.execute(text, statement.params)
    except psycopg.Error as exc:
        return Outcome(statement, time.perf_counter() - started, _sqlstate(exc))
    return Outcome(statement, time.perf_counter() - started, None)


def _sqlstate(exc: psycopg.Error) -> str:
    if exc.sqlstate:
        return exc.sqlstate
    return CONNECTION_LOST if isinstance(exc, psycopg.OperationalError) else "XX000"


async def _boundary(conn: AsyncConnection[object], boundary: Boundary) -> bool:
    """Bring the replayed session to where the capture says its transaction is; True when
    that took a statement of the replay's own."""
    if boundary.event == "begin":
        return await _align(conn, in_transaction=True, failed=False)
    return await _align(conn, in_transaction=False, failed=boundary.event == "rollback")


async def _align(conn: AsyncConnection[object], *, in_transaction: bool, failed: bool) -> bool:
    status = conn.info.transaction_status
    if in_transaction:
        if status != TransactionStatus.IDLE:
            return False
        command = b"BEGIN"
    else:
        if status == TransactionStatus.IDLE:
            return False
        command = b"ROLLBACK" if failed or status == TransactionStatus.INERROR else b"COMMIT"
    try:
        await conn.execute(command, prepare=False)
    except psycopg.Error:
        pass  # a COMMIT refused (a deferred constraint): the session is out of it all the same
    return True
