"""Real HTTP servers on loopback for the CLI tests: uvicorn in a thread of its own, so that a
synchronous command (CliRunner, a subprocess) can talk to it while the test waits."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

STARTUP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port while the block runs; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="tests-cli-server", daemon=True
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


Answer = tuple[int, str, bytes]


class CannedEndpoint:
    """A stand-in for a dbsight HTTP surface: each GET gets ``answer(n, headers)`` (n counts
    from 0), and the headers of every request are kept."""

    def __init__(self, answer: Callable[[int, dict[str, str]], Answer]) -> None:
        self.answer = answer
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def wait_for_requests(self, count: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"only {len(self.requests)} requests arrived"
            time.sleep(0.02)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            number = len(self.requests)
            self.requests.append(headers)
        status, content_type, body = self.answer(number, headers)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def json_answer(document: Any) -> Answer:
    return 200, "application/json", json.dumps(document).encode()
