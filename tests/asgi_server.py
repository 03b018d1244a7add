"""A real HTTP server on loopback for the tests (the CLI's, the workload's): uvicorn in a
thread of its own, so that synchronous code (CliRunner, a subprocess, urllib) can talk to it
while the test waits. Importable from every test directory (tests/ is on sys.path: its
conftest.py is there)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

STARTUP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def serve_in_thread(app: Any, *, lifespan: str = "on") -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port while the block runs; yields its base URL.
    ``lifespan="off"`` for a bare ASGI app that does not answer lifespan messages."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="tests-asgi-server", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "the server thread stopped before serving"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
