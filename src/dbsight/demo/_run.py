"""`dbsight demo`: an instrumented service on a private PostgreSQL and Redis, traffic, what
dbsight saw.

The steps, all in one process: start an embedded PostgreSQL and an embedded Redis, load the
shop data, apply the reference platform's migrations, serve the platform (``dbsight_platform``:
App A, App B and the sample shop at ``/v1/shop``; dbsight instruments the app, the engine,
Redis and the outside-call client) with uvicorn on a free loopback port, send the shop a mix
of requests, then print the service's own ``/metrics/summary``: top statements, slow queries
with their plans, N+1 patterns. Without a duration it then keeps serving until Ctrl-C.

Whatever happens (an error, Ctrl-C at any point) the server, the PostgreSQL cluster, Redis
and the temporary directory are gone when `run_demo` returns or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

import dbsight

from .. import _runtime
from .._signals import sigterm_as_ctrl_c
from ..embedded.postgres import EmbeddedPostgres
from ..embedded.redis import EmbeddedRedis
from ..export.slowlog import PLAN_GRACE_S, SlowQuerySink
from ._platform import DOCS_PATH, SHOP_PREFIX, create_platform, migrate, platform_settings
from ._recommend import print_recommendations, recommend
from ._schema import SampleSize, enable_extensions, load_sample_data
from ._server import serve_app
from ._summary import print_summary
from ._traffic import drive_traffic

# Traffic before the summary when the demo keeps serving afterwards (no --duration).
INTERACTIVE_TRAFFIC_S = 20.0
# Requests per second: the service and its clients share one process, so a saturated
# event loop would add its queueing to every query's time (and put lookups in the slow log).
DEFAULT_RATE = 100.0
EXIT_INTERRUPTED = 130
WIDE_OUTPUT = 180
# No parallel workers: on a small machine they compete with the service and its clients
# for the same cores, and every statement's time would depend on what else runs.
POSTGRES_SETTINGS = {"max_parallel_workers_per_gather": 0}
# In the demo's temporary directory:
SLOW_LOG = "slow-queries.jsonl"
DBSIGHT_LOG = "dbsight.log"
REPORT = "dbsight-demo.html"


@dataclass(frozen=True)
class DemoConfig:
    """``duration_s``: traffic for that long, summary, exit; None: traffic for
    `INTERACTIVE_TRAFFIC_S`, summary, then serve until Ctrl-C."""

    duration_s: float | None = None
    scale: float = 1.0
    concurrency: int = 8
    rate: float | None = DEFAULT_RATE
    slow_query_threshold_ms: float = 10.0
    port: int = 0
    # The HTML report's path: outside the demo's temporary directory, so it outlives the demo.
    report: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / REPORT)

    @property
    def traffic_s(self) -> float:
        return self.duration_s if self.duration_s is not None else INTERACTIVE_TRAFFIC_S


def demo_setting_values(config: DemoConfig, slow_log: Path) -> dict[str, Any]:
    """A threshold the heavy endpoints cross and the lookups do not; a plan for every slow
    statement shape (at most one EXPLAIN per shape every few seconds), with ANALYZE (the
    demo's own database: the plan analyzer sees the rows each scan threw away); a low bar for
    N+1, whose repeated queries are each fast."""
    return {
        "service_name": "dbsight-demo",
        "slow_query_threshold_ms": config.slow_query_threshold_ms,
        "slow_query_log": slow_log,
        "explain_slow_queries": True,
        "explain_analyze": True,
        "explain_interval_s": 5.0,
        "n_plus_one_min_total_ms": 1.0,
    }


def demo_settings(config: DemoConfig, slow_log: Path) -> dbsight.Settings:
    """`demo_setting_values` as dbsight's settings."""
    return dbsight.Settings(**demo_setting_values(config, slow_log))


async def _plans_settled(timeout_s: float) -> None:
    """Wait until the slow-query log holds no line waiting for its EXPLAIN plan."""
    sinks = [s for s in _runtime.get_runtime().sinks if isinstance(s, SlowQuerySink)]
    deadline = time.monotonic() + timeout_s
    while any(s.pending_plans for s in sinks) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _get_json(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path)
    if response.status_code != 200:
        raise RuntimeError(
            f"the sample service answered {response.status_code} to GET {path}: "
            f"{response.text[:200]}"
        )
    return response.json()


@contextlib.contextmanager
def _dbsight_log_to(path: Path) -> Iterator[None]:
    """dbsight's own log lines (a warning per N+1 request, say) go to a file while the demo
    runs: on the terminal they would break up the progress bar, and the summary shows the
    same findings."""
    logger = logging.getLogger("dbsight")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        handler.close()


def _print_urls(console: Console, base_url: str, dsn: str, redis_url: str, tmp: Path) -> None:
    console.print()
    console.print(f"  platform         {base_url}  (App A, App B and the shop)")
    console.print(f"  OpenAPI docs     {base_url}{DOCS_PATH}")
    console.print(f"  sample shop      {base_url}{SHOP_PREFIX}/customers/1  (and the other routes)")
    console.print(f"  dashboard        {base_url}/dbsight/")
    console.print(f"  metrics          {base_url}/metrics")
    console.print(f"  summary (JSON)   {base_url}/metrics/summary")
    console.print(f"  readiness        {base_url}/health/ready")
    console.print(f"  database         psql {dsn}")
    console.print(f"  redis            redis-cli -u {redis_url}")
    console.print(f"  slow-query log   {tmp / SLOW_LOG}")
    console.print(f"  dbsight's log    {tmp / DBSIGHT_LOG}")


def _loaded(console: Console, size: SampleSize) -> None:
    console.print(
        f"loaded {size.total_rows:,} rows ({size.customers:,} customers, {size.products:,} "
        f"products, {size.orders:,} orders, {size.order_items:,} order items) "
        f"in {size.seconds:.1f}s"
    )


@dataclass
class _Phase:
    """How far the demo got: a Ctrl-C while it only serves is the normal way to end it."""

    serving: bool = False
    base_url: str | None = None


def _print_removed(
    console: Console, phase: _Phase, dsn: str | None, redis_url: str | None, tmp: Path | None
) -> None:
    """What the unattended demo started, now gone: said so, rather than listed as if it
    could still be opened."""
    gone = []
    if phase.base_url is not None:
        gone.append(f"the platform ({phase.base_url})")
    if dsn is not None:
        gone.append(f"PostgreSQL ({dsn.rpartition('@')[2].partition('/')[0]})")
    if redis_url is not None:
        gone.append(f"Redis ({redis_url.removeprefix('redis://').partition('/')[0]})")
    if tmp is not None:
        gone.append(f"{tmp} (the slow-query log and dbsight's log)")
    console.print(
        f"\nstopped and removed: {', '.join(gone)}; without --duration, the demo keeps them "
        "until Ctrl-C, to be explored"
    )


async def _session(
    config: DemoConfig, dsn: str, redis_url: str, tmp: Path, console: Console, phase: _Phase
) -> None:
    """Everything after PostgreSQL and Redis are up."""
    with console.status(f"loading the sample data (scale {config.scale:g})"):
        size = await load_sample_data(dsn, config.scale)
        await enable_extensions(dsn)
    _loaded(console, size)
    settings = platform_settings(dsn, redis_url, pool_size=max(config.concurrency, 2))
    with console.status("applying the platform's migrations"):
        await migrate(settings)
    app = create_platform(settings, demo_setting_values(config, tmp / SLOW_LOG))
    # The platform's lifespan closes its pools and removes its instruments when it stops.
    async with serve_app(app, port=config.port) as base_url:
        console.print(
            f"platform listening on {base_url} (OpenAPI docs: {base_url}{DOCS_PATH}; "
            f"the sample shop at {SHOP_PREFIX})"
        )
        limits = httpx.Limits(max_connections=config.concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
            ready = await client.get("/health/ready")
            if ready.status_code != 200:
                console.print(f"[yellow]readiness check: {ready.status_code} {ready.text}")
            traffic = await drive_traffic(
                client,
                size,
                duration_s=config.traffic_s,
                concurrency=config.concurrency,
                rate=config.rate,
                console=console,
                prefix=SHOP_PREFIX,
            )
            observed = _runtime.get_runtime().settings
            await _plans_settled(observed.explain_timeout_ms / 1000 + PLAN_GRACE_S)
            summary = await _get_json(client, "/metrics/summary")
        print_summary(console, summary, traffic, config.slow_query_threshold_ms)
        with console.status("recommendations") as status:
            found = await asyncio.to_thread(
                recommend, dsn, summary, config.report, sources=[base_url],
                progress=lambda step: status.update(f"recommendations: {step}"),
            )  # fmt: skip
        print_recommendations(console, found, summary)
        phase.base_url = base_url
        if config.duration_s is None:  # the links and paths work while it serves
            _print_urls(console, base_url, dsn, redis_url, tmp)
            console.print("\nserving until Ctrl-C")
            phase.serving = True
            await asyncio.Event().wait()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's when installed (the ``uvloop`` extra): the service and the clients share
    one loop, and a faster loop keeps their waits out of the measured query times."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run_demo(config: DemoConfig, console: Console | None = None) -> int:
    """Run the demo; returns the exit status (0, or 130 when Ctrl-C cut it short).

    Everything it started is stopped before it returns, whichever way it ends.
    """
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or captured: wide enough for the tables
            console = Console(width=WIDE_OUTPUT)
    phase = _Phase()
    tmp: Path | None = None
    dsn: str | None = None
    redis_url: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(sigterm_as_ctrl_c())
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbsight-demo-")))
            dbsight.configure(demo_settings(config, tmp / SLOW_LOG))
            stack.callback(_runtime.reset)  # closes the slow log before its directory goes
            stack.enter_context(_dbsight_log_to(tmp / DBSIGHT_LOG))
            with console.status("starting PostgreSQL"):
                server = stack.enter_context(
                    EmbeddedPostgres(name="dbsight-demo", settings=POSTGRES_SETTINGS)
                )
                dsn = server.create_database("dbsight_demo")
            console.print(f"PostgreSQL {server.version} ready: {dsn}")
            with console.status("starting Redis"):
                redis_url = stack.enter_context(EmbeddedRedis()).url()
            console.print(f"Redis ready: {redis_url}")
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(_session(config, dsn, redis_url, tmp, console, phase))
    except KeyboardInterrupt:
        console.print("\nstopped: the platform, PostgreSQL, Redis and the temporary files are gone")
        return 0 if phase.serving else EXIT_INTERRUPTED
    _print_removed(console, phase, dsn, redis_url, tmp)
    return 0
