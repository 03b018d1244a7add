"""What each relay executes per transaction: user-space instructions under callgrind, pgbench -S.

`bench/proxy_cpu.py` reads each relay's CPU time, which drifts by tens of per cent on a shared
machine; instruction counts do not (two runs of one tree agree within about 1 %), so a cut of
a few per cent in dbsight's own work shows here in one run. Each relay runs under ``valgrind
--tool=callgrind`` with instrumentation off until it is warm; then, for each case, callgrind
counts from zero over ``--transactions`` pgbench -S transactions (8 clients, ``-j 2``) and the
count is divided by them. Paths as in `bench/proxy_cpu.py` but PgBouncer (it runs as another
user, whose process ``callgrind_control`` does not reach here; its CPU is in `proxy_cpu`): the
bare forwarder, dbsight in session and transaction mode, with observation off
(``DBSIGHT_ENABLED=false``) and with default settings, and the bare pooler without and with
its statement statistics (simple protocol only).
Relays run 20–50 times slower under callgrind: the counts, not the rates, are the result.
Kernel time (the reads and writes, the same for every relay) is not counted.

    ./dev bench proxy_instructions [--transactions 2000] [--paths ...] [--dsn postgresql://...]

Needs valgrind (installed from the distribution when missing and we may). Without --dsn the
benchmark starts an embedded PostgreSQL of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _load(name: str) -> ModuleType:
    """A sibling bench script as a module (this folder is not on sys.path: ``python -P``)."""
    spec = importlib.util.spec_from_file_location(
        f"dbsight_bench_{name}", Path(__file__).with_name(f"{name}.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cpu = _load("proxy_cpu")  # (which loads bench/proxy.py as cpu.bench)
bench = cpu.bench
PATHS: tuple[str, ...] = tuple(path for path in cpu.PATHS if path != "pgbouncer")
WARM_UP_TRANSACTIONS = 200  # per client, instrumentation off: imports, caches, pools filled


class UnderCallgrind:
    """Mixed in ahead of a bench server class: its process runs under callgrind, counting
    nothing until `count_from_zero`."""

    workdir: Path
    pid: int

    def argv_for(self, port: int) -> list[str]:
        argv: list[str] = super().argv_for(port)  # type: ignore[misc]
        out = self.workdir / "callgrind.out"
        return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=yes",
                f"--vgdb-prefix={self.workdir / 'vgdb'}", f"--callgrind-out-file={out}",
                *argv]  # fmt: skip

    def control(self, *argv: str) -> None:
        """``callgrind_control`` on the relay, with its environment (vgdb finds the process by
        the user name in it) and its vgdb prefix."""
        command = [
            "callgrind_control",
            f"--vgdb-prefix={self.workdir / 'vgdb'}",
            *argv,
            str(self.pid),
        ]
        done = subprocess.run(command, env=self.env(), capture_output=True, text=True,  # type: ignore[attr-defined]
                              check=False, timeout=120)  # fmt: skip
        if done.returncode != 0 or "rror" in done.stdout + done.stderr:
            raise RuntimeError(f"callgrind_control {' '.join(argv)}: {done.stdout.strip()[:160]}")

    def count_from_zero(self) -> None:
        self.control("--instr=on")
        self.control("--zero")

    def counted(self) -> int:
        """Instructions since `count_from_zero` (a dump), instrumentation off again."""
        self.control("--dump")
        self.control("--instr=off")
        dumps = sorted(self.workdir.glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump in {self.workdir}")
        found = re.search(r"^summary: (\d+)", dumps[-1].read_text(errors="replace"), re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no summary in {dumps[-1]}")
        return int(found.group(1))


def _wrapped(base: type) -> type:
    return type(f"{base.__name__}UnderCallgrind", (UnderCallgrind, base), {})


def run_transactions(
    tools: Any, endpoint: Any, protocol: str, clients: int, per_client: int
) -> int:
    """pgbench -S: ``per_client`` transactions on each of ``clients``; the count processed."""
    argv = [tools.pgbench, "-n", "-S", "-M", protocol, "-c", str(clients), "-j", str(min(2, clients)),
            "-t", str(per_client), *endpoint.libpq_args(), endpoint.dbname]  # fmt: skip
    done = subprocess.run(argv, env=endpoint.env(), capture_output=True, text=True,
                          timeout=3600, check=False)  # fmt: skip
    found = re.search(
        r"^number of transactions actually processed: (\d+)", done.stdout, re.MULTILINE
    )
    if done.returncode != 0 or found is None:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise RuntimeError(f"pgbench exit {done.returncode}: {lines[-1][:160]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000, help="counted, per case")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i -s SCALE")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset")
    parser.add_argument("--dsn", help="PostgreSQL to use instead of an embedded one")
    parser.add_argument(
        "--upstream-socket", help="with --dsn: the server's Unix-socket directory, for the relays"
    )
    args = parser.parse_args()
    if bench.ensure_package("callgrind_control", "valgrind") is None:
        raise SystemExit("valgrind (callgrind_control) not found: apt-get install valgrind")
    paths = [p for p in PATHS if p in args.paths.split(",")]
    tools = bench.Tools()
    per_client = max(1, args.transactions // args.clients)
    counts: dict[tuple[str, str], float | str] = {}

    with bench.stop_on_sigterm(), contextlib.ExitStack() as stack:
        upstream = cpu.bench_server(stack, tools, args)
        pool = bench.TRANSACTION_POOL_SIZE
        makers = {
            "bare-forwarder": lambda: _wrapped(bench.BareForwarder)(tools, upstream),
            "dbsight-session-off": lambda: _wrapped(cpu.QuietProxy)(tools, upstream),
            "dbsight-session": lambda: _wrapped(bench.DbsightProxy)(tools, upstream),
            "dbsight-transaction-off": lambda: _wrapped(cpu.QuietProxy)(
                tools, upstream, "transaction", pool_size=pool
            ),
            "dbsight-transaction": lambda: _wrapped(bench.DbsightProxy)(
                tools, upstream, "transaction", pool_size=pool
            ),
            "bare-pooler": lambda: _wrapped(bench.BarePooler)(tools, upstream),
            "bare-pooler-observed": lambda: _wrapped(bench.BarePooler)(
                tools, upstream, observe=True
            ),
        }
        for path in paths:  # one relay at a time: each slows the machine while it runs
            with makers[path]() as relay:
                (endpoint,) = relay.endpoints().values()
                for protocol in bench.PROTOCOLS:
                    if cpu.skipped(path, protocol):
                        continue
                    try:
                        run_transactions(tools, endpoint, protocol, args.clients,
                                         WARM_UP_TRANSACTIONS // args.clients)  # fmt: skip
                        relay.count_from_zero()
                        done = run_transactions(tools, endpoint, protocol, args.clients, per_client)
                        counts[(protocol, path)] = relay.counted() / done
                    except (RuntimeError, subprocess.SubprocessError) as exc:
                        counts[(protocol, path)] = str(exc)
            print(f"  {path} done", file=sys.stderr)

    print(
        f"\nUser-space instructions per transaction of each relay process (callgrind): pgbench -S, "
        f"{args.clients} clients, -j 2, {per_client * args.clients} transactions a case; "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'protocol':<9} {'path':<24} {'k instr':>8} {'x bare':>7}")
    print("-" * 51)
    for protocol in bench.PROTOCOLS:
        bare = counts.get((protocol, "bare-forwarder"))
        for path in paths:
            if cpu.skipped(path, protocol):
                continue
            got = counts[(protocol, path)]
            if isinstance(got, str):
                print(f"{protocol:<9} {path:<24} failed: {got}")
                continue
            ratio = (
                f"{got / bare:.1f}" if isinstance(bare, float) and path != "bare-forwarder" else ""
            )
            print(f"{protocol:<9} {path:<24} {got / 1000:>8.1f} {ratio:>7}")


if __name__ == "__main__":
    main()
