"""Helpers shared by the instrument tests (imported by name: the tests directory is on sys.path)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
ROUTE = "/users/{id}"
REQUEST_ID = "req-42"

_ACTIVITY = (
    "SELECT query FROM pg_stat_activity "
    "WHERE pid <> pg_backend_pid() AND state = 'active' AND position(%s in query) > 0"
)


def _poll_activity(admin_dsn: str, needle: str, deadline: float) -> str | None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(_ACTIVITY, (needle,)).fetchone()
            if row is not None:
                return str(row[0])
            time.sleep(0.02)
    return None


def server_text_sync(
    admin_dsn: str, needle: str, run: Callable[[], Any], timeout: float = 5.0
) -> str | None:
    """Run ``run()`` (a statement containing ``needle`` that sleeps) in a thread and return the
    text the server shows for it in pg_stat_activity."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        return _poll_activity(admin_dsn, needle, time.monotonic() + timeout)
    finally:
        thread.join()
        if errors:
            raise errors[0]


async def server_text_async(
    admin_dsn: str, needle: str, run: Awaitable[Any], timeout: float = 5.0
) -> str | None:
    """The same for a coroutine, polled from a thread while the loop runs it."""
    task = asyncio.ensure_future(run)
    try:
        return await asyncio.to_thread(
            _poll_activity, admin_dsn, needle, time.monotonic() + timeout
        )
    finally:
        await task


class PlanWaiter:
    """A ``done`` callback for an Explainer that a test can wait on (from a thread or a loop)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self._event = threading.Event()

    def __call__(self, plan: Any, reason: Any) -> None:
        self.calls.append((plan, reason))
        self._event.set()

    def wait(self, timeout: float = 10.0) -> tuple[Any, Any]:
        assert self._event.wait(timeout), "the explainer never called done()"
        return self.calls[0]

    async def await_(self, timeout: float = 10.0) -> tuple[Any, Any]:
        deadline = time.monotonic() + timeout
        while not self.calls:
            assert time.monotonic() < deadline, "the explainer never called done()"
            await asyncio.sleep(0.01)
        return self.calls[0]


def plan_node(plan: Any) -> dict[str, Any]:
    """The top node of an EXPLAIN (FORMAT JSON) plan as the explainers deliver it."""
    assert isinstance(plan, list) and plan, plan
    node = plan[0]["Plan"]
    assert "Node Type" in node
    return node  # type: ignore[no-any-return]
