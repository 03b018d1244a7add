"""What dbsight's in-process instrumentation costs per query, on real PostgreSQL.

For asyncpg, SQLAlchemy async (asyncpg driver) and psycopg 3 (sync), primary-key SELECTs run
in interleaved rounds in these modes, so that drift on a noisy machine hits every mode alike:

  baseline   the client, uninstrumented
  bare       the simplest instrument that could work: a wrapper around the query call that
             reads time.perf_counter() twice and adds the difference to a total
  disabled   instrumented, with dbsight disabled (Settings(enabled=False))
  observed   metrics + statistics + slow-query log on, tracing off
  traced     as observed, plus OpenTelemetry SDK spans (in-memory exporter) for every query
  unbatched  (with --unbatched) as observed, with dbsight's metrics, statistics and samples
             called for each statement instead of in batches: what the batching saves
  otel       OpenTelemetry's own instrumentor of the client (opentelemetry-instrumentation-
             asyncpg / -sqlalchemy / -psycopg), spans only, on the same TracerProvider and
             in-memory exporter as ``traced``; on a connection (engine) of its own, and for
             asyncpg and SQLAlchemy, whose instrumentors patch classes, switched on only
             around its own blocks, so that no mode runs under another one's instrument

Each round runs a block of queries per mode in a shuffled order, after a garbage collection;
the added cost of a mode is the median over rounds of (mode - baseline) per query, in wall
time and in this process's CPU time (the instrumentation's cost is CPU spent in this process;
the server's share is the same in every mode). The ratios compare the added CPU of dbsight's
modes with the added CPU of OpenTelemetry's instrumentor, measured in the same rounds.
Targets (added CPU): traced <= 1.0x the instrumentor's, observed <= 0.1x of it. Usage:

    ./dev bench inprocess [--queries 20000] [--rounds 50] [--dsn postgresql://...]

``./dev bench`` installs the ``bench`` extra (the OpenTelemetry instrumentors) first.

Without --dsn the benchmark starts an embedded PostgreSQL of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight.embedded.postgres import EmbeddedPostgres

MODES = ["baseline", "bare", "disabled", "observed", "traced", "otel"]
DBSIGHT_MODES = ["disabled", "observed", "traced"]
TABLE_ROWS = 10_000
# Added CPU per query, as a multiple of OpenTelemetry's instrumentor's (measured alongside).
TARGET_RATIOS = {"observed": 0.1, "traced": 1.0}
# dbsight's own code alone (no I/O), CPU µs per statement.
PIPELINE_TARGETS_US = {"disabled": 0.5, "observed": 4.0, "traced": 30.0}

_perf_counter = time.perf_counter


class Modes:
    """Switches dbsight's configuration between the instrumented modes."""

    def __init__(self, slow_log: Path) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        common = dict(slow_query_log=slow_log, slow_query_threshold_ms=1000.0)
        self.settings = {
            "disabled": dbsight.Settings(enabled=False, **common),
            "observed": dbsight.Settings(tracing_enabled=False, **common),
            "traced": dbsight.Settings(tracing_enabled=True, trace_sample_rate=1.0, **common),
        }
        self.settings["unbatched"] = self.settings["observed"]

    def use(self, mode: str) -> None:
        if mode in DBSIGHT_MODES:
            _batch_sinks(mode != "unbatched")
            provider = self.provider if mode == "traced" else None
            dbsight.configure(self.settings[mode], tracer_provider=provider)
        self.exporter.clear()


def _batch_sinks(batched: bool) -> None:
    """dbsight's counting sinks batched (as shipped) or called for each statement."""
    from dbsight.export.prometheus import PrometheusSink
    from dbsight.stats import ParameterSamples, StatsSink

    for cls in (PrometheusSink, StatsSink, ParameterSamples):
        cls.batched = batched


Runner = Callable[[int], Awaitable[None]]


@dataclass
class Client:
    """A client's runner per mode; ``switch[mode]`` = (on, off) around that mode's blocks."""

    runners: dict[str, Runner]
    switch: dict[str, tuple[Callable[[], None], Callable[[], None]]] = field(default_factory=dict)


