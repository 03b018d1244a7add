"""Fixtures of the workload tests: a configured dbsight whose statistics start empty."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import dbsight
from dbsight.core import Settings


@pytest.fixture
def configure() -> Iterator[Callable[..., Any]]:
    """``configure(**settings) -> Runtime``: dbsight configured afresh (no tracing); every
    handle uninstrumented and dbsight unconfigured afterwards."""
    from dbsight import _runtime
    from dbsight.instrument import uninstrument_all

    _runtime.reset()

    def make(**overrides: Any) -> Any:
        overrides.setdefault("tracing_enabled", False)
        return dbsight.configure(Settings(**overrides))

    yield make
    uninstrument_all()
    _runtime.reset()


@pytest.fixture
def serve() -> Callable[[Any], contextlib.AbstractContextManager[str]]:
    """``with serve(app) as url:`` an ASGI app served for real (see `serve_in_thread`)."""
    return serve_in_thread


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port while the block runs; yields its
    base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
