"""Running the platform: one uvicorn process (``python -m dbsight_platform serve``), or
gunicorn with uvicorn workers and ``gunicorn.conf.py`` (seed 004 §8.1.2).

Graceful shutdown on SIGTERM (or Ctrl-C): the server stops accepting connections, lets the
requests in flight finish for up to ``shutdown_grace_s``, then runs the lifespan's shutdown,
which closes the HTTP client, the Redis and database pools and flushes the telemetry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core.config import Settings

GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn.conf.py"


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None, app: Any = None
) -> None:
    """Serve ``app`` (default: `create_app(settings)`) until SIGTERM or SIGINT."""
    import uvicorn

    from .main import create_app

    app = app if app is not None else create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        timeout_keep_alive=settings.keepalive_s,
        log_config=None,  # the platform configured logging (dbsight's access log is ours)
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="on",
    )
