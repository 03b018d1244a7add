"""What dbsight costs an HTTP service: its ASGI middleware against its peers, in process, and
the sample service with and without dbsight, under load.

**Middleware, in process** (first; ``--part middleware`` runs it alone). The same small
FastAPI app (``/ping``; ``/items/{item_id}``, a route template), no database, in copies:

  plain        the app alone
  bare         a pure ASGI middleware that reads time.perf_counter() twice around the app and
               adds the difference to a total: the simplest thing that could work
  dbsight      ``dbsight.instrument(app)``: request scope, ids, Server-Timing, http_server_*
               metrics, N+1 check (tracing and the access log off, as below)
  instrumentator  prometheus-fastapi-instrumentator's ``Instrumentator().instrument(app)``
  starlette-exporter  starlette-exporter's ``PrometheusMiddleware``

Each is called as an ASGI app (no server, no socket) ``--requests`` times per round, in an
order rotated every round, after a garbage collection; the added cost of a copy is the median
over rounds of (copy - plain) in this process's CPU time per request. Target: dbsight's
middleware at most 0.5x prometheus-fastapi-instrumentator's.

**Under load** (``--part wrk`` alone). Two copies of `dbsight.demo.app` run side by side
under uvicorn, each in processes of its own with the same worker count, on one PostgreSQL:

  plain          the service without dbsight
  instrumented   ``dbsight.instrument(app)`` + ``dbsight.instrument(pool)``, default settings
                 but for the access log (off, as uvicorn's is here)

A load generator in another process (wrk, installed from Debian's packages when missing; an
httpx load process when wrk cannot be had) drives one endpoint of one copy at a time:

  throughput  ``--connections`` concurrent connections, as fast as the service answers:
              requests/s (and p50, which at saturation is mostly queueing)
  latency     one connection: p50 latency without queueing, what dbsight adds to a request

Rounds are interleaved, in a shuffled order each round, so that drift on a noisy machine hits
both copies alike; the ratio and the added p50 are medians over rounds of the per-round
comparison. Endpoints: ``/customers/{id}`` (one primary-key query, random ids: the headline)
and ``/ping`` (no database). Targets: at most 5 % fewer requests/s, at most 100 µs added p50.

    ./dev bench http [--part all|middleware|wrk] [--requests 5000] [--middleware-rounds 20]
                     [--rounds 6] [--seconds 2] [--connections 8] [--workers 1] [--dsn ...]

Without --dsn the benchmark starts an embedded PostgreSQL of its own; with it, give it a
database of its own: the sample tables are (re)created there.
"""

# ruff: noqa: E402 (the imports follow the sys.path fix below)
from __future__ import annotations

import os
import sys

# This file is bench/http.py: run as a script, its directory comes first on sys.path, where
# it would shadow the standard library's ``http`` package for everything imported below.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import contextlib
import gc
import json
import random
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dbsight.demo import SampleSize, load_sample_data
from dbsight.demo.app import ENV_DSN, ENV_INSTRUMENT
from dbsight.embedded import free_port
from dbsight.embedded.postgres import EmbeddedPostgres

SERVICES = ("plain", "instrumented")
MODES = ("throughput", "latency")
ENDPOINTS = {"pk": "/customers/{id}", "no-db": "/ping"}
MIDDLEWARES = ("plain", "bare", "dbsight", "instrumentator", "starlette-exporter")
MAX_MIDDLEWARE_RATIO = 0.5  # of prometheus-fastapi-instrumentator's added CPU
MAX_RPS_LOSS = 0.05
MAX_ADDED_P50_US = 100.0
DATA_SCALE = 0.1
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Sample:
    rps: float
    p50_us: float
    errors: int


