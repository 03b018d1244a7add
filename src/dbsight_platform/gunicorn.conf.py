# ruff: noqa: N999  (gunicorn looks for this file name)
"""Gunicorn settings for the platform (seed 004 §8.1.2), read from the platform's settings:

    gunicorn -c src/dbsight_platform/gunicorn.conf.py dbsight_platform.main:app

Uvicorn workers ((CPU cores * 2) + 1 unless PLATFORM_WORKERS says), 1000 connections each,
30 s request timeout and graceful timeout (SIGTERM: stop accepting, let requests finish),
5 s keep-alive, access log on stdout and error log on stderr.
"""

from dbsight_platform.core.config import get_settings

_settings = get_settings()

bind = f"{_settings.host}:{_settings.port}"
worker_class = "uvicorn.workers.UvicornWorker"
workers = _settings.workers
worker_connections = _settings.worker_connections
timeout = _settings.request_timeout_s
graceful_timeout = int(_settings.shutdown_grace_s)
keepalive = _settings.keepalive_s
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()
# Each worker builds its own app (its own pools) after the fork.
preload_app = False
