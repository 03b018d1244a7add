"""What `dbsight proxy` costs PostgreSQL clients: pgbench direct, through PgBouncer, through dbsight.

pgbench runs against one PostgreSQL (initialised with ``pgbench -i -s SCALE``) by these paths:

  direct                  straight to PostgreSQL: the baseline
  pgbouncer-session       PgBouncer, pool_mode = session
  pgbouncer-transaction   PgBouncer, pool_mode = transaction (Debian's PgBouncer is 1.18, which
                          has no prepared statements in transaction mode - they came in 1.21 -
                          so with 1.18 its prepared-protocol cases are skipped)
  dbsight-session         ``dbsight proxy`` in session mode, in a process
  dbsight-transaction     ``dbsight proxy --pool-mode transaction`` (20 server connections)
                          of its own, uvloop when installed, default settings: metrics and
                          statement statistics on
  bare-forwarder          ``bench/bare_forwarder.py``: one server connection per client, bytes
                          relayed as they arrive on uvloop, nothing parsed or observed - what
                          a Python relay costs by itself (the bench's yardstick, not shipped)
  bare-c-relay            ``bench/bare_c_relay.py``: the same relaying done in C (Cython, compiled
                          when it starts), its sockets in one epoll that uvloop watches, as
                          dbsight's are: nothing of Python's per chunk - the floor of a relay
                          on this event loop; skipped without Cython
  bare-pooler             ``bench/bare_pooler.py``: a transaction pooler of the same kind (20
                          server connections logged in once, a client's startup answered with
                          their ParameterStatus, a connection held from a client's message to
                          the idle ReadyForQuery, both directions walked message by message,
                          nothing observed): transaction mode's yardstick; simple protocol only
  bare-pooler-observed    the same with ``--observe``: each Query timed and counted under its
                          text with the literals blanked, the least a pooler that observes
                          every statement does

for every case: select-only (``-S``) and TPC-B-like (the default script), ``-M simple`` and
``-M prepared``, 8 and 64 clients (``-j 2``). Each round takes the cases in a shuffled order and
runs each case's paths back to back, themselves shuffled, so that drift on a noisy machine hits
every path alike and the runs a ratio compares are a minute apart, not a round; the ratios are
medians over rounds of the per-round ratio to direct, to PgBouncer's best path (the PgBouncer
path of highest median TPS in that case, chosen once) and (for dbsight) to the bare forwarder and
the bare C relay in that round (for dbsight in transaction mode also to the bare pooler). Latency
average is pgbench's; p50/p99 come from its per-transaction log (``--no-percentiles`` to skip).

PgBouncer is installed from the distribution's packages (``apt-get install pgbouncer``) when
missing and run as an unprivileged process of the bench's own with a generated ini, on a free
loopback port: no system service is touched. Every process the bench starts (PostgreSQL,
PgBouncer, dbsight proxy) is stopped when it ends, also on Ctrl-C, SIGTERM or an error.

    ./dev bench proxy [--seconds 10] [--rounds 3] [--scale 10] [--clients 8,64] [--quick]
                      [--targets direct,pgbouncer-session,...] [--dsn postgresql://...]

Without --dsn the benchmark starts an embedded PostgreSQL of its own; with it, give it a
database of its own (``pgbench -i`` recreates the pgbench_* tables there) whose
max_connections allows 3 x the largest client count.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

from dbsight.embedded import free_port
from dbsight.embedded._common import (
    Account,
    ServerProcess,
    child_env,
    make_workdir,
    register,
    remove_workdir,
    resolve_account,
    terminate,
    unregister,
    wait_until,
)
from dbsight.embedded.postgres import EmbeddedPostgres, find_pg_bindir
from dbsight.stats._histogram import exact_quantiles

HOST = "127.0.0.1"
BENCH_DB = "bench"
# Server connections of dbsight's transaction pool: enough for this 2-core server, and few
# enough that every target's connections fit under max_connections together.
TRANSACTION_POOL_SIZE = 20
TARGETS = (
    "direct", "pgbouncer-session", "pgbouncer-transaction", "dbsight-session",
    "dbsight-transaction", "bare-forwarder", "bare-c-relay", "bare-pooler", "bare-pooler-observed",
)
WORKLOADS = {"select-only": ["-S"], "tpcb-like": []}
PROTOCOLS = ("simple", "prepared")
# The targets for dbsight, x PgBouncer's best TPS: transaction mode's, and session mode's.
MIN_TPS_VS_PGBOUNCER = {"dbsight-transaction": 0.85, "dbsight-session": 0.9}
MAX_ADDED_LATENCY_VS_PGBOUNCER = 1.3  # single client: latency added over direct
READY_TIMEOUT_S = 60.0
PGBOUNCER_PREPARED_IN_TRANSACTION_MODE = (1, 21)


@dataclass(frozen=True)
class Endpoint:
    """Where pgbench connects: libpq's host, port, user, database (and password, if any)."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = None

    @classmethod
    def from_dsn(cls, dsn: str) -> Endpoint:
        parts = urlsplit(dsn)
        return cls(
            host=parts.hostname or HOST,
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
            password=unquote(parts.password) if parts.password else None,
        )

    def url(self) -> str:
        if self.host.startswith("/"):  # a Unix-socket directory, as libpq takes it
            return f"postgresql://{self.user}@/{self.dbname}?host={self.host}&port={self.port}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def libpq_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGSSLMODE"] = "disable"  # the same start-up for every path
        env["PGCONNECT_TIMEOUT"] = "10"
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