class Bare:
    """The simplest instrument that could work: two clock reads around each call."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.calls = 0


async def measure(run: Runner, n: int) -> tuple[float, float]:
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await run(n)
    return (time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n


async def bench_client(
    client: Client, modes: Modes, queries: int, rounds: int
) -> dict[str, dict[str, float]]:
    per_round = max(1, queries // rounds)
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}

    async def block(mode: str, n: int) -> tuple[float, float]:
        modes.use(mode)
        on, off = client.switch.get(mode, (_nothing, _nothing))
        on()
        try:
            return await measure(client.runners[mode], n)
        finally:
            off()

    for mode in MODES:  # warm up caches and prepared statements
        await block(mode, 200)
    for _ in range(rounds):
        order = list(MODES)
        random.shuffle(order)
        for mode in order:
            samples[mode].append(await block(mode, per_round))
    result: dict[str, dict[str, float]] = {}
    base = samples["baseline"]
    for mode in MODES:
        wall = [s[0] - b[0] for s, b in zip(samples[mode], base)]
        cpu = [s[1] - b[1] for s, b in zip(samples[mode], base)]
        result[mode] = {
            "mean_us": statistics.median(s[0] for s in samples[mode]) * 1e6,
            "added_wall_us": statistics.median(wall) * 1e6,
            "added_cpu_us": statistics.median(cpu) * 1e6,
        }
    return result


def _nothing() -> None:
    pass


async def setup_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_items;"
            "CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, price numeric);"
        )
        await conn.execute(
            "INSERT INTO bench_items SELECT g, 'item ' || g, g * 1.5 "
            "FROM generate_series(1, $1) g",
            TABLE_ROWS,
        )
        await conn.execute("ANALYZE bench_items")
    finally:
        await conn.close()


def ids(n: int) -> list[int]:
    return [random.randint(1, TABLE_ROWS) for _ in range(n)]


def _class_switch(
    instrumentor: Any, **kwargs: Any
) -> tuple[Callable[[], None], Callable[[], None]]:
    """OpenTelemetry's instrumentor on around a block and off after it (it patches classes)."""

    def on() -> None:
        instrumentor.instrument(skip_dep_check=True, **kwargs)

    def off() -> None:
        instrumentor.uninstrument()

    return on, off


async def asyncpg_client(dsn: str, stack: contextlib.AsyncExitStack, modes: Modes) -> Client:
    conns = {}
    for name in ("baseline", "bare", "dbsight", "otel"):
        conns[name] = conn = await asyncpg.connect(dsn)
        stack.push_async_callback(conn.close)
    handle = dbsight.instrument(conns["dbsight"])
    stack.callback(handle.uninstrument)
    sql = "SELECT id, name, price FROM bench_items WHERE id = $1"
    bare = Bare()

    async def bare_fetchrow(conn: Any, query: str, *args: Any) -> Any:
        started = _perf_counter()
        try:
            return await conn.fetchrow(query, *args)
        finally:
            bare.total_s += _perf_counter() - started
            bare.calls += 1

    def runner(conn: Any) -> Runner:
        async def run(n: int) -> None:
            for key in ids(n):
                await conn.fetchrow(sql, key)

        return run

    async def run_bare(n: int) -> None:
        conn = conns["bare"]
        for key in ids(n):
            await bare_fetchrow(conn, sql, key)

    runners = {m: runner(conns["dbsight"]) for m in DBSIGHT_MODES}
    runners.update(baseline=runner(conns["baseline"]), bare=run_bare, otel=runner(conns["otel"]))
    otel = _class_switch(AsyncPGInstrumentor(), tracer_provider=modes.provider)
    return Client(runners, {"otel": otel})


async def sqlalchemy_client(dsn: str, stack: contextlib.AsyncExitStack, modes: Modes) -> Client:
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    engines = {}
    for name in ("baseline", "bare", "dbsight", "otel"):
        engines[name] = engine = create_async_engine(url, pool_size=1)
        stack.push_async_callback(engine.dispose)
    handle = dbsight.instrument(engines["dbsight"])
    stack.callback(handle.uninstrument)
    stmt = text("SELECT id, name, price FROM bench_items WHERE id = :id")
    bare = Bare()

    async def bare_execute(conn: Any, statement: Any, params: Any) -> Any:
        started = _perf_counter()
        try:
            return await conn.execute(statement, params)
        finally:
            bare.total_s += _perf_counter() - started
            bare.calls += 1

    def runner(engine: Any, execute: Any = None) -> Runner:
        async def run(n: int) -> None:
            async with engine.connect() as conn:
                if execute is None:
                    for key in ids(n):
                        (await conn.execute(stmt, {"id": key})).first()
                else:
                    for key in ids(n):
                        (await execute(conn, stmt, {"id": key})).first()

        return run

    runners = {m: runner(engines["dbsight"]) for m in DBSIGHT_MODES}
    runners.update(
        baseline=runner(engines["baseline"]),
        bare=runner(engines["bare"], bare_execute),
        otel=runner(engines["otel"]),
    )
    otel = _class_switch(
        SQLAlchemyInstrumentor(),
        engine=engines["otel"].sync_engine,
        tracer_provider=modes.provider,
    )
    return Client(runners, {"otel": otel})


