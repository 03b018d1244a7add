"""What dbsight's in-process instrumentation costs per query, on real PostgreSQL.

For asyncpg, SQLAlchemy async (asyncpg driver) and psycopg 3 (sync), primary-key SELECTs run
in interleaved rounds in five modes, so that drift on a noisy machine hits every mode alike:

  baseline   the client, uninstrumented
  disabled   instrumented, with dbsight disabled (Settings(enabled=False))
  observed   metrics + statistics + slow-query log on, tracing off
  traced     as observed, plus OpenTelemetry SDK spans (in-memory exporter) for every query

Each round runs a block of queries per mode in a shuffled order; the added cost of a mode is
the median over rounds of (mode - baseline) per query, in wall time and in this process's CPU
time (the instrumentation's cost is CPU spent in this process; the server's share is the same
in every mode). Usage:

    ./dev bench inprocess [--queries 20000] [--rounds 20] [--dsn postgresql://...]

Without --dsn the benchmark starts an embedded PostgreSQL of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import dbsight
from dbsight.embedded.postgres import EmbeddedPostgres

MODES = ("baseline", "disabled", "observed", "traced")
TABLE_ROWS = 10_000
TARGETS_US = {"disabled": 0.5, "observed": 8.0, "traced": 25.0}


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

    def use(self, mode: str) -> None:
        if mode == "baseline":
            return
        provider = self.provider if mode == "traced" else None
        dbsight.configure(self.settings[mode], tracer_provider=provider)
        self.exporter.clear()


Runner = Callable[[int], Awaitable[None]]


async def measure(run: Runner, n: int) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await run(n)
    return (time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n


async def bench_client(
    name: str, plain: Runner, instrumented: Runner, modes: Modes, queries: int, rounds: int
) -> dict[str, dict[str, float]]:
    per_round = max(1, queries // rounds)
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    await plain(200)  # warm up caches and prepared statements
    for mode in MODES[1:]:
        modes.use(mode)
        await instrumented(200)
    for _ in range(rounds):
        order = list(MODES)
        random.shuffle(order)
        for mode in order:
            modes.use(mode)
            runner = plain if mode == "baseline" else instrumented
            samples[mode].append(await measure(runner, per_round))
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


async def asyncpg_runners(dsn: str, stack: contextlib.AsyncExitStack) -> tuple[Runner, Runner]:
    plain_conn = await asyncpg.connect(dsn)
    inst_conn = await asyncpg.connect(dsn)
    stack.push_async_callback(plain_conn.close)
    stack.push_async_callback(inst_conn.close)
    handle = dbsight.instrument(inst_conn)
    stack.callback(handle.uninstrument)
    sql = "SELECT id, name, price FROM bench_items WHERE id = $1"

    def runner(conn: Any) -> Runner:
        async def run(n: int) -> None:
            for key in ids(n):
                await conn.fetchrow(sql, key)

        return run

    return runner(plain_conn), runner(inst_conn)


async def sqlalchemy_runners(dsn: str, stack: contextlib.AsyncExitStack) -> tuple[Runner, Runner]:
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    plain_engine = create_async_engine(url, pool_size=1)
    inst_engine = create_async_engine(url, pool_size=1)
    stack.push_async_callback(plain_engine.dispose)
    stack.push_async_callback(inst_engine.dispose)
    handle = dbsight.instrument(inst_engine)
    stack.callback(handle.uninstrument)
    stmt = text("SELECT id, name, price FROM bench_items WHERE id = :id")

    def runner(engine: Any) -> Runner:
        async def run(n: int) -> None:
            async with engine.connect() as conn:
                for key in ids(n):
                    (await conn.execute(stmt, {"id": key})).first()

        return run

    return runner(plain_engine), runner(inst_engine)


async def psycopg_runners(dsn: str, stack: contextlib.AsyncExitStack) -> tuple[Runner, Runner]:
    plain_conn = psycopg.connect(dsn, autocommit=True)
    inst_conn = psycopg.connect(dsn, autocommit=True)
    stack.callback(plain_conn.close)
    stack.callback(inst_conn.close)
    handle = dbsight.instrument(inst_conn)
    stack.callback(handle.uninstrument)
    sql = "SELECT id, name, price FROM bench_items WHERE id = %s"

    def runner(conn: Any) -> Runner:
        async def run(n: int) -> None:
            for key in ids(n):
                conn.execute(sql, (key,)).fetchone()

        return run

    return runner(plain_conn), runner(inst_conn)


CLIENTS = {
    "asyncpg": asyncpg_runners,
    "sqlalchemy-async": sqlalchemy_runners,
    "psycopg": psycopg_runners,
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
    for mode in MODES[1:]:
        modes.use(mode)
        costs[mode] = min(timeit.repeat(one, number=n, repeat=5)) / n * 1e6
    modes.provider.force_flush()
    return costs


def report(results: dict[str, dict[str, dict[str, float]]], queries: int, rounds: int) -> bool:
    print(f"\ndbsight in-process overhead: {queries} primary-key SELECTs per mode, "
          f"{rounds} interleaved rounds, Python {sys.version.split()[0]}")
    header = (f"{'client':<18}{'mode':<10}{'mean us/query':>14}{'ratio':>8}"
              f"{'added wall us':>15}{'added CPU us':>14}{'target us':>11}")
    print(header)
    print("-" * len(header))
    ok = True
    for client, modes in results.items():
        base = modes["baseline"]["mean_us"]
        for mode, row in modes.items():
            target = TARGETS_US.get(mode)
            mark = ""
            if target is not None:
                met = row["added_cpu_us"] <= target
                ok &= met
                mark = f"{target:>8.1f} {'ok' if met else 'MISS'}"
            print(f"{client:<18}{mode:<10}{row['mean_us']:>14.1f}{row['mean_us'] / base:>8.3f}"
                  f"{row['added_wall_us']:>15.2f}{row['added_cpu_us']:>14.2f}{mark:>11}")
    return ok


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000, help="queries per mode and client")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--dsn", help="PostgreSQL to use instead of an embedded one")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    args = parser.parse_args()

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
                plain, instrumented = await CLIENTS[name](dsn, stack)
                results[name] = await bench_client(
                    name, plain, instrumented, modes, args.queries, args.rounds
                )
        pipeline = pipeline_cost(modes)
        dbsight.configure(dbsight.Settings())
    met = report(results, args.queries, args.rounds)
    print("\ndbsight pipeline alone (recorder + sinks, no I/O), CPU us per statement:")
    for mode, cost in pipeline.items():
        print(f"  {mode:<10}{cost:>8.2f}   target {TARGETS_US[mode]:.1f}")
    print("\nall targets met" if met else "\nsome targets missed (CPU µs added per query)")


if __name__ == "__main__":
    asyncio.run(main())
