"""Background EXPLAIN for the slow-query log, on a connection that is never the application's.

Every integration supplies only "how to reach the database" (a function that explains one
statement); this module runs it off the application's path and enforces the `Explainer`
contract: ``explain()`` returns at once, ``done`` is called exactly once, nothing raises into
the application, and nothing the explain runs is recorded as an application query.

* sync clients: one shared daemon worker thread with a bounded queue (a full queue drops the
  request with a reason rather than blocking the application or growing without bound);
* asyncio clients: a task on the running event loop.

Each explain runs in its own transaction with ``SET LOCAL statement_timeout`` and
``lock_timeout`` (so it can neither run long nor queue behind the application's locks) and is
rolled back. With ``analyze=True`` (the slow log asks for it only for read-only SELECTs, when
``explain_analyze`` is on) the statement really runs, as EXPLAIN (ANALYZE, BUFFERS), inside
that transaction. When the plan's analysis would use the statistics of the tables it reads
(`needs_table_stats`), one catalog query on the same connection fetches them, and the plan
comes back as an `ExplainedPlan` carrying them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from ..core import PlanCallback
from ..core._context import _recording

logger = logging.getLogger("dbsight")

EXPLAIN_PREFIX = "EXPLAIN (FORMAT JSON) "
EXPLAIN_ANALYZE_PREFIX = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
_QUEUE_SIZE = 32

# The value of the core's "an outer layer is recording" flag while an explain runs: every
# instrument skips statements run under it, so an EXPLAIN is never itself recorded (and can
# never trigger another EXPLAIN).
EXPLAINING: Any = "explaining"

# run(sql, params, timeout_s, analyze) -> the plan (`explained` when it looked statistics up)
SyncRun = Callable[[str, "object | None", float, bool], Any]
AsyncRun = Callable[[str, "object | None", float, bool], Awaitable[Any]]


def explain_prefix(analyze: bool) -> str:
    return EXPLAIN_ANALYZE_PREFIX if analyze else EXPLAIN_PREFIX


class ExplainedPlan(list[Any]):
    """EXPLAIN (FORMAT JSON) output (a list, as PostgreSQL returns it) with the statistics of
    the tables it reads, when they were looked up: `TableStats` by relation name."""

    table_stats: dict[str, Any]

    def __init__(self, plan: list[Any], table_stats: dict[str, Any]) -> None:
        super().__init__(plan)
        self.table_stats = table_stats


def table_stats_lookup(plan: Any) -> str | None:
    """The statement fetching the table statistics the analysis of ``plan`` (the driver's
    value of the EXPLAIN) would use, or None when it would use none."""
    from ..advise._plan import needs_table_stats, table_stats_query

    try:
        return table_stats_query(needs_table_stats(as_plan(plan)))
    except (ValueError, TypeError):
        return None


def explained(plan: Any, table_stats: Any) -> Any:
    """``plan`` with the result of `table_stats_lookup`'s statement attached."""
    from ..advise._plan import parse_table_stats

    plan = as_plan(plan)
    if not isinstance(plan, list):
        return plan
    try:
        stats = parse_table_stats(table_stats)
    except (ValueError, TypeError):
        stats = {}
    return ExplainedPlan(plan, stats)


def timeout_statements(timeout_s: float) -> tuple[str, str]:
    ms = max(1, int(timeout_s * 1000))
    return (f"SET LOCAL statement_timeout = {ms}", f"SET LOCAL lock_timeout = {ms}")


def as_plan(value: Any) -> Any:
    """EXPLAIN (FORMAT JSON) output as Python objects, whatever the driver returned."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode()
    if isinstance(value, str):
        return json.loads(value)
    return value


class _Once:
    """Calls ``done`` at most once and never lets it raise."""

    __slots__ = ("_done", "_called")

    def __init__(self, done: PlanCallback) -> None:
        self._done = done
        self._called = False

    def __call__(self, plan: Any, reason: str | None) -> None:
        if self._called:
            return
        self._called = True
        try:
            self._done(plan, reason)
        except Exception:
            logger.warning("dbsight: an EXPLAIN callback failed", exc_info=True)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Worker:
    """The one daemon thread that runs every sync explain, started on first use."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> bool:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="dbsight-explain", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        _recording.set(EXPLAINING)
        while True:
            job = self._queue.get()
            try:
                job()
            except BaseException:  # a job reports through its callback; never kill the worker
                logger.debug("dbsight: explain job failed", exc_info=True)


_worker = _Worker()


class ThreadExplainer:
    """`Explainer` for a sync client: ``run(sql, params, timeout_s, analyze) -> plan`` on the
    worker."""

    __slots__ = ("_run",)

    def __init__(self, run: SyncRun) -> None:
        self._run = run

    def explain(
        self,
        sql: str,
        params: object | None,
        timeout_s: float,
        done: PlanCallback,
        *,
        analyze: bool = False,
    ) -> None:
        once = _Once(done)
        run = self._run

        def job() -> None:
            try:
                plan = as_plan(run(sql, params, timeout_s, analyze))
            except BaseException as exc:
                once(None, _reason(exc))
            else:
                once(plan, None)

        try:
            if not _worker.submit(job):
                once(None, "explain queue full")
        except Exception as exc:
            once(None, _reason(exc))


_tasks: set[asyncio.Task[Any]] = set()


class TaskExplainer:
    """`Explainer` for an asyncio client: ``await run(sql, params, timeout_s, analyze)`` in a
    task."""

    __slots__ = ("_run",)

    def __init__(self, run: AsyncRun) -> None:
        self._run = run

    def explain(
        self,
        sql: str,
        params: object | None,
        timeout_s: float,
        done: PlanCallback,
        *,
        analyze: bool = False,
    ) -> None:
        once = _Once(done)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            once(None, "no running event loop")
            return
        try:
            task = loop.create_task(self._job(sql, params, timeout_s, analyze, once))
        except Exception as exc:
            once(None, _reason(exc))
            return
        _tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(_tasks.discard)

    async def _job(
        self, sql: str, params: object | None, timeout_s: float, analyze: bool, once: _Once
    ) -> None:
        _recording.set(EXPLAINING)  # the task runs in a copy of the caller's context
        try:
            # Connecting counts against the time-out too; the server-side limits bound the rest.
            plan = await asyncio.wait_for(
                self._run(sql, params, timeout_s, analyze), timeout_s + 1.0
            )
        except asyncio.CancelledError:
            once(None, "cancelled")
            raise
        except BaseException as exc:
            once(None, _reason(exc) if not isinstance(exc, TimeoutError) else "timed out")
        else:
            try:
                once(as_plan(plan), None)
            except Exception as exc:
                once(None, _reason(exc))


async def pending_explains() -> None:
    """Wait for the explain tasks of the running loop (tests and graceful shutdown)."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _tasks if t.get_loop() is loop]
    if mine:
        await asyncio.gather(*mine, return_exceptions=True)
