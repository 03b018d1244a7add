"""Where a relay's CPU goes: user and system CPU per transaction of each path, pgbench -S.

`bench/proxy.py` measures what clients get (tps, latency); this measures what each relay
process spends to give it, which is what dbsight's own work is cut against. For each path in
turn, pgbench -S (``-M simple`` and ``-M prepared``, 8 clients, ``-j 2``) runs through one relay
process, whose user and system CPU are read from ``/proc/<pid>/stat`` before and after the
run and divided by the transactions pgbench counted:

  pgbouncer                PgBouncer, transaction pool (session pool with -M prepared on a
                           PgBouncer before 1.21, which has no prepared statements there)
  bare-forwarder           ``bench/bare_forwarder.py``: bytes relayed, nothing parsed
  bare-c-relay             ``bench/bare_c_relay.py``: bytes relayed in C on the same event loop
                           (no Python object per chunk): the floor of a relay of this kind
  dbsight-session-off      ``dbsight proxy`` in session mode with ``DBSIGHT_ENABLED=false``:
                           the relay and its tracking alone
  dbsight-session          session mode, default settings (every statement observed)
  dbsight-transaction-off  transaction mode (20 server connections), ``DBSIGHT_ENABLED=false``
  dbsight-transaction      transaction mode, default settings
  bare-pooler              ``bench/bare_pooler.py``: transaction pooling alone (simple protocol)
  bare-pooler-observed     the same, each Query timed and counted (``--observe``)

Rounds interleave the paths (a shuffled order each round); the figures are medians over
rounds. Every relay reaches the server through its Unix socket, as in `bench/proxy.py`, whose
servers and tools this script reuses. CPU time is the relay's alone: pgbench and PostgreSQL
are the same for every path.

    ./dev bench proxy_cpu [--seconds 4] [--rounds 2] [--clients 8] [--dsn postgresql://...]

Without --dsn the benchmark starts an embedded PostgreSQL of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from dbsight.embedded.postgres import EmbeddedPostgres


def _load_proxy_bench() -> ModuleType:
    """``bench/proxy.py`` as a module (this folder is not on sys.path: ``python -P``)."""
    path = Path(__file__).with_name("proxy.py")
    spec = importlib.util.spec_from_file_location("dbsight_bench_proxy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_proxy_bench()
PATHS = (
    "pgbouncer", "bare-forwarder", "bare-c-relay", "dbsight-session-off", "dbsight-session",
    "dbsight-transaction-off", "dbsight-transaction", "bare-pooler", "bare-pooler-observed",
)  # fmt: skip


def skipped(path: str, protocol: str) -> bool:
    """The bare poolers speak the simple protocol only."""
    return path.startswith("bare-pooler") and protocol == "prepared"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class QuietProxy(bench.DbsightProxy):  # type: ignore[name-defined,misc]
    """``dbsight proxy`` with observation off (``DBSIGHT_ENABLED=false``)."""

    def env(self) -> dict[str, str]:
        env: dict[str, str] = super().env()
        env["DBSIGHT_ENABLED"] = "false"
        return env


@dataclass(frozen=True)
class Cpu:
    user_us: float
    system_us: float
    tps: float


def process_cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


def measure_path(
    tools: object, endpoint: object, pid: int, case: object, seconds: int
) -> Cpu | str:
    """One pgbench run through the relay ``pid``: its CPU per transaction, or why it failed."""
    user0, system0 = process_cpu_s(pid)
    sample = bench.run_pgbench(tools, endpoint, case, seconds, None)
    user1, system1 = process_cpu_s(pid)
    if isinstance(sample, bench.Failure):
        return sample.reason
    transactions = sample.tps * seconds
    if transactions <= 0:
        return "no transactions"
    return Cpu(
        (user1 - user0) * 1e6 / transactions, (system1 - system0) * 1e6 / transactions, sample.tps
    )


def bench_server(stack: contextlib.ExitStack, tools: object, args: argparse.Namespace) -> object:
    """The PostgreSQL the relays reach (``--dsn``, else an embedded one ``stack`` stops),
    initialised for pgbench -S; returns the endpoint the relays use (its Unix socket when
    there is one)."""
    if args.dsn is None:
        settings = {  # (the bare poolers' connections are open from their start)
            "max_connections": 3 * args.clients + 40 + 2 * bench.TRANSACTION_POOL_SIZE,
            "shared_buffers": "128MB",
        }
        server = stack.enter_context(EmbeddedPostgres(name="dbsight-bench", settings=settings))
        direct = bench.Endpoint.from_dsn(server.create_database(bench.BENCH_DB))
        socket_dir = server.socket_dir
    else:
        direct = bench.Endpoint.from_dsn(args.dsn)
        socket_dir = args.upstream_socket
    print(f"initialising: pgbench -i -s {args.scale} ...", file=sys.stderr)
    bench.init_pgbench(tools, direct, args.scale)
    return replace(direct, host=socket_dir) if socket_dir else direct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="per pgbench run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i -s SCALE")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset")
    parser.add_argument("--dsn", help="PostgreSQL to use instead of an embedded one")
    parser.add_argument(
        "--upstream-socket", help="with --dsn: the server's Unix-socket directory, for the relays"
    )
    args = parser.parse_args()
    paths = [p for p in PATHS if p in args.paths.split(",")]
    tools = bench.Tools()
    pgbouncer_binary = bench.ensure_pgbouncer() if "pgbouncer" in paths else None
    if "pgbouncer" in paths and pgbouncer_binary is None:
        print("PgBouncer unavailable: its path is left out", file=sys.stderr)
        paths.remove("pgbouncer")
    cases = [bench.Case("select-only", protocol, args.clients) for protocol in bench.PROTOCOLS]

    with bench.stop_on_sigterm(), contextlib.ExitStack() as stack:
        upstream = bench_server(stack, tools, args)

        relays: dict[str, tuple[object, int, object]] = {}  # path -> (endpoint(s), pid, server)
        if pgbouncer_binary is not None:
            bouncer = stack.enter_context(
                bench.PgBouncer(tools, pgbouncer_binary, upstream, args.clients)
            )
            relays["pgbouncer"] = (bouncer.endpoints(), bouncer.pid, bouncer)
        makers = {
            "bare-forwarder": lambda: bench.BareForwarder(tools, upstream),
            "bare-c-relay": lambda: bench.BareCRelay(tools, upstream),
            "dbsight-session-off": lambda: QuietProxy(tools, upstream),
            "dbsight-session": lambda: bench.DbsightProxy(tools, upstream),
            "dbsight-transaction-off": lambda: QuietProxy(
                tools, upstream, "transaction", pool_size=bench.TRANSACTION_POOL_SIZE
            ),
            "dbsight-transaction": lambda: bench.DbsightProxy(
                tools, upstream, "transaction", pool_size=bench.TRANSACTION_POOL_SIZE
            ),
            "bare-pooler": lambda: bench.BarePooler(tools, upstream),
            "bare-pooler-observed": lambda: bench.BarePooler(tools, upstream, observe=True),
        }
        for path in paths:
            if path in makers:
                relay = stack.enter_context(makers[path]())
                (endpoint,) = relay.endpoints().values()
                relays[path] = (endpoint, relay.pid, relay)

        results: dict[tuple[str, str], list[Cpu]] = {}
        failures: dict[tuple[str, str], str] = {}
        for round_no in range(args.rounds):
            plan = [
                (case, path) for case in cases for path in paths
                if not skipped(path, case.protocol)
            ]  # fmt: skip
            random.shuffle(plan)
            for case, path in plan:
                endpoint, pid, relay = relays[path]
                if path == "pgbouncer":
                    prepared_ok = relay.prepared_in_transaction_mode
                    mode = "session" if case.protocol == "prepared" and not prepared_ok else (
                        "transaction"
                    )
                    endpoint = endpoint[f"pgbouncer-{mode}"]
                got = measure_path(tools, endpoint, pid, case, args.seconds)
                if isinstance(got, str):
                    failures[(case.protocol, path)] = got
                else:
                    results.setdefault((case.protocol, path), []).append(got)
            print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    print(
        f"\nCPU per transaction of each relay process: pgbench -S, {args.clients} clients, -j 2, "
        f"{args.rounds} interleaved round(s) of {args.seconds}s; medians over rounds; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(f"{'protocol':<9} {'path':<24} {'tps':>8} {'user us':>8} {'system us':>10} {'x bare':>7}")
    print("-" * 70)
    for case in cases:
        bare = results.get((case.protocol, "bare-forwarder"))
        bare_user = statistics.median(c.user_us for c in bare) if bare else None
        for path in paths:
            key = (case.protocol, path)
            if skipped(path, case.protocol):
                continue
            if key in failures and key not in results:
                print(f"{case.protocol:<9} {path:<24} failed: {failures[key]}")
                continue
            runs = results[key]
            user = statistics.median(c.user_us for c in runs)
            system = statistics.median(c.system_us for c in runs)
            tps = statistics.median(c.tps for c in runs)
            ratio = f"{user / bare_user:.1f}" if bare_user and path != "bare-forwarder" else ""
            print(f"{case.protocol:<9} {path:<24} {tps:>8.0f} {user:>8.1f} {system:>10.1f} "
                  f"{ratio:>7}")  # fmt: skip
    print("(x bare: user CPU over the bare forwarder's)")


if __name__ == "__main__":
    main()
