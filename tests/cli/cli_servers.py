"""Canned HTTP endpoints for the CLI tests, served by `asgi_server.serve_in_thread` (uvicorn
in a thread of its own, so that a synchronous command can talk to it while the test waits)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

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
