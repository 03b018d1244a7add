"""Scale-out: several instances of one service and several proxy replicas, each a process of
its own with its own statistics, read as one by ``dbsight report`` and ``dbsight top`` with
several ``--from``/``--url``: every statement's calls, errors and rows are the sums of the
instances' own figures. Real processes against the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dbsight.demo import load_sample_data
from dbsight.testing import PgServer

DBSIGHT = [sys.executable, "-m", "dbsight.cli"]
# each instance gets a different share of the traffic, so that a merge that counted one
# instance twice, or only one, shows
REQUESTS = (9, 5, 3)
PROXY_QUERIES = (11, 4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(probe: Callable[[], Any], what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what} (last: {last!r}): {log.read_text(errors='replace')[-2000:]}")


@dataclass
class Fleet:
    services: list[str]  # base URLs of the service instances
    proxies: list[str]  # base URLs of the proxy replicas' admin ports
    procs: dict[str, subprocess.Popen[bytes]]


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def fleet(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("fleet")
    env = {**os.environ, "DBSIGHT_SERVICE_NAME": "shop", "DBSIGHT_TRACING_ENABLED": "false",
           "DBSIGHT_EXPLAIN_SLOW_QUERIES": "false"}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with pg_server.temporary_database() as dsn:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, load_sample_data(dsn, 0.02)).result()
        try:
            services, proxies = [], []
            for index, count in enumerate(REQUESTS):
                port, log = _free_port(), directory / f"shop-{index}.log"
                procs[f"shop-{index}"] = _start(
                    [sys.executable, "-m", "uvicorn", "--factory", "dbsight.demo.app:app_from_env",
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                    {**env, "DBSIGHT_DEMO_DSN": dsn}, log,
                )  # fmt: skip
                url = f"http://127.0.0.1:{port}"
                _wait(lambda url=url: httpx.get(url + "/ping").status_code == 200,
                      f"shop-{index} did not serve", log)  # fmt: skip
                with httpx.Client(base_url=url, timeout=30) as client:
                    for request in range(count):
                        assert client.get(f"/customers/{request + 1}").status_code == 200
                    assert client.get("/customers/1/orders").status_code == 200
                services.append(url)
            for index, count in enumerate(PROXY_QUERIES):
                listen, admin = _free_port(), _free_port()
                log = directory / f"proxy-{index}.log"
                procs[f"proxy-{index}"] = _start(
                    [*DBSIGHT, "proxy", "--listen", f"127.0.0.1:{listen}", "--upstream", dsn,
                     "--admin", f"127.0.0.1:{admin}"], env, log,
                )  # fmt: skip
                url = f"http://127.0.0.1:{admin}"
                _wait(lambda url=url: httpx.get(url + "/healthz").status_code == 200,
                      f"proxy-{index} did not serve", log)  # fmt: skip
                through = dsn.replace(dsn.split("@")[1].split("/")[0], f"127.0.0.1:{listen}")
                with psycopg.connect(through, autocommit=True) as conn:
                    for query in range(count):
                        conn.execute("SELECT name FROM customers WHERE id = %s", (query + 1,))
                    with pytest.raises(psycopg.errors.UndefinedTable):
                        conn.execute("SELECT * FROM no_such_table")
                proxies.append(url)
            yield Fleet(services, proxies, procs)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _summary(url: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(url + "/metrics/summary?limit=500", timeout=10).json()
    return document


def _sums(urls: list[str]) -> tuple[Counter[str], Counter[str], dict[str, str]]:
    """Calls and errors by fingerprint, added up over the instances' own summaries."""
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    texts: dict[str, str] = {}
    for url in urls:
        for entry in _summary(url)["top"]:
            calls[entry["fingerprint"]] += entry["calls"]
            errors[entry["fingerprint"]] += entry["errors"]
            texts[entry["fingerprint"]] = entry["normalized"]
    return calls, errors, texts


def _report(urls: list[str], tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "report.json"
    command = [*DBSIGHT, "report", "--json", "-o", str(out)]
    for url in urls:
        command += ["--from", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_the_report_adds_up_the_instances(fleet: Fleet, tmp_path: Path) -> None:
    calls, errors, texts = _sums(fleet.services)
    customer = next(fp for fp, text in texts.items() if "FROM customers" in text
                    and "id = $1" in text)  # fmt: skip
    # every instance ran it, each as often as it was asked: the sums are not one instance's
    assert calls[customer] >= sum(REQUESTS)
    document = _report(fleet.services, tmp_path)
    merged = {entry["fingerprint"]: entry for entry in document["statements"]}
    assert set(merged) == set(calls)
    for fingerprint, count in calls.items():
        assert merged[fingerprint]["calls"] == count, texts[fingerprint]
        assert merged[fingerprint]["errors"] == errors[fingerprint], texts[fingerprint]
    assert merged[customer]["estimated"] is True  # percentiles pooled from three instances
    assert document["totals"]["calls"] == sum(calls.values())
    assert document["workers"] == len(fleet.services)


def _top(urls: list[str]) -> str:
    command = [*DBSIGHT, "top", "--once", "--limit", "200", "--width", "250", "--sort", "calls"]
    for url in urls:
        command += ["--url", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_top_merges_the_proxy_replicas(fleet: Fleet) -> None:
    calls, errors, texts = _sums(fleet.proxies)
    lookup = next(fp for fp, text in texts.items() if text.startswith("SELECT name FROM customers"))
    assert calls[lookup] == sum(PROXY_QUERIES)  # each replica saw only its own clients
    output = _top(fleet.proxies)
    assert "2 of 2 instances" in output
    assert f"{sum(calls.values())} calls  {sum(errors.values())} errors" in output
    row = next(line for line in output.splitlines() if "SELECT name FROM customers" in line)
    assert f" {sum(PROXY_QUERIES)} " in row


def test_top_shows_the_instances_that_answer(fleet: Fleet) -> None:
    calls, _, _ = _sums(fleet.services)
    gone = "http://127.0.0.1:9"  # discard port: nothing listens
    output = _top([*fleet.services, gone])
    assert f"3 of {len(fleet.services) + 1} instances" in output
    assert f"! left out: cannot connect to {gone}/metrics/summary" in output
    assert f"{sum(calls.values())} calls" in output
    done = subprocess.run([*DBSIGHT, "top", "--once", "--url", gone, "--url", gone + "0"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "cannot connect" in done.stderr
