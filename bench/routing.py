"""What read/write splitting and the result cache of `dbsight proxy` cost and give.

1. pgbench select-only (simple and prepared protocol) straight to the primary, through
   ``dbsight proxy --pool-mode transaction`` without replicas, and through it with two
   streaming replicas taking the reads, in transaction and in session mode: TPS and the ratio
   to direct, in interleaved rounds.
2. The latency of one cached answer against a server round trip: the same primary-key
   SELECT, one client, direct / through the proxy (no cache) / through the proxy with a
   cache rule for its table (every call after the first a hit).

Everything runs on an embedded primary with two replicas of the bench's own; every process
it starts is stopped at the end, also on Ctrl-C or an error. On one machine the replicas
share its CPUs with the primary and pgbench, so (1) shows what routing costs more than what
it scales; on separate hosts the replicas add their own CPUs.

    ./dev bench routing [--seconds 5] [--rounds 2] [--clients 8] [--calls 3000]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from dbsight.embedded import free_port
from dbsight.embedded.postgres import EmbeddedPostgres

HOST = "127.0.0.1"
DB = "bench"


@contextlib.contextmanager
def proxy(
    upstream: str, replicas: list[str], workdir: Path, cache: bool, mode: str = "transaction"
) -> Iterator[str]:
    """A ``dbsight proxy`` process in pool mode ``mode``; yields its client DSN."""
    port = free_port(HOST)
    config = workdir / f"proxy-{port}.toml"
    lines = [
        "[proxy]", f'listen = "{HOST}:{port}"', f'upstream = "{upstream}"',
        f'pool_mode = "{mode}"', "pool_size = 20", "read_your_writes_s = 0",
        f"replicas = {replicas!r}".replace("'", '"'),
    ]  # fmt: skip
    if cache:
        lines += ["[[proxy.cache]]", 'table = "pgbench_branches"', "ttl_s = 600"]
    config.write_text("\n".join(lines) + "\n")
    log = (workdir / f"proxy-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsight.cli", "proxy", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    dsn = f"postgresql://postgres@{HOST}:{port}/{DB}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"dbsight proxy did not start; see {log.name}") from None
                time.sleep(0.1)
        yield dsn
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def pgbench(dsn: str, protocol: str, clients: int, seconds: int) -> float:
    out = subprocess.run(
        [shutil.which("pgbench") or "pgbench", "-S", "-M", protocol, "-c", str(clients),
         "-j", "2", "-T", str(seconds), "-n", dsn],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
    if match is None:
        raise SystemExit(f"pgbench printed no tps:\n{out}")
    return float(match.group(1))


def latencies(dsn: str, calls: int) -> list[float]:
    """Seconds per call of one primary-key SELECT on one connection (simple protocol)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql = "SELECT bbalance FROM pgbench_branches WHERE bid = 1"
        conn.execute(sql)  # warm: connection, plan, cache fill
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            conn.execute(sql, prepare=False).fetchone()
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbsight-bench-")))
        primary = stack.enter_context(
            EmbeddedPostgres(name="dbsight-bench-routing", settings={"max_connections": 200})
        )
        replicas = [primary.add_replica(), primary.add_replica()]
        primary.create_database(DB)
        print("initialising: pgbench -i -s 10 ...", file=sys.stderr)
        subprocess.run(["pgbench", "-i", "-s", "10", "-q", primary.dsn(DB)],
                       capture_output=True, check=True)  # fmt: skip
        primary.wait_for_replay()
        direct = primary.dsn(DB)
        replica_dsns = [replica.dsn(DB) for replica in replicas]
        paths = {
            "direct (primary)": direct,
            "proxy, no replicas": stack.enter_context(proxy(direct, [], workdir, cache=False)),
            "proxy, 2 replicas": stack.enter_context(
                proxy(direct, replica_dsns, workdir, cache=False)
            ),
            "session, 2 replicas": stack.enter_context(
                proxy(direct, replica_dsns, workdir, cache=False, mode="session")
            ),
        }
        cached = stack.enter_context(proxy(direct, [], workdir, cache=True))

        results: dict[tuple[str, str], list[float]] = {}
        for number in range(1, args.rounds + 1):
            for protocol in ("simple", "prepared"):
                for name, dsn in paths.items():
                    tps = pgbench(dsn, protocol, args.clients, args.seconds)
                    results.setdefault((protocol, name), []).append(tps)
            print(f"  round {number}/{args.rounds} done", file=sys.stderr)
        timing = {
            "direct (primary)": latencies(direct, args.calls),
            "proxy, server round trip": latencies(paths["proxy, no replicas"], args.calls),
            "proxy, cache hit": latencies(cached, args.calls),
        }

    print(
        f"\npgbench -S, scale 10, {args.clients} clients, -j 2, {args.rounds} round(s) of "
        f"{args.seconds}s; embedded primary + 2 streaming replicas on this machine"
    )
    print(f"{'protocol':9} {'path':22} {'tps':>9} {'x direct':>9}")
    for protocol in ("simple", "prepared"):
        base = statistics.median(results[(protocol, "direct (primary)")])
        for name in paths:
            tps = statistics.median(results[(protocol, name)])
            print(f"{protocol:9} {name:22} {tps:9.0f} {tps / base:9.2f}")
    print(f"\none client, {args.calls} calls of a primary-key SELECT (simple protocol):")
    print(f"{'path':26} {'mean us':>9} {'p50 us':>9} {'p99 us':>9}")
    for name, values in timing.items():
        values.sort()
        print(
            f"{name:26} {statistics.fmean(values) * 1e6:9.1f} "
            f"{values[len(values) // 2] * 1e6:9.1f} {values[int(len(values) * 0.99)] * 1e6:9.1f}"
        )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # every server is stopped by now (the ExitStack unwound)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
