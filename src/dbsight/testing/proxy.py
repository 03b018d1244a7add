"""A `dbsight proxy` in a thread of its own, for tests that talk to it with real clients."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbsight.proxy._config import ProxyConfig
from dbsight.proxy._server import ProxyServer

# True on a replica, False on the primary, and itself routable to a replica:
# current_setting() is STABLE (pg_is_in_recovery() is VOLATILE, so it would go to the
# primary); in_hot_standby is on in a standby's sessions only.
REPLICA_PROBE = "SELECT current_setting('in_hot_standby') = 'on'"


def on_replica(conn: Any, sql: str = REPLICA_PROBE) -> bool:
    """Whether ``sql`` (by default `REPLICA_PROBE`, or a statement whose first column is
    that probe) ran on a replica, through ``conn`` (a psycopg connection)."""
    row = conn.execute(sql).fetchone()
    assert row is not None
    return bool(row[0])


class RunningProxy:
    """A started `ProxyServer` on its own event loop thread; `close()` stops it. ``loop``:
    asyncio's own event loop, or ``"uvloop"`` (what ``dbsight proxy`` runs on when it is
    installed: its transports are the ones the relays read and write themselves)."""

    def __init__(self, config: ProxyConfig, loop: str = "asyncio") -> None:
        if loop == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.server = ProxyServer(config)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)

    @property
    def port(self) -> int:
        return self.server.port

    def dsn(self, upstream_dsn: str) -> str:
        """``upstream_dsn`` pointed at the proxy instead."""
        parts = urlsplit(upstream_dsn)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        netloc_new = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return urlunsplit(parts._replace(netloc=netloc_new))

    def servers(self) -> list[dict[str, Any]]:
        """Each server's role, health, lag and breaker, as ``/stats/servers`` shows them."""
        async def read() -> list[dict[str, Any]]:
            return list(self.server.server_stats())

        return list(self.call(read()))

    def wait_replicas_in_rotation(self, count: int, timeout_s: float = 20) -> None:
        """Until at least ``count`` replicas take reads (the health checks have run)."""
        deadline = time.monotonic() + timeout_s
        while True:
            servers = self.servers()
            if sum(1 for s in servers if s["role"] == "replica" and s.get("in_rotation")) >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} replicas in rotation: {servers}")
            time.sleep(0.1)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.call(self.server.stop(grace_s=1.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
