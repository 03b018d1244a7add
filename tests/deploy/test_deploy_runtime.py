"""What the containers run, run here for real (no Docker): gunicorn with deploy's
gunicorn.conf.py serving the image's default APP_MODULE (the demo shop) on PostgreSQL, and
`dbsight proxy` with deploy's proxy.toml in front of a primary and its streaming replica —
only the addresses differ, given on the command line as the containers' are."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "deploy-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(probe: Callable[[], Any], what: str, proc: subprocess.Popen,
                timeout: float = 60.0) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) while waiting for {what}")
        try:
            result = probe()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("did not stop within 40 s of SIGTERM")


def _quiet_env(**extra: str) -> dict[str, str]:
    # the test run's own DBSIGHT_* and gunicorn variables stay out: the deploy files decide
    left_out = ("APP_MODULE", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "PORT", "HOST")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DBSIGHT_") and key not in left_out}  # fmt: skip
    env.update({"DBSIGHT_EXPLAIN_SLOW_QUERIES": "false", "DBSIGHT_ADMIN_TOKEN": TOKEN,
                "HOME": extra.pop("HOME", env.get("HOME", "/tmp"))})  # fmt: skip
    env.update(extra)
    return env


@pytest.fixture
def served(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "worker-1-1.metrics.json").write_text("{}")  # a previous run's file
    port = _free_port()
    env = _quiet_env(DBSIGHT_DEMO_DSN=pg_dsn, DBSIGHT_MULTIPROCESS_DIR=str(shared),
                     HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="2",
                     GUNICORN_GRACEFUL_TIMEOUT="10")  # fmt: skip
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "deploy/gunicorn.conf.py")],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: httpx.get(base + "/health/ready").status_code == 200,
                    "the demo service to be ready", proc)  # fmt: skip
        yield base, shared, proc
    finally:
        _stop(proc)
        log.close()


def test_gunicorn_serves_the_default_app_module_with_its_workers(served: tuple) -> None:
    base, shared, proc = served
    assert httpx.get(base + "/ping").json() == {"ok": True}  # the demo shop itself
    # the probes stay open; the metrics want the admin token
    assert httpx.get(base + "/healthz").status_code == 200
    assert httpx.get(base + "/metrics").status_code == 401
    metrics = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert metrics.status_code == 200
    assert "http_server_requests_total" in metrics.text
    # the shared directory was emptied at start; the worker that answered /metrics wrote
    # its files there first (which workers serve is the kernel's choice: at least that one)
    assert not (shared / "worker-1-1.metrics.json").exists()
    assert list(shared.glob("worker-*.metrics.json"))
    # the image's HEALTHCHECK script, pointed at this service
    check = subprocess.run([sys.executable, str(ROOT / "deploy/docker/healthcheck.py")],
                           env={**os.environ, "HEALTHCHECK_URL": base + "/healthz"},
                           timeout=30)  # fmt: skip
    assert check.returncode == 0
    assert _stop(proc) == 0  # SIGTERM: the workers finish and gunicorn exits cleanly


def _first_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return proc.stderr.readline()


def test_the_proxy_runs_with_deploys_config_in_front_of_a_replica(pg_replicated_db: Any) -> None:
    db = pg_replicated_db
    (replica,) = db.replica_dsns
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dbsight")), "proxy",
         "--config", str(ROOT / "deploy/proxy/proxy.toml"),
         "--upstream", db.primary_dsn, "--replica", replica,
         "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
        env=_quiet_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = _first_line(proc)
        match = re.search(r"listening on 127\.0\.0\.1:(\d+), .*replicas .*"
                          r"pool mode session \(pool_size 40 per database and user\), "
                          r"admin http://127\.0\.0\.1:(\d+)", line)  # fmt: skip
        assert match, line
        port, admin = int(match[1]), int(match[2])
        base = f"http://127.0.0.1:{admin}"
        # the probes the Kubernetes sidecar and the compose healthcheck use, without token
        assert httpx.get(base + "/healthz").status_code == 200
        _wait_until(lambda: httpx.get(base + "/health/ready").status_code == 200,
                    "the proxy to be ready", proc)  # fmt: skip
        assert httpx.get(base + "/stats/pools").status_code == 401
        pools = httpx.get(base + "/stats/pools", headers={"Authorization": f"Bearer {TOKEN}"})
        assert pools.status_code == 200
        # a client of the service's kind: writes on the primary, reads through the proxy
        host_part = db.primary_dsn.split("@")[-1].split("/")[0]
        proxied = db.primary_dsn.replace(host_part, f"127.0.0.1:{port}")
        with psycopg.connect(proxied, autocommit=True) as conn:
            conn.execute("CREATE TABLE deploy_probe (id int PRIMARY KEY)")
            conn.execute("INSERT INTO deploy_probe VALUES (1), (2)")
            db.wait_for_replay()
            assert conn.execute("SELECT count(*) FROM deploy_probe").fetchone() == (2,)
        assert _stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