@dataclass(frozen=True)
class Case:
    workload: str
    protocol: str
    clients: int


@dataclass(frozen=True)
class Sample:
    tps: float
    latency_ms: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Failure:
    reason: str


# -- the tools -------------------------------------------------------------------------------
class Tools:
    """pgbench and psql from the PostgreSQL server's binaries."""

    def __init__(self) -> None:
        bindir = find_pg_bindir()
        self.pgbench = str(bindir / "pgbench") if (bindir / "pgbench").exists() else None
        self.pgbench = self.pgbench or shutil.which("pgbench")
        if self.pgbench is None:
            raise SystemExit("pgbench not found: apt-get install postgresql-contrib")
        self.psql_path = str(bindir / "psql")

    def psql_ok(self, endpoint: Endpoint, sql: str = "SELECT 1") -> bool:
        argv = [self.psql_path, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                *endpoint.libpq_args(), "-d", endpoint.dbname, "-c", sql]  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired):
            done = subprocess.run(
                argv, env=endpoint.env(), capture_output=True, timeout=20, check=False
            )
            return done.returncode == 0
        return False

    def psql(self, endpoint: Endpoint, *sql: str) -> str:
        argv = [self.psql_path, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                *endpoint.libpq_args(), "-d", endpoint.dbname]  # fmt: skip
        for statement in sql:
            argv += ["-c", statement]
        done = subprocess.run(argv, env=endpoint.env(), capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql on {endpoint.url()} failed: {done.stderr.strip()}")
        return done.stdout.strip()


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/bin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def ensure_package(binary: str, package: str) -> str | None:
    """``binary``'s path, installing the distribution's ``package`` when it is missing and we
    may (apt-get, as root or through password-less sudo)."""
    found = _binary(binary)
    if found or shutil.which("apt-get") is None:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        return None
    print(f"installing {package} (apt-get install -y {package}) ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "install", "-y", "-qq", package], ["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", package]):  # fmt: skip
        subprocess.run(sudo + argv, env=env, capture_output=True, check=False, timeout=600)
        if _binary(binary):
            break
    return _binary(binary)


def ensure_pgbouncer() -> str | None:
    """PgBouncer's path, installing the distribution's package when it is missing and we may."""
    return ensure_package("pgbouncer", "pgbouncer")


def tool_version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    found = re.search(r"\d+\.\d+(\.\d+)?", out)
    return found.group(0) if found else "?"


# -- the servers the bench runs --------------------------------------------------------------
class BenchServer(ServerProcess):
    """A server process of the bench's own: a work directory, a free loopback port, ready once
    every endpoint answers ``SELECT 1``; stopped by ``stop()``, at exit, and by the kernel
    (parent-death signal) if the bench dies without cleaning up."""

    host = HOST
    kind = "server"

    def __init__(self, tools: Tools, account: Account) -> None:
        super().__init__()
        self.tools = tools
        self.account = account
        self._requested_port = None
        self._die_with_parent = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    def argv_for(self, port: int) -> list[str]:
        raise NotImplementedError

    def endpoints(self) -> dict[str, Endpoint]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return child_env(self.account, self.workdir)

    def start(self) -> Self:
        self._workdir = make_workdir(self.kind, self.account, None)
        register(self)
        try:
            self._spawn_on_free_port(
                self.argv_for, account=self.account, env=self.env(), cwd=self.workdir,
                death_signal=signal.SIGKILL, wait_ready=self._wait_ready,
            )  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        wait_until(
            lambda: all(self.tools.psql_ok(e) for e in self.endpoints().values()),
            timeout=READY_TIMEOUT_S, what=f"waiting for {self.kind} to relay queries",
            log_path=self.log_path, proc=self._proc,
        )  # fmt: skip

    def stop(self) -> None:
        unregister(self)
        if self._proc is not None:
            terminate(self._proc, [(signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)])
            self._proc = None
        remove_workdir(self._workdir)


class PgBouncer(BenchServer):
    """PgBouncer with one database alias per pool mode, both relaying to ``upstream``."""

    kind = "pgbouncer"
    MODES = ("session", "transaction")

    def __init__(self, tools: Tools, binary: str, upstream: Endpoint, max_clients: int) -> None:
        # PgBouncer refuses to run as root: as root, run it as postgres (or nobody)
        super().__init__(tools, resolve_account(None, ("postgres", "nobody")))
        self.binary = binary
        self.upstream = upstream
        self.max_clients = max_clients
        self.version = tool_version([binary, "--version"])

    @property
    def prepared_in_transaction_mode(self) -> bool:
        numbers = tuple(int(n) for n in self.version.split(".")[:2] if n.isdigit())
        return numbers >= PGBOUNCER_PREPARED_IN_TRANSACTION_MODE

    def endpoints(self) -> dict[str, Endpoint]:
        return {
            f"pgbouncer-{mode}": Endpoint(HOST, self.port, self.upstream.user, f"{BENCH_DB}_{mode}",
                                          self.upstream.password)
            for mode in self.MODES
        }  # fmt: skip

    def argv_for(self, port: int) -> list[str]:
        up = self.upstream
        password = f" password={up.password}" if up.password else ""
        databases = "\n".join(
            f"{BENCH_DB}_{mode} = host={up.host} port={up.port} dbname={up.dbname} "
            f"user={up.user}{password} pool_mode={mode}"
            for mode in self.MODES
        )
        pool = self.max_clients + 8  # session mode: a server connection per client, no waiting
        prepared = "max_prepared_statements = 200\n" if self.prepared_in_transaction_mode else ""
        userlist = self.workdir / "userlist.txt"
        userlist.write_text(f'"{up.user}" ""\n')
        ini = self.workdir / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\n{databases}\n\n[pgbouncer]\n"
            f"listen_addr = {HOST}\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {userlist}\n"
            f"pool_mode = session\ndefault_pool_size = {pool}\n"
            f"max_client_conn = {2 * pool + 20}\n{prepared}"
            "ignore_startup_parameters = extra_float_digits\n"
            "log_connections = 0\nlog_disconnections = 0\nstats_period = 3600\n"
        )
        for path in (userlist, ini):
            os.chown(path, self.account.uid, self.account.gid)
        return [self.binary, str(ini)]


class DbsightProxy(BenchServer):
    """``dbsight proxy`` with its default settings, plus an admin port (its readiness check)."""

    kind = "dbsight-proxy"

    def __init__(
        self, tools: Tools, upstream: Endpoint, mode: str = "session", pool_size: int = 0
    ) -> None:
        super().__init__(tools, Account.current())
        self.upstream = upstream
        self.mode = mode
        self.pool_size = pool_size
        self.admin_port = 0

    def endpoints(self) -> dict[str, Endpoint]:
        up = self.upstream
        name = f"dbsight-{self.mode}"
        return {name: Endpoint(HOST, self.port, up.user, up.dbname, up.password)}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if not k.startswith("DBSIGHT_")}
        env["DBSIGHT_SERVICE_NAME"] = "bench-proxy"
        return env

    def argv_for(self, port: int) -> list[str]:
        self.admin_port = free_port(HOST)
        argv = [sys.executable, "-m", "dbsight.cli", "proxy", "--listen", f"{HOST}:{port}",
                "--upstream", self.upstream.url(), "--admin", f"{HOST}:{self.admin_port}",
                "--pool-mode", self.mode]  # fmt: skip
        if self.pool_size:
            argv += ["--pool-size", str(self.pool_size)]
        return argv

    def _wait_ready(self) -> None:
        def admin_ready() -> bool:
            url = f"http://{HOST}:{self.admin_port}/health/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
            return False

        wait_until(admin_ready, timeout=READY_TIMEOUT_S, what="waiting for dbsight proxy's admin",
                   log_path=self.log_path, proc=self._proc)  # fmt: skip
        super()._wait_ready()

    def observed_statements(self) -> int | None:
        """Statements the proxy counted (its db_client_* metrics): proof that it observed."""
        with contextlib.suppress(OSError):
            url = f"http://{HOST}:{self.admin_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            counts = re.findall(r"^db_client_operations_total\{[^}]*\} ([\d.e+]+)$",
                                text, re.MULTILINE)  # fmt: skip
            return int(sum(float(c) for c in counts)) if counts else None
        return None