async def psycopg_client(dsn: str, stack: contextlib.AsyncExitStack, modes: Modes) -> Client:
    conns = {}
    for name in ("baseline", "bare", "dbsight", "otel"):
        conns[name] = conn = psycopg.connect(dsn, autocommit=True)
        stack.callback(conn.close)
    handle = dbsight.instrument(conns["dbsight"])
    stack.callback(handle.uninstrument)
    # one connection's cursor factory: the instrumentor patches no class here
    conns["otel"] = PsycopgInstrumentor().instrument_connection(
        conns["otel"], tracer_provider=modes.provider
    )
    stack.callback(PsycopgInstrumentor().uninstrument_connection, conns["otel"])
    sql = "SELECT id, name, price FROM bench_items WHERE id = %s"
    bare = Bare()

    def bare_execute(conn: Any, query: str, params: Any) -> Any:
        started = _perf_counter()
        try:
            return conn.execute(query, params)
        finally:
            bare.total_s += _perf_counter() - started
            bare.calls += 1

    def runner(conn: Any) -> Runner:
        async def run(n: int) -> None:
            for key in ids(n):
                conn.execute(sql, (key,)).fetchone()

        return run

    async def run_bare(n: int) -> None:
        conn = conns["bare"]
        for key in ids(n):
            bare_execute(conn, sql, (key,)).fetchone()

    runners = {m: runner(conns["dbsight"]) for m in DBSIGHT_MODES}
    runners.update(baseline=runner(conns["baseline"]), bare=run_bare, otel=runner(conns["otel"]))
    return Client(runners)


CLIENTS = {
    "asyncpg": asyncpg_client,
    "sqlalchemy-async": sqlalchemy_client,
    "psycopg": psycopg_client,
}


def pipeline_cost(modes: Modes, n: int = 50_000) -> dict[str, float]:
    """dbsight's own CPU per statement with no I/O: recorder.start + finish, all sinks.

    The same code the instruments run around each driver call; stable on a noisy machine,
    where the end-to-end figures above swing by tens of microseconds between runs."""
    from dbsight._runtime import recorder

    sql = "SELECT id, name, price FROM bench_items WHERE id = $1"

    def one() -> None:
        if recorder.active:
            ctx = recorder.start(sql, "postgresql", "asyncpg", (1,), database="bench")
            recorder.finish(ctx, 1)

    costs = {}
    for mode in DBSIGHT_MODES:
        modes.use(mode)
        costs[mode] = min(timeit.repeat(one, number=n, repeat=5)) / n * 1e6
    modes.provider.force_flush()
    return costs


def report(results: dict[str, dict[str, dict[str, float]]], queries: int, rounds: int) -> bool:
    print(f"\ndbsight in-process overhead: {queries} primary-key SELECTs per mode, "
          f"{rounds} interleaved rounds, Python {sys.version.split()[0]}")
    header = (f"{'client':<18}{'mode':<10}{'mean us/query':>14}{'ratio':>8}"
              f"{'added wall us':>15}{'added CPU us':>14}{'x otel':>8}{'target':>13}")
    print(header)
    print("-" * len(header))
    ok = True
    for client, modes in results.items():
        base = modes["baseline"]["mean_us"]
        otel = modes["otel"]["added_cpu_us"]
        for mode, row in modes.items():
            added = row["added_cpu_us"]
            versus = f"{added / otel:>8.2f}" if mode != "baseline" and otel > 0 else f"{'':>8}"
            mark = ""
            target = TARGET_RATIOS.get(mode)
            if target is not None:
                met = otel > 0 and added <= target * otel
                ok &= met
                mark = f"<= {target:.1f}x {'ok' if met else 'MISS'}"
            print(f"{client:<18}{mode:<10}{row['mean_us']:>14.1f}{row['mean_us'] / base:>8.3f}"
                  f"{row['added_wall_us']:>15.2f}{added:>14.2f}{versus}{mark:>13}")
    return ok


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000, help="queries per mode and client")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--dsn", help="PostgreSQL to use instead of an embedded one")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    parser.add_argument(
        "--unbatched", action="store_true", help="add the observed mode without batching"
    )
    args = parser.parse_args()
    if args.unbatched:
        MODES.insert(MODES.index("observed") + 1, "unbatched")
        DBSIGHT_MODES.append("unbatched")

    with contextlib.ExitStack() as sync_stack:
        dsn = args.dsn
        if dsn is None:
            server = sync_stack.enter_context(EmbeddedPostgres())
            dsn = server.dsn()
        tmp = Path(sync_stack.enter_context(tempfile.TemporaryDirectory()))
        await setup_table(dsn)
        modes = Modes(tmp / "slow.jsonl")
        results = {}
        for name in args.clients.split(","):
            async with contextlib.AsyncExitStack() as stack:
                client = await CLIENTS[name](dsn, stack, modes)
                results[name] = await bench_client(client, modes, args.queries, args.rounds)
        pipeline = pipeline_cost(modes)
        _batch_sinks(True)
        dbsight.configure(dbsight.Settings())
    met = report(results, args.queries, args.rounds)
    print("\n'x otel': added CPU per query over OpenTelemetry's instrumentor's, same rounds")
    print("\ndbsight pipeline alone (recorder + sinks, no I/O), CPU us per statement:")
    for mode, cost in pipeline.items():
        target = PIPELINE_TARGETS_US.get(mode)
        print(f"  {mode:<10}{cost:>8.2f}" + (f"   target {target:.1f}" if target else ""))
    print("\nall targets met" if met else "\nsome targets missed (added CPU per query)")


if __name__ == "__main__":
    asyncio.run(main())
