"""What the dashboards are checked against, started once for each test module that asks
for it (module scope: torn down before the next module runs, so its traffic never reaches
another test): a real Prometheus on loopback scraping (every second) an instrumented service
(its own uvicorn process, on a real PostgreSQL primary, with Redis, an external API stand-in
and background work) and a dbsight proxy in front of the primary and its streaming replica
(transaction pooling, result cache, a firewall), both under traffic for as long as the tests
run."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_server import serve_in_thread
from dashboard_service import SCHEMA
from dashboard_stack import PROXY_JOB, SERVICE_JOB, TOKEN, Stack

from dbsight import _runtime
from dbsight.proxy._config import ProxyConfig
from dbsight.testing import PgCluster, RedisServer
from dbsight.testing.proxy import RunningProxy
from dbsight.testing.pytest_plugin import _missing_binaries

PROMETHEUS = "/usr/bin/prometheus"
HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(probe: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception as exc:  # noqa: BLE001 -- not up yet: retried until the deadline
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


async def _external_api(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The external API the service calls: /ok answers 200, anything else 503."""
    status = 200 if scope["path"] == "/ok" else 503
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _service_traffic(client: httpx.Client) -> None:
    for item in (1, 2, 3, 999):  # 999: a 404
        client.get(f"/items/{item}")
    client.get("/orders/recent")
    client.get("/slow")
    client.get("/broken")
    client.get("/duplicate")
    for key in ("a", "b", "a", "a"):
        client.get(f"/cache/{key}")
    client.get("/external")
    client.post("/jobs")