class BareForwarder(BenchServer):
    """``bench/bare_forwarder.py``: bytes relayed and nothing else, the yardstick for what
    dbsight's own work costs over a Python relay on the same event loop."""

    kind = "bare-forwarder"
    SCRIPT = Path(__file__).with_name("bare_forwarder.py")

    def __init__(self, tools: Tools, upstream: Endpoint) -> None:
        super().__init__(tools, Account.current())
        self.upstream = upstream

    def endpoints(self) -> dict[str, Endpoint]:
        up = self.upstream
        return {"bare-forwarder": Endpoint(HOST, self.port, up.user, up.dbname, up.password)}

    def argv_for(self, port: int) -> list[str]:
        up = self.upstream
        return [sys.executable, str(self.SCRIPT), "--listen", f"{HOST}:{port}",
                "--upstream", f"{up.host.rstrip('/')}:{up.port}"]  # fmt: skip


class BareCRelay(BareForwarder):
    """``bench/bare_c_relay.py``: bytes relayed in C on the same event loop, the floor under
    what any relay of dbsight's kind costs (see the module docstring)."""

    kind = "bare-c-relay"
    SCRIPT = Path(__file__).with_name("bare_c_relay.py")

    def endpoints(self) -> dict[str, Endpoint]:
        up = self.upstream
        return {"bare-c-relay": Endpoint(HOST, self.port, up.user, up.dbname, up.password)}


