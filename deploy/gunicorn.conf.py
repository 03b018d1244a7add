"""gunicorn's settings for a dbsight-instrumented ASGI service (the image's default command:
``gunicorn --config /etc/dbsight/gunicorn.conf.py``).

Every value can be changed from the environment, so the same file serves Compose, Swarm and
Kubernetes:

    APP_MODULE               what to serve, gunicorn's "module:app" or "module:factory()"
                             (default: the demo shop, "dbsight.demo.app:app_from_env()")
    PORT                     port to bind (8000)
    HOST                     address to bind (0.0.0.0: every interface of the container)
    WEB_CONCURRENCY          worker processes (default: 2 x the CPUs the container may use + 1)
    GUNICORN_TIMEOUT         seconds a silent worker lives before it is restarted (60)
    GUNICORN_GRACEFUL_TIMEOUT  seconds workers get to finish their requests on SIGTERM (30)
    GUNICORN_KEEPALIVE       seconds an idle keep-alive connection is held (5)
    DBSIGHT_MULTIPROCESS_DIR where the workers write their metrics for /metrics to sum
                             (docs/multiprocess.md); emptied here when gunicorn starts

Several workers each have their own dbsight registry: without the shared directory
/metrics would report whichever worker answered. dbsight reads the directory from its own
setting; this file only makes sure it exists and is empty at start, as it must be.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

DEFAULT_APP_MODULE = "dbsight.demo.app:app_from_env()"
MULTIPROCESS_VARIABLES = ("DBSIGHT_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")


def _cgroup_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    """The CPU limit of the container (cgroup v2 ``cpu.max``: "quota period"), or None when
    there is none: os.cpu_count() sees the host's CPUs, not the container's share."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, bounded by the cgroup limit (at least 1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = _cgroup_cpus()
    if limit is not None:
        cpus = min(cpus or 1, math.ceil(limit))
    return max(1, cpus or 1)


def _int_env(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name}={text!r} is not a whole number") from None
    if value < 1:
        raise SystemExit(f"gunicorn.conf.py: {name}={value} must be at least 1")
    return value


def multiprocess_dir() -> Path | None:
    """The directory dbsight's workers share (dbsight's own setting, else prometheus_client's
    variable), or None for a single-process service."""
    for name in MULTIPROCESS_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return Path(value)
    return None


def empty_directory(directory: Path) -> None:
    """Make ``directory`` exist and hold nothing (an earlier run's worker files would be
    summed otherwise): its entries are removed, the directory itself kept (it may be a mount)."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


# -- what gunicorn reads ----------------------------------------------------------------------
wsgi_app = os.environ.get("APP_MODULE", "").strip() or DEFAULT_APP_MODULE
bind = [f"{os.environ.get('HOST', '').strip() or '0.0.0.0'}:{_int_env('PORT', 8000)}"]
worker_class = "uvicorn_worker.UvicornWorker"  # uvicorn.workers is deprecated
workers = _int_env("WEB_CONCURRENCY", 2 * available_cpus() + 1)
timeout = _int_env("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int_env("GUNICORN_KEEPALIVE", 5)
# The workers' heartbeat files on tmpfs: the root filesystem may be read-only (Kubernetes
# readOnlyRootFilesystem), and a disk-backed /tmp can stall the heartbeat.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Behind the Ingress or a load balancer: trust X-Forwarded-* from them (set to your proxies).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = None  # dbsight's access log (the dbsight.access logger) already records requests
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "dbsight-app"
# gunicorn >= 27 opens a control socket under $HOME by default: a container needs none, and
# its home may be read-only (older versions ignore the setting)
control_socket_disable = True


def on_starting(server: Any) -> None:
    """In the master, before any worker: the shared metrics directory, present and empty."""
    directory = multiprocess_dir()
    if directory is not None:
        empty_directory(directory)
        server.log.info("dbsight multiprocess directory %s emptied", directory)
