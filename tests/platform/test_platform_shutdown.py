"""Graceful shutdown of ``python -m dbsight_platform serve``-style serving: on SIGTERM the
server stops accepting connections at once, lets the request in flight finish with its
answer, then closes the pools and exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from platform_helpers import closed_port

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from dbsight_platform.core.config import load_settings
    from dbsight_platform.main import create_app
    from dbsight_platform.server import serve

    work = Path(sys.argv[1])
    settings = load_settings()
    app = create_app(settings)

    async def slow() -> dict:
        (work / "started").touch()
        while not (work / "release").exists():
            await asyncio.sleep(0.02)
        return {"finished": True}

    app.add_api_route("/v1/app-a/slow", slow)
    serve(settings, app=app)
    """
)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_sigterm_drains_in_flight_requests(
    tmp_path: Path, platform_pg_url: str, redis_server: Any, redis_prefix: str
) -> None:
    port = closed_port()
    env = {
        **os.environ,
        "DATABASE_URL": platform_pg_url,
        "REDIS_URL": redis_server.url,
        "PLATFORM_REDIS_KEY_PREFIX": redis_prefix,
        "PLATFORM_PORT": str(port),
        "PLATFORM_SHUTDOWN_GRACE_S": "30",
    }
    (tmp_path / "serve.py").write_text(SCRIPT, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "serve.py"), str(tmp_path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: accepts(port) or process.poll() is not None, "the server")
        assert process.poll() is None, process.communicate()
        answer: dict[str, Any] = {}

        def call() -> None:
            response = httpx.get(f"http://127.0.0.1:{port}/v1/app-a/slow", timeout=60)
            answer["status"] = response.status_code
            answer["body"] = response.json()

        caller = threading.Thread(target=call)
        caller.start()
        wait_for((tmp_path / "started").exists, "the request to start")
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: not accepts(port), "the listening socket to close")
        assert process.poll() is None  # still draining the request in flight
        (tmp_path / "release").touch()
        caller.join(timeout=30)
        assert answer == {"status": 200, "body": {"finished": True}}
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn re-raises the signal once shut down, so the exit status says SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "stopping: closing pools, flushing telemetry" in stderr
