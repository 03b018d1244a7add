"""A `dbsight proxy` in a thread of its own, for tests that talk to it with real clients."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dbsight.proxy._config import ProxyConfig
from dbsight.proxy._server import ProxyServer


class RunningProxy:
    """A started `ProxyServer` on its own event loop thread; `close()` stops it."""

    def __init__(self, config: ProxyConfig) -> None:
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

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.call(self.server.stop(grace_s=1.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