# -- the middleware, in process ----------------------------------------------------------------
class BareTiming:
    """The simplest middleware that could work: two clock reads around the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.total_s = 0.0
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.total_s += time.perf_counter() - started
            self.requests += 1


def middleware_apps() -> dict[str, Any]:
    """One copy of the same FastAPI app per entry of `MIDDLEWARES`."""
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator
    from starlette_exporter import PrometheusMiddleware

    import dbsight

    def app() -> Any:
        made = FastAPI()

        @made.get("/ping")
        async def ping() -> dict[str, bool]:
            return {"ok": True}

        @made.get("/items/{item_id}")
        async def item(item_id: int) -> dict[str, int]:
            return {"id": item_id}

        return made

    # dbsight as bench_http's services run it: default settings, access log and tracing off
    dbsight.configure(dbsight.Settings(log_sample_rate=0.0, tracing_enabled=False))
    apps = {name: app() for name in MIDDLEWARES}
    apps["bare"].add_middleware(BareTiming)
    dbsight.instrument(apps["dbsight"])
    # its own registry: the copies' metrics never meet in one
    Instrumentator(registry=CollectorRegistry()).instrument(apps["instrumentator"])
    apps["starlette-exporter"].add_middleware(PrometheusMiddleware)
    return apps


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def _drive(app: Any, paths: list[str]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"status {message['status']}")

    for path in paths:
        await app(_scope(path), receive, send)


async def measure_middleware(requests: int, rounds: int) -> dict[str, list[float]]:
    """name -> CPU seconds per request, one sample per round (order rotated each round)."""
    apps = middleware_apps()
    samples: dict[str, list[float]] = {name: [] for name in MIDDLEWARES}
    names = list(MIDDLEWARES)
    for name in names:  # warm up: middleware stacks built, routes compiled, metrics bound
        await _drive(apps[name], ["/ping", "/items/1"] * 100)
    for number in range(rounds):
        order = names[number % len(names):] + names[: number % len(names)]
        paths = ["/ping" if i % 2 else f"/items/{i}" for i in range(requests)]
        for name in order:
            gc.collect()
            cpu0 = time.process_time()
            await _drive(apps[name], paths)
            samples[name].append((time.process_time() - cpu0) / requests)
    return samples


def report_middleware(samples: dict[str, list[float]], requests: int, rounds: int) -> bool:
    print(
        f"\nASGI middleware, in process: a FastAPI app called directly, {requests} requests per "
        f"copy and round (/ping and /items/{{id}}), {rounds} rounds in rotated order; "
        f"Python {sys.version.split()[0]}"
    )
    header = (f"{'copy':<20}{'CPU us/request':>16}{'added CPU us':>14}{'x instrumentator':>18}"
              f"{'target':>14}")  # fmt: skip
    print(header)
    print("-" * len(header))
    plain = samples["plain"]
    added = {
        name: statistics.median(s - p for s, p in zip(runs, plain)) * 1e6
        for name, runs in samples.items()
    }
    peer = added["instrumentator"]
    ok = True
    for name, runs in samples.items():
        versus = f"{added[name] / peer:>18.2f}" if name != "plain" and peer > 0 else f"{'':>18}"
        mark = ""
        if name == "dbsight":
            met = peer > 0 and added[name] <= MAX_MIDDLEWARE_RATIO * peer
            ok &= met
            mark = f"<= {MAX_MIDDLEWARE_RATIO:.1f}x {'ok' if met else 'MISS'}"
        print(f"{name:<20}{statistics.median(runs) * 1e6:>16.1f}{added[name]:>14.2f}{versus}"
              f"{mark:>14}")  # fmt: skip
    return ok


# -- the services ---------------------------------------------------------------------------
class Service:
    """One copy of the sample service: ``uvicorn --factory dbsight.demo.app:app_from_env``."""

    def __init__(self, name: str, dsn: str, workers: int, multiprocess_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBSIGHT_")}
        env[ENV_DSN] = dsn
        env[ENV_INSTRUMENT] = "1" if name == "instrumented" else "0"
        env["DBSIGHT_SERVICE_NAME"] = f"bench-{name}"
        # like --no-access-log below: no access line per request (on stderr by default)
        env["DBSIGHT_LOG_SAMPLE_RATE"] = "0"
        if workers > 1:  # what a multi-worker deployment of an instrumented service sets
            env["DBSIGHT_MULTIPROCESS_DIR"] = str(multiprocess_dir)
        argv = [
            sys.executable, "-m", "uvicorn", "dbsight.demo.app:app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        # a session of its own: stopping it stops its worker processes too
        self.proc = subprocess.Popen(argv, env=env, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the {self.name} service exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/customers/1", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the {self.name} service did not answer within {STARTUP_TIMEOUT_S}s")

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)


@contextlib.contextmanager
def services(dsn: str, workers: int, tmp: Path) -> Iterator[dict[str, Service]]:
    started: dict[str, Service] = {}
    try:
        for name in SERVICES:
            started[name] = Service(name, dsn, workers, tmp / f"multiprocess-{name}")
        for service in started.values():
            service.wait_ready()
        yield started
    finally:
        for service in started.values():
            service.stop()


# -- the load generators ----------------------------------------------------------------------
_WRK_SCRIPT = """
math.randomseed(os.time())
request = function()
  return wrk.format(nil, (string.gsub(wrk.path, "{id}", tostring(math.random(1, %d)))))