class BarePooler(BenchServer):
    """``bench/bare_pooler.py``: transaction pooling and nothing else (``observe``: and the
    least statement statistics), the yardstick for dbsight's transaction mode."""

    SCRIPT = Path(__file__).with_name("bare_pooler.py")

    def __init__(self, tools: Tools, upstream: Endpoint, observe: bool = False) -> None:
        super().__init__(tools, Account.current())
        self.upstream = upstream
        self.observe = observe
        self.kind = "bare-pooler-observed" if observe else "bare-pooler"

    def endpoints(self) -> dict[str, Endpoint]:
        up = self.upstream
        return {self.kind: Endpoint(HOST, self.port, up.user, up.dbname, up.password)}

    def argv_for(self, port: int) -> list[str]:
        up = self.upstream
        return [sys.executable, str(self.SCRIPT), "--listen", f"{HOST}:{port}",
                "--upstream", f"{up.host.rstrip('/')}:{up.port}", "--user", up.user,
                "--dbname", up.dbname, "--pool-size", str(TRANSACTION_POOL_SIZE),
                *(["--observe"] if self.observe else [])]  # fmt: skip


# -- pgbench -----------------------------------------------------------------------------------
def _log_latencies(logdir: Path) -> list[int]:
    """Per-transaction latencies (µs) from pgbench's ``-l`` logs (third field; failed or
    skipped transactions are logged with a word there and left out)."""
    latencies: list[int] = []
    for path in logdir.iterdir():
        with open(path) as log:
            for line in log:
                fields = line.split(" ", 3)
                if len(fields) > 2 and fields[2].isdigit():
                    latencies.append(int(fields[2]))
    return latencies


