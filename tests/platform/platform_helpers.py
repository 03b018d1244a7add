"""Helpers of the platform's tests (imported by name: pytest puts this directory on the path)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

TESTER = ("tester", ("admin",))


def bearer_headers(
    app: Any, subject: str = "tester", roles: tuple[str, ...] = ("admin",)
) -> dict[str, str]:
    """``Authorization`` with a token the app's authenticator issued for ``subject``."""
    token = app.state.authenticator.issue(subject, roles).token
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def serve_in_process(
    app: Any, principal: tuple[str, tuple[str, ...]] | None = TESTER
) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan around an httpx client speaking to it (no sockets); the client
    sends a token of ``principal`` (an admin by default; None: no token)."""
    headers = bearer_headers(app, *principal) if principal is not None else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://platform", headers=headers
        ) as client:
            yield client


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """The app under uvicorn on a free loopback port, in a thread with its own event loop
    (lifespan included); `stop()` shuts it down as SIGTERM would."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="platform-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the platform did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
