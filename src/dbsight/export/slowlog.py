"""The slow-query log: one JSON line per statement at or over the threshold, with an
EXPLAIN plan for slow PostgreSQL SELECTs.

Lines go to ``settings.slow_query_log`` (size-rotated) or, without a file, to the
``dbsight.slow`` logger at WARNING (on stderr as they are while the application configured
no logging that shows them: see `FallbackJsonLog`). The plan comes from the instrument's `Explainer`
(a connection of its own, in the background): the line for that statement is written when
the plan arrives, or without one when it does not arrive within the EXPLAIN timeout plus
`PLAN_GRACE_S`. At most one EXPLAIN per fingerprint per ``explain_interval_s`` and at
most `MAX_PENDING_PLANS` at a time, so a burst of slow queries cannot pile up EXPLAINs.
A plan quotes the statement's constants and parameters in its conditions, so those are
masked unless ``include_query_bodies``.

With ``explain_analyze`` on, a sampled share of the explained statements that are read-only
SELECTs get EXPLAIN (ANALYZE, BUFFERS) instead (falling back to a plain EXPLAIN when that
fails, e.g. on the time-out). Every plan goes through the plan analyzer
(`dbsight.advise.analyze_plan`): its findings are on the line (``findings``), in the plan
summary the statistics table keeps, and emitted as advice events (``plan:<kind>:...``).
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..core import QueryObserver
from ._fields import event_fields
from .logging import FallbackJsonLog

if TYPE_CHECKING:
    from ..core import QueryContext, QueryEvent, Settings
    from ..stats import StatsTable

SLOW_LOGGER = "dbsight.slow"
MAX_PENDING_PLANS = 8
# Slow statements kept in memory for `/metrics/summary`.
RECENT_SLOW = 50
# Fingerprints whose newest slow run with a plan is kept besides the recent ones: a
# statement's page shows a plan even after planless runs (EXPLAIN timed out, skipped for
# the interval or for too many pending) pushed it out of the recent ones.
PLANNED_KEPT = 50
PLAN_GRACE_S = 1.0
# How long ``flush()`` (at exit, on uninstrument) waits for the plans in flight at most.
FLUSH_TIMEOUT_S = 1.0
EXITING = "the process exited before the plan arrived"
# Fingerprints remembered for the EXPLAIN interval before old ones are pruned.
_MAX_EXPLAIN_MEMORY = 10_000
# A statement timeout (query_canceled) is the typical slow query worth a plan; statements
# that failed otherwise would most likely fail EXPLAIN too.
_EXPLAINABLE_ERRORS = frozenset({"57014"})

_monotonic = time.monotonic


def _timestamp(wall: float) -> str:
    seconds = int(wall)
    millis = int((wall - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))


# -- plans ----------------------------------------------------------------------------
def plan_root(plan: Any) -> dict[str, Any] | None:
    """The top plan node of ``EXPLAIN (FORMAT JSON)`` output, as text or as parsed JSON."""
    if isinstance(plan, (bytes, bytearray)):
        plan = plan.decode()
    if isinstance(plan, str):
        plan = json.loads(plan)
    if isinstance(plan, list) and plan:
        plan = plan[0]
    if isinstance(plan, dict):
        node = plan.get("Plan", plan)
        if isinstance(node, dict) and "Node Type" in node:
            return node
    return None


# PostgreSQL prints the constants in a plan's conditions as single-quoted strings
# ('x'::text, with '' for a quote) or bare numbers; $1 placeholders are kept.
_PLAN_CONSTANT = re.compile(
    r"'(?:[^']|'')*'|(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])"
)


def _mask_constants(text: str) -> str:
    return _PLAN_CONSTANT.sub(lambda m: "'?'" if m.group().startswith("'") else "?", text)


def redact_plan(plan: Any) -> Any:
    """A copy of a JSON plan with every constant in its text fields masked: bound parameters
    and literals show up in conditions (``Filter``, ``Index Cond`` ...)."""
    if isinstance(plan, dict):
        return {key: redact_plan(value) for key, value in plan.items()}
    if isinstance(plan, list):
        return [redact_plan(value) for value in plan]
    if isinstance(plan, str):
        return _mask_constants(plan)
    return plan


def plan_findings(plan: Any, table_stats: Any = None) -> list[dict[str, Any]]:
    """The plan analyzer's findings on ``plan``, as dictionaries, most severe first (none for
    what is not a plan). Their messages hold relation and column names and numbers only."""
    from ..advise._plan import analyze_plan

    try:
        findings = analyze_plan(plan, table_stats=table_stats)
    except ValueError:
        return []
    except Exception:  # a plan shape the analyzer trips on costs its findings, not the line
        logging.getLogger("dbsight").debug("dbsight: plan analysis failed", exc_info=True)
        return []
    return [finding.to_dict() for finding in findings]


def summarize_plan(plan: Any, *, table_stats: Any = None) -> dict[str, Any]:
    """Top node type, total cost, estimated rows, the relations read by sequential scans,
    whether the plan has ANALYZE figures, and the plan analyzer's ``findings``
    (``table_stats``: `dbsight.advise.TableStats` by relation, when they were looked up)."""
    root = plan_root(plan)
    if root is None:
        return {
            "node_type": None, "total_cost": None, "estimated_rows": None, "seq_scans": [],
            "analyzed": False, "findings": [],
        }  # fmt: skip
    seq_scans: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name"):
            relation = node["Relation Name"]
            if relation not in seq_scans:
                seq_scans.append(relation)
        stack.extend(reversed(node.get("Plans") or ()))
    return {
        "node_type": root.get("Node Type"),
        "total_cost": root.get("Total Cost"),
        "estimated_rows": root.get("Plan Rows"),
        "seq_scans": seq_scans,
        "analyzed": "Actual Loops" in root,
        "findings": plan_findings(plan, table_stats),
    }


def emit_findings(
    findings: list[dict[str, Any]], fingerprint: str, normalized: str, route: Any = None
) -> None:
    """Each finding of one slow-log plan as an advice event (``plan:<kind>:<relation>:
    <fingerprint>``), for an alert notifier; `dbsight.advise.emit` logs each key once per
    interval. The statement is the normalized one: no literal leaves the process."""
    from ..advise._events import AdviceEvent, emit

    for finding in findings:
        relation = finding.get("relation") or "-"
        emit(
            AdviceEvent(
                kind="plan",
                severity=finding["severity"],
                key=f"plan:{finding['kind']}:{relation}:{fingerprint}",
                summary=finding["message"],
                details={
                    "fingerprint": fingerprint,
                    "normalized": normalized,
                    "route": route,
                    "finding": finding,
                },
            )
        )


# -- destinations ----------------------------------------------------------------------
class RotatingLineWriter:
    """Appends lines to a file, rotating it by size (``path.1`` ... ``path.N``); thread-safe.

    Like `logging.handlers.RotatingFileHandler`, except that ``backups=0`` still bounds the
    file (it starts over) instead of letting it grow without limit.
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._closed = False

    def write(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        with self._lock:
            if self._closed:
                return
            file = self._file
            if file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                file = self._file = open(self.path, "ab")  # noqa: SIM115 (kept open)
            # the size on disk, not a private count: other processes may append too
            size = os.fstat(file.fileno()).st_size
            if size and size + len(data) > self.max_bytes:
                file = self._rotate(file)
            file.write(data)
            file.flush()

    def _rotate(self, file: BinaryIO) -> BinaryIO:
        file.close()
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                source = self.path.with_name(f"{self.path.name}.{index}")
                if source.exists():
                    os.replace(source, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            self._file = open(self.path, "ab")  # noqa: SIM115
        else:
            self._file = open(self.path, "wb")  # noqa: SIM115
        return self._file

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None


class _PendingPlans:
    """Slow-query lines waiting for their plan. One daemon thread, alive only while
    something is pending, writes the lines whose plan is overdue. ``flush()`` waits (bounded)
    for the plans in flight and writes what is left: a daemon thread's lines would otherwise
    be lost when the process exits."""

    def __init__(self, write: Callable[[dict[str, Any]], None], max_pending: int) -> None:
        self._write = write
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: dict[int, tuple[float, dict[str, Any]]] = {}
        self._writing = 0  # lines taken out of _pending and not yet written
        self._next_token = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, fields: dict[str, Any], wait_s: float) -> int | None:
        """Hold ``fields`` until `resolve` or ``wait_s``; None when too many are pending."""
        with self._cond:
            if self._closed or len(self._pending) >= self._max_pending:
                return None
            self._next_token += 1
            token = self._next_token
            self._pending[token] = (_monotonic() + wait_s, fields)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._expire_overdue, name="dbsight-slowlog-plans", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
            return token

    def resolve(self, token: int, fill: Callable[[dict[str, Any]], None]) -> None:
        """Complete the line held under ``token`` with ``fill`` and write it; nothing when it
        was written already (overdue, or flushed)."""
        with self._cond:
            item = self._pending.pop(token, None)
            if item is None:
                return
            self._writing += 1
        try:
            fill(item[1])
        finally:
            self._written([item[1]])

    def _written(self, lines: list[dict[str, Any]]) -> None:
        """Write lines taken out of ``_pending`` (``_writing`` counted them)."""
        try:
            for fields in lines:
                self._write(fields)
        finally:
            with self._cond:
                self._writing -= len(lines)
                self._cond.notify_all()

    def _expire_overdue(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._pending:
                        self._thread = None
                        return
                    now = _monotonic()
                    overdue = [t for t, (deadline, _) in self._pending.items() if deadline <= now]
                    if overdue:
                        expired = [self._pending.pop(t)[1] for t in overdue]
                        self._writing += len(expired)
                        break
                    self._cond.wait(min(d for d, _ in self._pending.values()) - now)
            for fields in expired:
                fields["plan_error"] = "EXPLAIN did not finish in time"
            self._written(expired)

    def flush(self, timeout_s: float, reason: str) -> None:
        """Wait up to ``timeout_s`` for the plans in flight (and for lines being written),
        then write every line still pending without its plan, ``reason`` saying why."""
        deadline = _monotonic() + timeout_s
        with self._cond:
            while self._pending or self._writing:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            items = [fields for _, fields in self._pending.values()]
            self._pending.clear()
            self._writing += len(items)
            self._cond.notify_all()
        for fields in items:
            fields["plan_error"] = reason
        self._written(items)

    def close(self) -> None:
        """Write every pending line without its plan; late plans are then ignored."""
        with self._cond:
            self._closed = True
        self.flush(0.0, "dbsight was reconfigured before the plan arrived")


# -- the sink ----------------------------------------------------------------------------
class SlowQuerySink(QueryObserver):
    """Writes statements at or over ``slow_query_threshold_ms``; costs one comparison for
    every other statement."""

    name = "dbsight.slowlog"

    def __init__(
        self,
        settings: Settings,
        stats: StatsTable | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self._threshold_s = settings.slow_query_threshold_s
        # The recorder calls the hooks only from this duration on (see Recorder._rebuild).
        self.min_duration_s = self._threshold_s
        self._threshold_ms = settings.slow_query_threshold_ms
        self._include_bodies = settings.include_query_bodies
        self._explain = settings.explain_slow_queries
        self._explain_timeout_s = settings.explain_timeout_ms / 1000.0
        self._explain_interval_s = settings.explain_interval_s
        self._analyze = settings.explain_analyze
        self._analyze_rate = settings.explain_analyze_sample_rate
        self._stats = stats
        self.logger = logger if logger is not None else logging.getLogger(SLOW_LOGGER)
        # The message is the JSON line already: written as it is when nothing handles it.
        self._log = FallbackJsonLog(self.logger, logging.WARNING, logging.Formatter("%(message)s"))
        self.writer = (
            RotatingLineWriter(
                settings.slow_query_log,
                settings.slow_query_log_max_bytes,
                settings.slow_query_log_backups,
            )
            if settings.slow_query_log is not None
            else None
        )
        self._last_explain: dict[str, float] = {}
        self._explain_lock = threading.Lock()
        self._plans = _PendingPlans(self._write, MAX_PENDING_PLANS)
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_SLOW)
        self._planned: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._planned_lock = threading.Lock()  # plans arrive on the explainer's thread

    # -- the hot path ----------------------------------------------------------------
    def after_query(self, ctx: QueryContext, event: QueryEvent) -> None:
        if event.duration_s >= self._threshold_s:
            self._slow(ctx, event)

    def on_error(self, ctx: QueryContext, event: QueryEvent) -> None:
        if event.duration_s >= self._threshold_s:
            self._slow(ctx, event)

    # -- slow statements ---------------------------------------------------------------
    def _slow(self, ctx: QueryContext, event: QueryEvent) -> None:
        fields = self._fields(event)
        if self._wants_plan(ctx, event):
            analyze = self._wants_analyze(event)
            # an ANALYZE that fails (its time-out) is followed by a plain EXPLAIN: room for both
            wait_s = self._explain_timeout_s * (2 if analyze else 1) + PLAN_GRACE_S
            token = self._plans.add(fields, wait_s)
            if token is None:
                fields["plan_error"] = "EXPLAIN skipped: too many plans pending"
                with self._explain_lock:  # let the next slow run of it try again
                    self._last_explain.pop(event.fingerprint, None)
            else:
                done = functools.partial(
                    self._plan_arrived, token, event.fingerprint, event.normalized
                )
                explainer, sql, params = ctx.explainer, ctx.sql, ctx.explain_params
                if analyze:
                    done = functools.partial(self._analyzed, explainer, sql, params, done)
                try:
                    if analyze:
                        explainer.explain(sql, params, self._explain_timeout_s, done, analyze=True)
                    else:
                        explainer.explain(sql, params, self._explain_timeout_s, done)
                except Exception as exc:  # a broken explainer costs the plan, not the line
                    done(None, f"EXPLAIN failed to start: {type(exc).__name__}")
                return
        self._write(fields)

    def _wants_analyze(self, event: QueryEvent) -> bool:
        """EXPLAIN ANALYZE runs the statement: only a read-only SELECT, and only the sampled
        share of them."""
        if not (self._analyze and event.operation == "select" and event.read_only):
            return False
        return self._analyze_rate >= 1.0 or random.random() < self._analyze_rate

    def _analyzed(
        self,
        explainer: Any,
        sql: str,
        params: object | None,
        done: Callable[..., None],
        plan: Any,
        error: str | None,
    ) -> None:
        """The EXPLAIN ANALYZE arrived, or failed: then a plain EXPLAIN still gives a plan."""
        if error is None and plan is not None:
            done(plan, None)
            return
        done = functools.partial(done, analyze_error=error or "no plan")
        try:
            explainer.explain(sql, params, self._explain_timeout_s, done)
        except Exception as exc:
            done(None, f"EXPLAIN ANALYZE failed ({error}), EXPLAIN too: {type(exc).__name__}")

    def _wants_plan(self, ctx: QueryContext, event: QueryEvent) -> bool:
        if not (
            self._explain
            and ctx.explainer is not None
            and event.system == "postgresql"
            and event.operation == "select"
            and (event.error is None or event.error.sqlstate in _EXPLAINABLE_ERRORS)
        ):
            return False
        now = _monotonic()
        with self._explain_lock:
            last = self._last_explain.get(event.fingerprint)
            if last is not None and now - last < self._explain_interval_s:
                return False
            if len(self._last_explain) >= _MAX_EXPLAIN_MEMORY:
                horizon = now - self._explain_interval_s
                self._last_explain = {
                    fp: at for fp, at in self._last_explain.items() if at > horizon
                }
                if len(self._last_explain) >= _MAX_EXPLAIN_MEMORY:
                    self._last_explain.clear()
            self._last_explain[event.fingerprint] = now
        return True

    def _plan_arrived(
        self,
        token: int,
        fingerprint: str,
        normalized: str,
        plan: Any,
        error: str | None,
        analyze_error: str | None = None,
    ) -> None:
        # may run in the explainer's thread or event loop, once per token
        fill = functools.partial(self._add_plan, fingerprint, normalized, plan, error)
        if analyze_error is not None:
            fill = functools.partial(self._add_analyze_error, analyze_error, fill)
        self._plans.resolve(token, fill)

    @staticmethod
    def _add_analyze_error(
        error: str, fill: Callable[[dict[str, Any]], None], fields: dict[str, Any]
    ) -> None:
        fields["plan_analyze_error"] = error  # why this plan has no ANALYZE figures
        fill(fields)

    def _add_plan(
        self,
        fingerprint: str,
        normalized: str,
        plan: Any,
        error: str | None,
        fields: dict[str, Any],
    ) -> None:
        if error is None and plan is not None:
            try:
                table_stats = getattr(plan, "table_stats", None)
                if isinstance(plan, (str, bytes, bytearray)):
                    plan = json.loads(plan)
                summary = summarize_plan(plan, table_stats=table_stats)
            except (ValueError, TypeError) as exc:
                fields["plan_error"] = f"unreadable plan: {type(exc).__name__}"
            else:
                fields["plan"] = plan if self._include_bodies else redact_plan(plan)
                fields["plan_summary"] = summary
                fields["findings"] = summary["findings"]
                if self._stats is not None:
                    self._stats.set_plan(fingerprint, summary)
                emit_findings(summary["findings"], fingerprint, normalized, fields.get("route"))
        else:
            fields["plan_error"] = error or "no plan"

    def _fields(self, event: QueryEvent) -> dict[str, Any]:
        return {
            "ts": _timestamp(event.started_at + event.duration_s),
            "threshold_ms": self._threshold_ms,
            **event_fields(event, self._include_bodies),
        }

    def _write(self, fields: dict[str, Any]) -> None:
        self._recent.append(fields)
        if fields.get("plan") is not None:
            self._keep_planned(fields)
        if self.writer is not None:
            self.writer.write(_dumps(fields))
        elif self._log.enabled(logging.WARNING):
            self._log.log(logging.WARNING, _dumps(fields))

    # -- lifecycle ---------------------------------------------------------------------
    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S, reason: str = EXITING) -> None:
        """Write the lines still waiting for a plan: the plans in flight get up to
        ``timeout_s`` to arrive (never longer: the database may be gone), the others are
        written without one (``plan_error``: ``reason``). Run at exit and on uninstrument."""
        self._plans.flush(timeout_s, reason)

    def close(self) -> None:
        """Write lines still waiting for a plan, then close the file."""
        self._plans.close()
        if self.writer is not None:
            self.writer.close()

    def recent(self) -> list[dict[str, Any]]:
        """The last `RECENT_SLOW` slow-log records written, newest first (as logged: the
        normalized text, and parameters only with ``include_query_bodies``)."""
        return list(reversed(self._recent))

    def _keep_planned(self, fields: dict[str, Any]) -> None:
        fingerprint = str(fields.get("fingerprint"))
        with self._planned_lock:
            self._planned[fingerprint] = fields
            self._planned.move_to_end(fingerprint)
            while len(self._planned) > PLANNED_KEPT:
                self._planned.popitem(last=False)

    def planned(self) -> list[dict[str, Any]]:
        """The newest slow run with a plan of each of the last `PLANNED_KEPT` fingerprints
        that had one, newest first."""
        with self._planned_lock:
            return list(reversed(self._planned.values()))

    @property
    def pending_plans(self) -> int:
        return len(self._plans)