def run_pgbench(tools: Tools, endpoint: Endpoint, case: Case, seconds: int,
                logdir: Path | None) -> Sample | Failure:  # fmt: skip
    assert tools.pgbench is not None
    argv = [
        tools.pgbench, "-n", "-M", case.protocol, "-c", str(case.clients),
        "-j", str(min(2, case.clients)), "-T", str(seconds), *WORKLOADS[case.workload],
        *endpoint.libpq_args(),
    ]  # fmt: skip
    if logdir is not None:
        shutil.rmtree(logdir, ignore_errors=True)
        logdir.mkdir()
        argv += ["-l", "--log-prefix", str(logdir / "txn")]
    argv.append(endpoint.dbname)
    try:
        done = subprocess.run(argv, env=endpoint.env(), capture_output=True, text=True,
                              timeout=seconds + 120, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Failure("pgbench timed out")
    tps = re.search(
        r"^tps = ([\d.]+) \(without initial connection time\)", done.stdout, re.MULTILINE
    )
    latency = re.search(r"^latency average = ([\d.]+) ms", done.stdout, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", done.stdout, re.MULTILINE)
    if (
        done.returncode != 0
        or tps is None
        or latency is None
        or (failed and failed.group(1) != "0")
    ):
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        reason = next((ln for ln in lines if "error" in ln.lower()), lines[-1])
        return Failure(f"pgbench exit {done.returncode}: {reason.strip()[:120]}")
    p50 = p99 = None
    if logdir is not None:
        latencies = _log_latencies(logdir)
        shutil.rmtree(logdir, ignore_errors=True)
        if latencies:  # µs; the method of every percentile dbsight reports
            p50, p99 = (us / 1000.0 for us in exact_quantiles(latencies, (0.50, 0.99)))
    return Sample(float(tps.group(1)), float(latency.group(1)), p50, p99)


def init_pgbench(tools: Tools, endpoint: Endpoint, scale: int) -> None:
    assert tools.pgbench is not None
    argv = [tools.pgbench, "-i", "-q", "-s", str(scale), *endpoint.libpq_args(), endpoint.dbname]
    done = subprocess.run(argv, env=endpoint.env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {done.stderr.strip()}")


def reset_tpcb(tools: Tools, direct: Endpoint) -> None:
    """What pgbench does before a run without ``-n``, done directly so that it never counts
    against a path: the TPC-B-like tables stay the same size from run to run."""
    tools.psql(direct, "VACUUM pgbench_branches", "VACUUM pgbench_tellers",
               "TRUNCATE pgbench_history")  # fmt: skip


# -- the benchmark ----------------------------------------------------------------------------
Result = Sample | Failure


def skip_reason(target: str, case: Case, pgbouncer: PgBouncer | None) -> str | None:
    if (target == "pgbouncer-transaction" and case.protocol == "prepared" and pgbouncer
            and not pgbouncer.prepared_in_transaction_mode):  # fmt: skip
        return f"PgBouncer {pgbouncer.version}: no prepared statements in transaction mode"
    if target.startswith("bare-pooler") and case.protocol == "prepared":
        return "simple protocol only (a prepared statement lives on one server connection)"
    return None


def measure(tools: Tools, endpoints: dict[str, Endpoint], plan: list[tuple[Case, str]],
            rounds: int, seconds: int, logdir: Path | None) -> dict[tuple[Case, str], list[Result]]:  # fmt: skip
    direct = endpoints["direct"]
    warmups = sorted({(case.clients, target) for case, target in plan})
    for clients, target in warmups:  # server connections, pools, caches
        run_pgbench(tools, endpoints[target], Case("select-only", "simple", clients), 1, None)
    results: dict[tuple[Case, str], list[Result]] = {}
    by_case: dict[Case, list[str]] = {}
    for case, target in plan:
        by_case.setdefault(case, []).append(target)
    for number in range(1, rounds + 1):
        order: list[tuple[Case, str]] = []
        for case in random.sample(list(by_case), len(by_case)):
            paths = by_case[case]
            order.extend((case, target) for target in random.sample(paths, len(paths)))
        for case, target in order:
            if case.workload == "tpcb-like":
                reset_tpcb(tools, direct)
            result = run_pgbench(tools, endpoints[target], case, seconds, logdir)
            results.setdefault((case, target), []).append(result)
            if isinstance(result, Failure):
                print(f"  {target} {case}: {result.reason}", file=sys.stderr)
        print(f"  round {number}/{rounds} done", file=sys.stderr)
    return results


def _ms(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def _median_ratio(pairs: list[tuple[float, float]]) -> float | None:
    return statistics.median(a / b for a, b in pairs) if pairs else None


def report(cases: list[Case], targets: list[str], results: dict[tuple[Case, str], list[Result]],
           skipped: dict[tuple[Case, str], str]) -> bool:  # fmt: skip
    header = (f"{'workload':<12}{'protocol':<10}{'clients':>7}  {'path':<23}{'tps':>9}"
              f"{'lat avg ms':>11}{'p50 ms':>8}{'p99 ms':>8}{'x direct':>9}{'x pgb best':>11}"
              f"{'x bare':>8}{'x c-relay':>10}{'x pooler':>9}{'added ms':>9}  target")  # fmt: skip
    print(header)
    print("-" * len(header))
    ok = True
    pgb_targets = [t for t in targets if t.startswith("pgbouncer-")]
    for case in cases:
        rounds = len(next((r for (c, _), r in results.items() if c == case), []))
        first = True
        for target in targets:
            label = (f"{case.workload:<12}{case.protocol:<10}{case.clients:>7}" if first
                     else " " * 29)  # fmt: skip
            first = False
            if (case, target) in skipped:
                print(f"{label}  {target:<23}{'skipped: ' + skipped[(case, target)]}")
                continue
            runs = results.get((case, target), [])
            good = [r for r in runs if isinstance(r, Sample)]
            if not good:
                reason = next((r.reason for r in runs if isinstance(r, Failure)), "no runs")
                print(f"{label}  {target:<23}failed: {reason}")
                if target.startswith("dbsight"):
                    ok = False
                continue
            per_round = [
                (_sample(results, case, target, n), _sample(results, case, "direct", n),
                 _pgb_best(results, case, pgb_targets, n))
                for n in range(rounds)
            ]  # fmt: skip
            bares = [_sample(results, case, "bare-forwarder", n) for n in range(rounds)]
            x_bare = _median_ratio([(s.tps, b.tps) for (s, _, _), b in zip(per_round, bares)
                                    if s and b])  # fmt: skip
            floors = [_sample(results, case, "bare-c-relay", n) for n in range(rounds)]
            x_floor = _median_ratio([(s.tps, f.tps) for (s, _, _), f in zip(per_round, floors)
                                     if s and f])  # fmt: skip
            poolers = [_sample(results, case, "bare-pooler", n) for n in range(rounds)]
            x_pooler = _median_ratio([(s.tps, b.tps) for (s, _, _), b
                                      in zip(per_round, poolers) if s and b])  # fmt: skip
            x_direct = _median_ratio([(s.tps, d.tps) for s, d, _ in per_round if s and d])
            x_pgb = _median_ratio([(s.tps, b.tps) for s, _, b in per_round if s and b])
            added = [s.latency_ms - d.latency_ms for s, d, _ in per_round if s and d]
            added_ms = statistics.median(added) if added else None
            p50s = [s.p50_ms for s in good if s.p50_ms is not None]
            p99s = [s.p99_ms for s in good if s.p99_ms is not None]
            row = (f"{label}  {target:<23}{statistics.median(s.tps for s in good):>9.0f}"
                   f"{statistics.median(s.latency_ms for s in good):>11.3f}"
                   f"{_ms(statistics.median(p50s) if p50s else None):>8}"
                   f"{_ms(statistics.median(p99s) if p99s else None):>8}"
                   f"{x_direct if x_direct is not None else float('nan'):>9.3f}")  # fmt: skip
            if target == "direct":
                print(row)
                continue
            row += (
                f"{x_pgb:>11.3f}"
                if x_pgb is not None and not target.startswith("pgbouncer")
                else " " * 11
            )
            row += (
                f"{x_bare:>8.3f}"
                if x_bare is not None and target.startswith("dbsight")
                else " " * 8
            )
            row += (
                f"{x_floor:>10.3f}"
                if x_floor is not None and target.startswith("dbsight")
                else " " * 10
            )
            row += (
                f"{x_pooler:>9.3f}"
                if x_pooler is not None
                and (target == "dbsight-transaction" or target == "bare-pooler-observed")
                else " " * 9
            )
            row += f"{_ms(added_ms):>9}"
            if target.startswith("dbsight"):
                met, target_text = _check(case, per_round, x_pgb, MIN_TPS_VS_PGBOUNCER[target])
                if met is not None:
                    ok &= met
                    row += f"  {target_text} {'ok' if met else 'MISS'}"
            print(
                row + (f"  ({len(runs) - len(good)} failed runs)" if len(good) < len(runs) else "")
            )
    return ok


def _sample(results: dict[tuple[Case, str], list[Result]], case: Case, target: str,
            number: int) -> Sample | None:  # fmt: skip
    """The target's sample of round ``number``, or None where that run failed."""
    runs = results.get((case, target), [])
    found = runs[number] if number < len(runs) else None
    return found if isinstance(found, Sample) else None


def _pgb_best(results: dict[tuple[Case, str], list[Result]], case: Case, pgb_targets: list[str],
              number: int) -> Sample | None:  # fmt: skip
    """Round ``number``'s sample of PgBouncer's best path for ``case``: the one of highest
    median TPS over the rounds, chosen once (the higher of two paths' samples in each round
    would also pick each round's luckier run, a bias of about half the run-to-run spread)."""
    medians = {
        t: statistics.median(s.tps for s in good)
        for t in pgb_targets
        if (good := [r for r in results.get((case, t), []) if isinstance(r, Sample)])
    }
    if not medians:
        return None
    return _sample(results, case, max(medians, key=medians.__getitem__), number)


def _check(case: Case, per_round: list[tuple[Sample | None, Sample | None, Sample | None]],
           x_pgb: float | None, least: float) -> tuple[bool | None, str]:  # fmt: skip
    """The targets: at least ``least`` x PgBouncer's best TPS (0.85 in transaction mode, 0.9
    in session mode); with one client, the latency added over direct at most 1.3x what
    PgBouncer adds."""
    if case.clients == 1:
        ratios = [(s.latency_ms - d.latency_ms) / (b.latency_ms - d.latency_ms)
                  for s, d, b in per_round if s and d and b and b.latency_ms > d.latency_ms]  # fmt: skip
        if not ratios:
            return None, ""
        ratio = statistics.median(ratios)
        return ratio <= MAX_ADDED_LATENCY_VS_PGBOUNCER, (
            f"added {ratio:.2f}x pgb's <= {MAX_ADDED_LATENCY_VS_PGBOUNCER}"
        )
    if x_pgb is None:
        return None, ""
    return x_pgb >= least, f">= {least}x pgb"


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C does, so every server is stopped in order."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per pgbench run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i -s SCALE")
    parser.add_argument("--clients", default="8,64", help="comma-separated client counts")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s per run")
    parser.add_argument(
        "--no-percentiles", action="store_true", help="skip pgbench's per-transaction log (p50/p99)"
    )
    parser.add_argument("--dsn", help="PostgreSQL to use instead of an embedded one")
    parser.add_argument(
        "--upstream-socket", help="with --dsn: the server's Unix-socket directory, for the poolers"
    )
    parser.add_argument(
        "--tcp", action="store_true", help="poolers reach the server over TCP, not its socket"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 3, 1
    clients = [int(c) for c in args.clients.split(",")]
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    if "direct" not in targets:
        targets.insert(0, "direct")
    cases = [Case(w, p, c) for w in WORKLOADS for p in PROTOCOLS for c in clients]
    tools = Tools()
    pgbouncer_binary = None
    if any(t.startswith("pgbouncer-") for t in targets):
        pgbouncer_binary = ensure_pgbouncer()
        if pgbouncer_binary is None:
            print(
                "PgBouncer unavailable (no apt-get, or not allowed): its paths are left out",
                file=sys.stderr,
            )
            targets = [t for t in targets if not t.startswith("pgbouncer-")]

    with stop_on_sigterm(), contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbsight-bench-proxy-")))
        if args.dsn is None:
            # 3 x clients: direct's, PgBouncer's two pools (idle server connections stay), spare;
            # and the two bare poolers' connections, open from their start
            settings = {
                "max_connections": 3 * max(clients) + 40 + 2 * TRANSACTION_POOL_SIZE,
                "shared_buffers": "128MB",
            }
            server = stack.enter_context(EmbeddedPostgres(name="dbsight-bench", settings=settings))
            direct = Endpoint.from_dsn(server.create_database(BENCH_DB))
            socket_dir = server.socket_dir
        else:
            direct = Endpoint.from_dsn(args.dsn)
            socket_dir = args.upstream_socket
        # The poolers reach the server through its Unix socket when there is one, as when they
        # run on the database host: cheaper than loopback TCP, for PgBouncer and dbsight alike.
        upstream = replace(direct, host=socket_dir) if socket_dir and not args.tcp else direct
        server_version = tools.psql(direct, "SHOW server_version").split()[0]
        max_conn = int(tools.psql(direct, "SHOW max_connections"))
        if max_conn < 3 * max(clients) + 10:
            print(
                f"warning: max_connections is {max_conn}; with {max(clients)} clients "
                f"{3 * max(clients) + 10} or more avoid refused connections",
                file=sys.stderr,
            )
        print(f"initialising: pgbench -i -s {args.scale} ...", file=sys.stderr)
        init_pgbench(tools, direct, args.scale)
        endpoints = {"direct": direct}
        pgbouncer = None
        if pgbouncer_binary is not None:
            pgbouncer = PgBouncer(tools, pgbouncer_binary, upstream, max(clients))
            endpoints.update(stack.enter_context(pgbouncer).endpoints())
        proxy = None
        if "dbsight-session" in targets:
            proxy = stack.enter_context(DbsightProxy(tools, upstream))
            endpoints.update(proxy.endpoints())
        if "dbsight-transaction" in targets:
            pooled = stack.enter_context(
                DbsightProxy(tools, upstream, "transaction", pool_size=TRANSACTION_POOL_SIZE)
            )
            endpoints.update(pooled.endpoints())
        if "bare-forwarder" in targets:
            bare = stack.enter_context(BareForwarder(tools, upstream))
            endpoints.update(bare.endpoints())
        if "bare-c-relay" in targets:
            if importlib.util.find_spec("pyximport") is None:
                print("Cython unavailable: the bare C relay is left out", file=sys.stderr)
                targets.remove("bare-c-relay")
            else:
                floor = stack.enter_context(BareCRelay(tools, upstream))
                endpoints.update(floor.endpoints())
        for observe in (False, True):
            if ("bare-pooler-observed" if observe else "bare-pooler") in targets:
                pooler = stack.enter_context(BarePooler(tools, upstream, observe))
                endpoints.update(pooler.endpoints())
        skipped = {(c, t): why for c in cases for t in targets
                   if (why := skip_reason(t, c, pgbouncer))}  # fmt: skip
        plan = [(c, t) for c in cases for t in targets if (c, t) not in skipped]
        logdir = None if args.no_percentiles else tmp / "pgbench-log"
        print(
            f"running {len(plan)} pgbench runs x {args.rounds} rounds of {args.seconds}s ...",
            file=sys.stderr,
        )
        results = measure(tools, endpoints, plan, args.rounds, args.seconds, logdir)
        observed = proxy.observed_statements() if proxy is not None else None

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    print(
        f"\ndbsight proxy vs PgBouncer vs direct: pgbench {tool_version([tools.pgbench, '--version'])}"
        f" on PostgreSQL {server_version}, scale {args.scale}, -j 2, {args.rounds} interleaved "
        f"round(s) of {args.seconds}s per run; PgBouncer {pgbouncer.version if pgbouncer else '-'}; "
        f"dbsight proxy on {loop}, default settings; poolers to the server over "
        f"{'its Unix socket' if upstream.host.startswith('/') else 'TCP'}; {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    if observed is not None:
        print(f"dbsight proxy observed {observed} statements (its db_client_* metrics)")
    print(
        "x direct, x pgb best, x bare (dbsight over the bare forwarder), x pooler (dbsight's "
        "transaction mode and the observing bare pooler over the bare pooler): medians over "
        "rounds of per-round TPS ratios; added ms: median latency average over direct's\n"
    )
    met = report(cases, targets, results, skipped)
    print(
        "\nall targets met"
        if met
        else "\nsome targets missed (>= 0.85x PgBouncer's best in transaction mode, >= 0.9x in "
        "session mode)"
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # every server is stopped by now (the ExitStack unwound)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
