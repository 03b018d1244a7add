"""A `dbsight proxy` in a thread of its own, in front of the test's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing.proxy import RunningProxy


@pytest.fixture(params=["asyncio", "uvloop"])
def proxy_factory(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Proxies on asyncio's event loop and on uvloop's (``dbsight proxy``'s when installed,
    whose plain sockets the relays read and write themselves)."""
    made: list[RunningProxy] = []
    if request.param == "uvloop":
        pytest.importorskip("uvloop")

    def make(upstream: str, **options: Any) -> RunningProxy:
        config = ProxyConfig(listen="127.0.0.1:0", upstream=upstream, **options)
        proxy = RunningProxy(config, loop=request.param)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def proxy(proxy_factory: Any, pg_dsn: str) -> RunningProxy:
    return proxy_factory(pg_dsn)
