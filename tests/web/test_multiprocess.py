"""Several worker processes, one set of numbers: ``/metrics`` and ``/metrics/summary`` sum
over every worker, whichever answers. The end-to-end test runs a real gunicorn with two
uvicorn workers serving a FastAPI app instrumented with ``dbsight.instrument(app)``, against
a real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dbsight.web._multiprocess import merge_families

APP = textwrap.dedent(
    """
    import os
    import time

    import asyncpg
    from contextlib import asynccontextmanager
    from fastapi import FastAPI

    import dbsight

    state = {}


    @asynccontextmanager
    async def lifespan(app):
        pool = await asyncpg.create_pool(os.environ["MP_TEST_DSN"], min_size=1, max_size=2)
        dbsight.instrument(pool)
        state["pool"] = pool
        yield
        await pool.close()


    app = FastAPI(lifespan=lifespan)
    dbsight.instrument(app)


    @app.get("/query")
    async def query():
        value = await state["pool"].fetchval("SELECT $1::int", 7)
        time.sleep(0.01)  # hold this worker's loop a moment: the next client goes elsewhere
        return {"pid": os.getpid(), "value": value}


    async def served(scope, receive, send):
        # Tells the test which worker answered any request (/metrics included).
        async def send_with_pid(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-worker-pid", str(os.getpid()).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_pid if scope["type"] == "http" else send)
    """
)


def _no_control_socket() -> list[str]:
    # gunicorn >= 27 opens a control socket under ~/.gunicorn by default: not in a test
    from gunicorn.config import KNOWN_SETTINGS

    known = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


_NO_CONTROL_SOCKET = _no_control_socket()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(base: str, path: str) -> httpx.Response:
    # a new connection per request, so that any worker may take it
    return httpx.get(base + path, headers={"Connection": "close"}, timeout=30)


def _wait_until(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def gunicorn(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[str, Path]]:
    (tmp_path / "dbsight_mp_app.py").write_text(APP)
    shared = tmp_path / "workers"
    port = _free_port()
    env = {
        **os.environ,
        "MP_TEST_DSN": pg_dsn,
        "DBSIGHT_MULTIPROCESS_DIR": str(shared),
        "DBSIGHT_SERVICE_NAME": "mp-test",
        "DBSIGHT_EXPLAIN_SLOW_QUERIES": "false",
        "DBSIGHT_TRACING_ENABLED": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn",
            "-k", "uvicorn.workers.UvicornWorker",
            "-w", "2",
            "-b", f"127.0.0.1:{port}",
            "--chdir", str(tmp_path),
            "--graceful-timeout", "10",
            *_NO_CONTROL_SOCKET,
            "dbsight_mp_app:served",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: _get(base, "/healthz").status_code == 200, "gunicorn to serve")
        yield base, shared
    finally:
        proc.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _queries(text: str) -> float:
    return _metric_sum(text, "db_client_operations_total", operation="select", outcome="ok")


def _both(text: str) -> tuple[float, float]:
    """The /query requests' queries and the requests, as a scrape counts them."""
    return _queries(text), _metric_sum(text, "http_server_requests_total", route="/query")


def _drive(base: str, at_least: int) -> tuple[int, set[int]]:
    """Send /query requests (8 at a time) until both workers answered some; returns the
    number sent and the pids seen."""
    sent, pids = 0, set()
    with ThreadPoolExecutor(8) as pool:
        while sent < at_least or len(pids) < 2:
            assert sent < 2000, f"only worker(s) {pids} answered {sent} requests"
            for response in pool.map(lambda _: _get(base, "/query"), range(8)):
                assert response.status_code == 200
                pids.add(response.json()["pid"])
                sent += 1
    return sent, pids


def _answers(base: str, path: str, rounds: int = 40) -> Iterator[httpx.Response]:
    """``path`` asked 8 at a time, ``rounds`` times at most."""
    with ThreadPoolExecutor(8) as pool:
        for _ in range(rounds):
            yield from pool.map(lambda _: _get(base, path), range(8))


def test_metrics_sum_over_gunicorn_workers(gunicorn: tuple[str, Path]) -> None:
    base, shared = gunicorn
    sent, pids = _drive(base, at_least=64)
    assert len(pids) == 2

    # every worker's file is at most a second old: wait for the last requests to show, their
    # queries and the requests themselves (a request is counted once its response has gone,
    # after its query: a file written in between has the query and not yet the request)
    _wait_until(lambda: _both(_get(base, "/metrics").text) == (sent, sent), f"{sent} queries")

    answered: set[int] = set()
    for response in _answers(base, "/metrics"):
        assert _queries(response.text) == sent
        assert _metric_sum(response.text, "http_server_requests_total", route="/query") == sent
        answered.add(int(response.headers["x-worker-pid"]))
        if answered == pids:
            break
    assert answered == pids  # the same totals, whichever worker answered

    summaries: set[int] = set()
    for response in _answers(base, "/metrics/summary"):
        summary = response.json()
        assert summary["service"] == "mp-test" and summary["workers"] == 2
        [top] = [t for t in summary["top"] if t["normalized"] == "SELECT $1::int"]
        assert top["calls"] == sent
        # merged from both workers' durations or histograms: still in order and within range
        assert top["min_time_s"] <= top["p50_s"] <= top["p95_s"] <= top["p99_s"]
        assert top["p99_s"] <= top["max_time_s"]
        # every worker's totals, summed: every statement counted, listed or not
        assert summary["totals"]["calls"] == sum(t["calls"] for t in summary["top"])
        assert summary["totals"]["fingerprints"] == len(summary["top"])
        summaries.add(int(response.headers["x-worker-pid"]))
        if summaries == pids:
            break
    assert summaries == pids

    files = sorted(path.name for path in shared.iterdir())
    assert len(files) == 4 and all(name.startswith("worker-") for name in files)

    # A worker exits (gunicorn starts another): its counts stay in the totals.
    gone = pids.pop()
    os.kill(gone, signal.SIGTERM)
    _wait_until(lambda: _pid_gone(gone), f"worker {gone} to exit")

    def settled() -> bool:
        summary = _get(base, "/metrics/summary").json()
        return summary["workers"] == 2 and _queries(_get(base, "/metrics").text) == sent

    _wait_until(settled, "a replacement worker")
    for response in _answers(base, "/metrics", rounds=3):
        assert _queries(response.text) == sent
        assert int(response.headers["x-worker-pid"]) != gone


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0


# -- merging, without processes ----------------------------------------------------------------
def _family(name: str, kind: str, samples: list[list[Any]]) -> dict[str, Any]:
    return {"name": name, "type": kind, "help": name, "unit": "", "samples": samples}


def test_merge_sums_counters_over_every_worker_and_gauges_over_live_ones() -> None:
    def worker(ops: float, used: float, created: float) -> dict[str, Any]:
        return {
            "families": [
                _family("ops", "counter", [
                    ["ops_total", {"outcome": "ok"}, ops],
                    ["ops_created", {"outcome": "ok"}, created],
                ]),
                _family("latency", "histogram", [
                    ["latency_bucket", {"le": "0.1"}, ops],
                    ["latency_bucket", {"le": "+Inf"}, ops],
                    ["latency_count", {}, ops],
                    ["latency_sum", {}, ops / 10],
                ]),
                _family("connections", "gauge", [["connections", {"state": "used"}, used]]),
            ]
        }  # fmt: skip

    live, other, exited = worker(3, 1, 100.0), worker(4, 2, 50.0), worker(5, 7, 10.0)
    merged = {m.name: m for m in merge_families([(live, True), (other, True), (exited, False)])}
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in merged.values()
        for s in metric.samples
    }
    assert values[("ops_total", (("outcome", "ok"),))] == 12  # exited workers still count
    assert values[("ops_created", (("outcome", "ok"),))] == 10.0  # the earliest
    assert values[("latency_bucket", (("le", "+Inf"),))] == 12
    assert values[("latency_count", ())] == 12
    assert values[("connections", (("state", "used"),))] == 3  # live workers only
    assert [m.type for m in merged.values()] == ["counter", "histogram", "gauge"]