def _proxy_traffic(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT name FROM items WHERE id = %s", (1,)).fetchall()  # cached
    conn.execute("SELECT count(*) FROM orders").fetchall()  # to a replica
    with conn.transaction():
        conn.execute("INSERT INTO proxy_log (note) VALUES (%s)", ("traffic",))
    try:
        conn.execute("DELETE FROM proxy_log")  # no WHERE: the firewall rejects it
    except psycopg.Error:
        pass
    try:  # the server refuses it from the second round on: 23505 through the proxy
        conn.execute("INSERT INTO proxy_log (id, note) VALUES (0, 'once')")
    except psycopg.errors.UniqueViolation:
        pass


class Traffic:
    """Requests to the service and statements through the proxy, in a loop of their own, so
    every rate() window the tests query holds some."""

    def __init__(self, service: str, proxy_dsn: str) -> None:
        self._stop = threading.Event()
        self.rounds = 0
        self.error: Exception | None = None
        self._thread = threading.Thread(
            target=self._run, args=(service, proxy_dsn), name="dashboards-traffic", daemon=True
        )
        self._thread.start()

    def _run(self, service: str, proxy_dsn: str) -> None:
        try:
            with (
                httpx.Client(base_url=service, timeout=30) as client,
                psycopg.connect(proxy_dsn, autocommit=True) as conn,
            ):
                while not self._stop.is_set():
                    _service_traffic(client)
                    _proxy_traffic(conn)
                    self.rounds += 1
                    self._stop.wait(0.2)
        except Exception as exc:  # noqa: BLE001 -- reported by the fixture: a dead loop empties panels
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _prometheus_config(service: str, admin: str, token_file: Path) -> str:
    service_target = urllib.parse.urlsplit(service).netloc
    admin_target = urllib.parse.urlsplit(admin).netloc
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {SERVICE_JOB}
    static_configs: [{{targets: ["{service_target}"]}}]
  - job_name: {PROXY_JOB}
    authorization: {{credentials_file: "{token_file}"}}
    static_configs: [{{targets: ["{admin_target}"]}}]
"""


@pytest.fixture(scope="module")
def stack(
    pg_replicated: PgCluster,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    if not os.access(PROMETHEUS, os.X_OK):
        _missing_binaries(f"no Prometheus to scrape with: {PROMETHEUS} is missing")
    directory = tmp_path_factory.mktemp("dashboards")
    database = pg_replicated.create_database()
    redis_prefix = f"dbsight_test:{secrets.token_hex(6)}:"
    procs: list[subprocess.Popen[bytes]] = []
    proxy: RunningProxy | None = None
    traffic: Traffic | None = None
    try:
        with psycopg.connect(database.primary_dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("CREATE TABLE proxy_log (id serial PRIMARY KEY, note text)")
        database.wait_for_replay()
        with serve_in_thread(_external_api, lifespan="off") as external:
            port = _free_port()
            log = directory / "service.log"
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
                ),
                "DASHBOARD_TEST_DSN": database.primary_dsn,
                "DASHBOARD_TEST_REDIS_URL": redis_server.url,
                "DASHBOARD_TEST_REDIS_PREFIX": redis_prefix,
                "DASHBOARD_TEST_EXTERNAL_URL": external,
                "DASHBOARD_TEST_REFUSED_URL": f"http://127.0.0.1:{_free_port()}/",
                "DBSIGHT_SLOW_QUERY_THRESHOLD_MS": "10",
                "DBSIGHT_N_PLUS_ONE_MIN_TOTAL_MS": "0",
                "DBSIGHT_TRACING_ENABLED": "false",
                "DBSIGHT_EXPLAIN_SLOW_QUERIES": "false",
            }
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            with open(log, "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "--factory",
                     "dashboard_service:app_from_env", "--host", "127.0.0.1",
                     "--port", str(port), "--log-level", "warning"],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                ))  # fmt: skip
            service = f"http://127.0.0.1:{port}"
            _wait(lambda: httpx.get(service + "/health/ready", timeout=5).status_code == 200,
                  f"the service to serve ({log.read_text(errors='replace')[-2000:]})")  # fmt: skip

            # the proxy's admin port serves this process's registry: start it empty, so
            # that what earlier tests instrumented here does not show under the proxy's job
            _runtime.reset()
            proxy = RunningProxy(ProxyConfig(
                listen="127.0.0.1:0", admin="127.0.0.1:0", admin_token=TOKEN,
                upstream=database.primary_dsn, replicas=database.replica_dsns,
                pool_mode="transaction", pool_size=4, health_interval_s=0.2,
                read_your_writes_s=0.0, cache=[{"table": "items", "ttl_s": 60}],
                pipeline=[{"handler": "firewall", "deny_unbounded_writes": True}],
            ))  # fmt: skip
            proxy.wait_replicas_in_rotation(1)
            admin = f"http://127.0.0.1:{proxy.server.admin_port}"

            token_file = directory / "token"
            token_file.write_text(TOKEN)
            (directory / "prometheus.yml").write_text(
                _prometheus_config(service, admin, token_file)
            )
            prom_port = _free_port()
            with open(directory / "prometheus.log", "wb") as out:
                procs.append(subprocess.Popen(
                    [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}",
                     f"--storage.tsdb.path={directory / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{prom_port}"],
                    stdout=out, stderr=subprocess.STDOUT,
                ))  # fmt: skip
            prometheus = f"http://127.0.0.1:{prom_port}"
            _wait(lambda: httpx.get(prometheus + "/-/ready", timeout=5).status_code == 200,
                  "Prometheus to be ready")  # fmt: skip
            traffic = Traffic(service, proxy.dsn(database.primary_dsn))
            result = Stack(prometheus, service, admin, proxy)

            def scraped() -> bool:
                up = result.query("up")["result"]
                return len(up) == 2 and all(series["value"][1] == "1" for series in up)

            _wait(scraped, "Prometheus to scrape both targets")
            yield result
            assert traffic.error is None, f"the traffic loop stopped: {traffic.error!r}"
    finally:
        if traffic is not None:
            traffic.stop()
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proxy is not None:
            proxy.close()
            _runtime.reset()
        redis_server.delete_prefix(redis_prefix)
        pg_replicated.drop_database(database.name)
        shutil.rmtree(directory, ignore_errors=True)