end
"""
_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6}


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when it is missing and we may; None otherwise."""
    found = shutil.which("wrk")
    if found or shutil.which("apt-get") is None:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        return None
    print("installing wrk (apt-get install wrk) ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "wrk"]):  # fmt: skip
        subprocess.run(sudo + argv, env=env, capture_output=True, check=False, timeout=600)
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def _wrk_errors(out: str) -> int:
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(found.group(1))
    if found := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(n) for n in found.groups())
    return errors


class Wrk:
    name = "wrk"

    def __init__(self, path: str, tmp: Path, ids: int) -> None:
        self.path = path
        self.script = tmp / "random-ids.lua"
        self.script.write_text(_WRK_SCRIPT % ids)

    def run(self, url: str, connections: int, seconds: float) -> Sample:
        argv = [
            self.path, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "-s", str(self.script), url,
        ]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return Sample(rps, float(value) * _UNITS_US[unit], _wrk_errors(out))


class HttpxLoad:
    """The fallback: an httpx client in a separate process (this script with ``--load``)."""

    name = "httpx (wrk unavailable)"

    def __init__(self, ids: int) -> None:
        self.ids = ids

    def run(self, url: str, connections: int, seconds: float) -> Sample:
        argv = [sys.executable, __file__, "--load", url, "--connections", str(connections),
                "--seconds", str(seconds), "--ids", str(self.ids)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        data = json.loads(out)
        return Sample(data["rps"], data["p50_us"], data["errors"])


async def httpx_load(url: str, connections: int, seconds: float, ids: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(url.replace("{id}", str(random.randint(1, ids))))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code >= 400

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50_us": statistics.median(latencies) * 1e6,
        "errors": errors,
    }


# -- the benchmark ----------------------------------------------------------------------------
def measure(
    load: Wrk | HttpxLoad,
    running: dict[str, Service],
    rounds: int,
    seconds: float,
    connections: int,
) -> dict[tuple[str, str, str], list[Sample]]:
    """(endpoint, mode, service) -> one sample per round."""
    samples: dict[tuple[str, str, str], list[Sample]] = {}
    plan = [(e, m, s) for e in ENDPOINTS for m in MODES for s in SERVICES]
    for endpoint, mode, service in plan:  # warm up: connections, caches, prepared statements
        conns = connections if mode == "throughput" else 1
        load.run(running[service].url + ENDPOINTS[endpoint], conns, 1)
    for number in range(1, rounds + 1):
        order = list(plan)
        random.shuffle(order)
        for endpoint, mode, service in order:
            conns = connections if mode == "throughput" else 1
            sample = load.run(running[service].url + ENDPOINTS[endpoint], conns, seconds)
            samples.setdefault((endpoint, mode, service), []).append(sample)
        print(f"  round {number}/{rounds} done", file=sys.stderr)
    return samples


def report(samples: dict[tuple[str, str, str], list[Sample]], args: argparse.Namespace,
           load_name: str) -> bool:  # fmt: skip
    print(
        f"\ndbsight HTTP overhead: sample service (FastAPI + asyncpg) under uvicorn, "
        f"{args.workers} worker(s) each, load from {load_name}; {args.rounds} interleaved rounds "
        f"of {args.seconds:g}s per measurement; Python {sys.version.split()[0]}"
    )
    header = (f"{'endpoint':<18}{'mode':<12}{'service':<14}{'req/s':>10}{'p50 us':>10}"
              f"{'ratio':>8}{'added p50 us':>14}{'errors':>8}{'target':>16}")  # fmt: skip
    print(header)
    print("-" * len(header))
    ok = True
    for name, path in ENDPOINTS.items():
        for mode in MODES:
            plain = samples[(name, mode, "plain")]
            inst = samples[(name, mode, "instrumented")]
            ratio = statistics.median(i.rps / p.rps for p, i in zip(plain, inst))
            added = statistics.median(i.p50_us - p.p50_us for p, i in zip(plain, inst))
            for service, runs in (("plain", plain), ("instrumented", inst)):
                row = (f"{path if service == 'plain' else '':<18}"
                       f"{mode if service == 'plain' else '':<12}{service:<14}"
                       f"{statistics.median(s.rps for s in runs):>10.0f}"
                       f"{statistics.median(s.p50_us for s in runs):>10.0f}")  # fmt: skip
                errors = sum(s.errors for s in runs)
                if service == "plain":
                    print(f"{row}{'':>8}{'':>14}{errors:>8}")
                    continue
                if mode == "throughput":
                    met = ratio >= 1 - MAX_RPS_LOSS
                    target = f">= {1 - MAX_RPS_LOSS:.2f} {'ok' if met else 'MISS'}"
                else:
                    met = added <= MAX_ADDED_P50_US
                    target = f"<= {MAX_ADDED_P50_US:.0f} us {'ok' if met else 'MISS'}"
                ok &= met
                print(f"{row}{ratio:>8.3f}{added:>14.0f}{errors:>8}{target:>16}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "middleware", "wrk"), default="all")
    parser.add_argument("--requests", type=int, default=5000, help="in-process, per copy and round")
    parser.add_argument("--middleware-rounds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--connections", type=int, default=8, help="for the throughput mode")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per service")
    parser.add_argument("--dsn", help="PostgreSQL to use instead of an embedded one")
    parser.add_argument("--no-wrk", action="store_true", help="use the httpx load process")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)  # the load process
    parser.add_argument("--ids", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        result = asyncio.run(httpx_load(args.load, args.connections, args.seconds, args.ids))
        print(json.dumps(result))
        return

    met = True
    if args.part in ("all", "middleware"):
        in_process = asyncio.run(measure_middleware(args.requests, args.middleware_rounds))
        met &= report_middleware(in_process, args.requests, args.middleware_rounds)
    if args.part == "middleware":
        print("\nall targets met" if met else "\nsome targets missed")
        return
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbsight-bench-")))
        dsn = args.dsn
        if dsn is None:
            server = stack.enter_context(EmbeddedPostgres(name="dbsight-bench"))
            dsn = server.create_database("bench_http")
        size: SampleSize = asyncio.run(load_sample_data(dsn, DATA_SCALE))
        wrk = None if args.no_wrk else ensure_wrk()
        load = Wrk(wrk, tmp, size.customers) if wrk else HttpxLoad(size.customers)
        running = stack.enter_context(services(dsn, args.workers, tmp))
        samples = measure(load, running, args.rounds, args.seconds, args.connections)
    met &= report(samples, args, load.name)
    print("\nall targets met" if met else "\nsome targets missed")


if __name__ == "__main__":
    main()
