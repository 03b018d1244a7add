"""Health checks: named probes run concurrently, each under its own timeout.

A check is a sync or async callable; it passes by returning (None, True or any value but
False) and fails by raising or returning False. Sync checks run in a thread of their own, so
a probe that blocks on a dead socket cannot stall the event loop; async checks are awaited.
Each is bounded by its ``timeout_s``: a check that hangs reports ``"timeout"`` after its own
timeout and delays no other check beyond that.

A Python thread cannot be killed, so a sync check that hangs keeps its thread until it
returns. Runs of one check never pile up: while a run is still in flight, the next
``run()`` waits (again at most ``timeout_s``) for that same run instead of starting another,
so a hanging check costs at most one thread however often the probes come. The threads are
daemons: a hung check never holds up the process exit.

``critical`` checks decide the outcome: ``/health/ready`` runs only those, ``/health`` runs
them all, and either answers 503 exactly when a critical check failed or timed out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger("dbsight")

CheckStatus = Literal["ok", "fail", "timeout"]

# An error message is reported, not logged: keep it one short line.
_MAX_ERROR = 200


class HealthCheck:
    """A named probe: ``HealthCheck("db", ping, timeout_s=2.0, critical=True)``."""

    __slots__ = ("name", "check", "timeout_s", "critical", "_lock", "_in_flight", "__weakref__")

    def __init__(
        self,
        name: str,
        check: Callable[[], Any],
        *,
        timeout_s: float = 2.0,
        critical: bool = True,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a health check needs a non-empty name")
        if not callable(check):
            raise TypeError(f"health check {name!r}: check must be callable (got {check!r})")
        if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < math.inf):
            raise ValueError(f"health check {name!r}: timeout_s must be > 0 (got {timeout_s!r})")
        self.name = name
        self.check = check
        self.timeout_s = float(timeout_s)
        self.critical = bool(critical)
        self._lock = threading.Lock()
        self._in_flight: concurrent.futures.Future[Any] | None = None

    @property
    def is_async(self) -> bool:
        check = self.check
        return inspect.iscoroutinefunction(check) or inspect.iscoroutinefunction(
            getattr(check, "__call__", None)
        )

    async def run(self) -> CheckResult:
        """Run the check once (or join its run still in flight); never raises."""
        started = time.perf_counter()
        status: CheckStatus = "ok"
        error: str | None = None
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                if self.is_async:
                    value = await self.check()
                else:
                    value = await _joined(self._thread_run())
                if inspect.isawaitable(value):  # a plain function that returned a coroutine
                    value = await value
            if value is False:
                status, error = "fail", "the check returned False"
        except TimeoutError as exc:
            if deadline.expired():
                status, error = "timeout", f"no answer within {self.timeout_s:g} s"
            else:  # the check's own timeout (a socket's, say): a failure like any other
                status, error = "fail", describe_error(exc)
        except Exception as exc:
            status, error = "fail", describe_error(exc)
        latency_ms = (time.perf_counter() - started) * 1000.0
        return CheckResult(self.name, status, latency_ms, self.critical, error)

    def _thread_run(self) -> concurrent.futures.Future[Any]:
        """The future of this check's run in a thread: the one in flight, or a new one."""
        with self._lock:
            future = self._in_flight
            if future is None or future.done():
                future = self._in_flight = concurrent.futures.Future()
                context = contextvars.copy_context()
                threading.Thread(
                    target=_call_into,
                    args=(future, context, self.check),
                    name=f"dbsight-health-{self.name}",
                    daemon=True,
                ).start()
            return future

    def __repr__(self) -> str:
        kind = "critical" if self.critical else "non-critical"
        return f"<HealthCheck {self.name!r} {kind} timeout={self.timeout_s:g}s>"