# -- one process reading the shared directory ------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_an_exited_workers_file_counts_for_counters_only(
    fresh_runtime: Any, tmp_path: Path, pg_dsn: str
) -> None:
    import asyncpg

    import dbsight
    from dbsight.web import Endpoints
    from dbsight.web._multiprocess import identity, merged_summary

    dbsight.configure(
        dbsight.Settings(multiprocess_dir=tmp_path, explain_slow_queries=False, service_name="one")
    )
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    handle = dbsight.instrument(pool, pool_name="main")
    try:
        for n in range(3):
            await pool.fetchval("SELECT $1::int", n)
        me = identity()
        exited = {"pid": _dead_pid(), "started": "1", "parent": me.parent}
        other_run = {"pid": _dead_pid(), "started": "1", "parent": "1-1"}
        ops = ["db_client_operations_total", {
            "system": "postgresql", "operation": "select", "table": "", "outcome": "ok",
        }, 5.0]  # fmt: skip
        for n, (name, doc) in enumerate((("worker-1-1", exited), ("worker-2-1", other_run))):
            (tmp_path / f"{name}.metrics.json").write_text(
                json.dumps({**doc, "families": [
                    _family("db_client_operations", "counter", [ops]),
                    _family("db_client_connections", "gauge", [
                        ["db_client_connections", {"pool": "main", "state": "idle"}, 9.0],
                    ]),
                ]})  # fmt: skip
            )
            (tmp_path / f"{name}.summary.json").write_text(
                json.dumps({**doc, "stats": [], "slow": [], "n_plus_one": [], "planned": [
                    {"fingerprint": "feed", "ts": f"2026-12-0{n + 1}", "plan": [{"Plan": {}}]},
                    {"fingerprint": f"only-{n}", "ts": "2026-11-30", "plan": [{"Plan": {}}]},
                ]})  # fmt: skip
            )
        transport = httpx.ASGITransport(app=Endpoints())
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            text = (await client.get("/metrics")).text
            summary = (await client.get("/metrics/summary")).json()
        assert _queries(text) == 3 + 5  # this worker's, and the exited one's of this service
        idle = _metric_sum(text, "db_client_connections", pool="main", state="idle")
        assert idle == 1  # this worker's pool only: the exited worker's gauge is gone
        assert summary["workers"] == 1 and summary["service"] == "one"
        assert (tmp_path / f"{me.stem}.metrics.json").exists()  # written before merging
        # each fingerprint's newest run with a plan over this run's workers, newest first
        planned = merged_summary(dbsight.get_runtime(), tmp_path).planned
        assert [(p["fingerprint"], p["ts"]) for p in planned] == [
            ("feed", "2026-12-01"), ("only-0", "2026-11-30")
        ]  # (not the other run's)
        later = {"pid": _dead_pid(), "started": "1", "parent": me.parent}
        (tmp_path / "worker-3-1.summary.json").write_text(json.dumps({**later, "planned": [
            {"fingerprint": "feed", "ts": "2026-12-03", "plan": [{"Plan": {}}]},
        ]}))  # fmt: skip
        planned = merged_summary(dbsight.get_runtime(), tmp_path).planned
        assert [(p["fingerprint"], p["ts"]) for p in planned] == [
            ("feed", "2026-12-03"), ("only-0", "2026-11-30")
        ]
    finally:
        handle.uninstrument()
        await pool.close()


def test_prometheus_multiproc_dir_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dbsight
    from dbsight.web import multiprocess_dir

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    assert multiprocess_dir(dbsight.Settings()) == tmp_path / "prom"
    assert multiprocess_dir(dbsight.Settings(multiprocess_dir=tmp_path)) == tmp_path
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert multiprocess_dir(dbsight.Settings()) is None
    (tmp_path / "file").write_text("")
    with pytest.raises(dbsight.ConfigError, match="multiprocess_dir"):
        dbsight.Settings(multiprocess_dir=tmp_path / "file")
