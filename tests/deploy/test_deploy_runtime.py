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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


@contextmanager
def _gunicorn(tmp_path: Path, dsn: str, shared: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """The image's command: gunicorn with deploy's config, the default APP_MODULE (the demo
    shop on ``dsn``), two workers sharing ``shared``; yields once it is ready."""
    port = _free_port()
    env = _quiet_env(DBSIGHT_DEMO_DSN=dsn, DBSIGHT_MULTIPROCESS_DIR=str(shared),
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
        yield base, proc
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def served(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "worker-1-1.metrics.json").write_text("{}")  # a previous run's file
    with _gunicorn(tmp_path, pg_dsn, shared) as (base, proc):
        yield base, shared, proc


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


@contextmanager
def _sidecar(db: Any) -> Iterator[tuple[int, str, subprocess.Popen]]:
    """`dbsight proxy` as the sidecar runs it (deploy's proxy.toml), the addresses given on
    the command line; yields the client port, the admin URL and the process."""
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
        admin = f"http://127.0.0.1:{match[2]}"
        _wait_until(lambda: httpx.get(admin + "/health/ready").status_code == 200,
                    "the proxy to be ready", proc)  # fmt: skip
        yield int(match[1]), admin, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _through(dsn: str, port: int) -> str:
    """``dsn`` with its host and port replaced by the proxy's."""
    host_part = dsn.split("@")[-1].split("/")[0]
    return dsn.replace(host_part, f"127.0.0.1:{port}")


def test_the_proxy_runs_with_deploys_config_in_front_of_a_replica(pg_replicated_db: Any) -> None:
    db = pg_replicated_db
    with _sidecar(db) as (port, admin, proc):
        # the probes the Kubernetes sidecar and the compose healthcheck use, without token
        assert httpx.get(admin + "/healthz").status_code == 200
        assert httpx.get(admin + "/health/ready").status_code == 200
        assert httpx.get(admin + "/stats/pools").status_code == 401
        pools = httpx.get(admin + "/stats/pools", headers={"Authorization": f"Bearer {TOKEN}"})
        assert pools.status_code == 200
        with psycopg.connect(_through(db.primary_dsn, port), autocommit=True) as conn:
            conn.execute("CREATE TABLE deploy_probe (id int PRIMARY KEY)")
            conn.execute("INSERT INTO deploy_probe VALUES (1), (2)")
            db.wait_for_replay()
            assert conn.execute("SELECT count(*) FROM deploy_probe").fetchone() == (2,)
        assert _stop(proc) == 0  # SIGTERM: a clean exit within shutdown_grace_s


def _seed(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "deploy/demo/seed_demo.py")],
                          env=_quiet_env(DEMO_SEED_DSN=dsn, DEMO_SEED_SCALE="0.01"),
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _routed(metrics: str, role: str) -> float:
    samples = [s for family in text_string_to_metric_families(metrics) for s in family.samples]
    return sum(s.value for s in samples
               if s.name == "proxy_routed_total" and s.labels.get("role") == role)  # fmt: skip


def test_the_compose_topology_without_docker(pg_replicated_db: Any, tmp_path: Path) -> None:
    """The seed job, the sidecar proxy in front of the primary and its replica, the service
    under gunicorn reaching its database only through the sidecar: the demo's requests are
    answered, and its reads were served by the replica."""
    db = pg_replicated_db
    first = _seed(db.primary_dsn)
    assert first.returncode == 0, first.stderr
    assert "loaded 200 customers, 1000 orders" in first.stdout  # scale 0.01
    again = _seed(db.primary_dsn)
    assert (again.returncode, again.stdout.strip()) == (
        0, "demo-seed: the shop's tables are there already")  # fmt: skip
    db.wait_for_replay()
    shared = tmp_path / "metrics"
    with _sidecar(db) as (port, admin, proxy):
        with _gunicorn(tmp_path, _through(db.primary_dsn, port), shared) as (base, _):
            assert httpx.get(base + "/customers/1").status_code == 200
            assert httpx.get(base + "/products/1/sales").status_code == 200
            order = httpx.post(base + "/orders", json={"customer_id": 1,
                               "items": [{"product_id": 1, "quantity": 2}]})  # fmt: skip
            assert order.status_code in (200, 201), order.text
        token = {"Authorization": f"Bearer {TOKEN}"}
        metrics = httpx.get(admin + "/metrics", headers=token).text
        assert _routed(metrics, "replica") > 0  # the reads went to the replica
        assert _routed(metrics, "primary") > 0  # the order's transaction to the primary
        assert _stop(proxy) == 0