def _call_into(
    future: concurrent.futures.Future[Any], context: contextvars.Context, check: Callable[[], Any]
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        value = context.run(check)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(value)


def _joined(future: concurrent.futures.Future[Any]) -> asyncio.Future[Any]:
    """An asyncio future that follows ``future``; cancelling it leaves ``future`` alone, so
    a run that one waiter gave up on can still be joined by the next."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()

    def transfer(done: concurrent.futures.Future[Any]) -> None:
        if waiter.done():
            return
        exc = done.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())

    def arrived(done: concurrent.futures.Future[Any]) -> None:
        try:
            loop.call_soon_threadsafe(transfer, done)
        except RuntimeError:  # the loop closed meanwhile: nobody waits any more
            pass

    future.add_done_callback(arrived)
    return waiter


def describe_error(exc: BaseException) -> str:
    """``ExceptionType: first line of the message``, at most `_MAX_ERROR` characters."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    described = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return described if len(described) <= _MAX_ERROR else described[: _MAX_ERROR - 1] + "…"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: CheckStatus
    latency_ms: float
    critical: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "critical": self.critical,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The results of one round of checks; ``ok`` unless a critical check did not pass."""

    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results if result.critical)

    @property
    def status(self) -> Literal["ok", "fail"]:
        return "ok" if self.ok else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": {result.name: result.to_dict() for result in self.results},
        }


async def run_checks(checks: Iterable[HealthCheck]) -> HealthReport:
    """Run ``checks`` concurrently, each under its own timeout; the report goes to the
    `subscribe_health` listeners (the alert notifier) as well."""
    results = await asyncio.gather(*(check.run() for check in checks))
    report = HealthReport(tuple(results))
    for listener in tuple(_listeners):
        try:
            listener(report)
        except Exception:  # a listener's failure never fails the health endpoint
            logger.warning("dbsight: health listener %r failed", listener, exc_info=True)
    return report


_listeners: list[Callable[[HealthReport], None]] = []


def subscribe_health(listener: Callable[[HealthReport], None]) -> None:
    """Call ``listener`` with every report `run_checks` makes (it must not block: it runs
    on the event loop)."""
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe_health(listener: Callable[[HealthReport], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


class HealthRegistry:
    """A set of checks by name; adding a check under a name in use replaces the old one."""

    def __init__(self, checks: Iterable[HealthCheck] = ()) -> None:
        self._lock = threading.Lock()
        self._checks: dict[str, HealthCheck] = {}
        for check in checks:
            self.add(check)

    def add(self, check: HealthCheck) -> None:
        if not isinstance(check, HealthCheck):
            raise TypeError(f"expected a dbsight.HealthCheck (got {type(check).__name__})")
        with self._lock:
            self._checks[check.name] = check

    def remove(self, name: str) -> bool:
        """Forget the check named ``name``; False when there was none."""
        with self._lock:
            return self._checks.pop(name, None) is not None

    def checks(self) -> list[HealthCheck]:
        with self._lock:
            return list(self._checks.values())

    def clear(self) -> None:
        with self._lock:
            self._checks.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._checks

    def __len__(self) -> int:
        return len(self._checks)


# The process-wide user checks (like instruments, they outlive ``configure()``).
health_checks = HealthRegistry()


def add_health_check(check: HealthCheck) -> None:
    """Register a process-wide check, run by ``/health`` (and by ``/health/ready`` when it is
    critical); a check with the same name is replaced."""
    health_checks.add(check)


def remove_health_check(name: str) -> bool:
    """Unregister the process-wide check named ``name``; False when there was none."""
    return health_checks.remove(name)


def handle_checks() -> list[HealthCheck]:
    """The check of every live instrumentation handle that has one (a database's
    ``SELECT 1``, a cache's PING ...)."""
    from ..instrument._handle import live_handles

    found: list[HealthCheck] = []
    for handle in live_handles():
        provide = getattr(handle, "health_check", None)
        if provide is None:
            continue
        try:
            check = provide()
        except Exception:  # a broken provider must not take the health endpoints down
            logger.warning("dbsight: health check of %r unavailable", handle, exc_info=True)
            continue
        if check is not None:
            found.append(check)
    return found


def gather_checks(
    *sources: Iterable[HealthCheck], handles: bool = True, critical_only: bool = False
) -> list[HealthCheck]:
    """The checks of ``sources`` (plus the live handles' checks), each name once: a later
    check whose name is taken is renamed ``name#2``, ``name#3`` ... rather than dropped."""
    everything: list[Iterable[HealthCheck]] = [*sources]
    if handles:
        everything.append(handle_checks())
    chosen: list[HealthCheck] = []
    names: set[str] = set()
    seen: set[int] = set()
    for source in everything:
        for check in source:
            if id(check) in seen or (critical_only and not check.critical):
                continue
            seen.add(id(check))
            if check.name in names:
                check = _renamed(check, names)
            names.add(check.name)
            chosen.append(check)
    return chosen


# check -> its renamed copies by name: a copy is kept, so that its run in flight is joined
_copies: weakref.WeakKeyDictionary[HealthCheck, dict[str, HealthCheck]] = (
    weakref.WeakKeyDictionary()
)


def _renamed(check: HealthCheck, names: set[str]) -> HealthCheck:
    n = 2
    while f"{check.name}#{n}" in names:
        n += 1
    name = f"{check.name}#{n}"
    copies = _copies.setdefault(check, {})
    copy = copies.get(name)
    if copy is None:
        copy = copies[name] = HealthCheck(
            name, check.check, timeout_s=check.timeout_s, critical=check.critical
        )
    return copy
