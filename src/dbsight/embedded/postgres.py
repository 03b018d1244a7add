"""A private, throw-away PostgreSQL cluster started from the locally installed server binaries.

    with EmbeddedPostgres() as pg:
        dsn = pg.create_database("app")          # postgresql://postgres@127.0.0.1:PORT/app
        replica = pg.add_replica()               # streaming, hot standby, read-only
        ...
        replica.wait_for_replay()                # replica has caught up with the primary

The cluster listens on a free loopback port only, keeps its data, unix socket and log in a
temporary directory, uses trust authentication, and is tuned for speed over durability
(fsync, synchronous_commit and full_page_writes off). Its superuser is ``postgres``.

PostgreSQL refuses to run as root: when the current process is root the server (and initdb,
pg_basebackup) run as the ``postgres`` OS user if it exists, else ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self
from urllib.parse import quote

from dbsight.embedded._common import (
    Account,
    BinariesNotFoundError,
    EmbeddedError,
    ServerProcess,
    child_env,
    chown_tree,
    make_workdir,
    register,
    remove_workdir,
    resolve_account,
    run_tool,
    terminate,
    unregister,
    wait_until,
)

__all__ = ["EmbeddedPostgres", "PostgresNotFoundError", "find_pg_bindir", "pg_program"]

HOST = "127.0.0.1"
DEFAULT_ACCOUNTS = ("postgres", "nobody")
SETTING_VALUE = str | int | float | bool

# Applied to every embedded cluster (and inherited by replicas through pg_basebackup).
# Later entries in postgresql.conf win, so user settings are appended after these.
DEFAULT_SETTINGS: dict[str, SETTING_VALUE] = {
    "listen_addresses": HOST,
    "max_connections": 200,
    "shared_buffers": "32MB",
    "fsync": False,
    "synchronous_commit": False,
    "full_page_writes": False,
    "wal_level": "replica",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "hot_standby": True,
    "hot_standby_feedback": True,
    "wal_receiver_status_interval": "1s",
    "wal_writer_delay": "10ms",
    # pg_stat_statements: the server-side totals dbsight joins by fingerprint (advise, report)
    "shared_preload_libraries": "pg_stat_statements",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "logging_collector": False,
    "log_destination": "stderr",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "dynamic_shared_memory_type": "posix",
}

# Max length of a unix socket path (sun_path is 108 bytes on Linux, 104 on BSD/macOS).
_MAX_SOCKET_PATH = 100
_MAX_IDENTIFIER = 63


class PostgresNotFoundError(BinariesNotFoundError):
    """No PostgreSQL server binaries (initdb, postgres, pg_ctl) were found."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


_REQUIRED_TOOLS = ("initdb", "postgres", "psql")


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / tool, os.X_OK) for tool in _REQUIRED_TOOLS)


def pg_program(name: str) -> str:
    """A PostgreSQL client program (``psql``, ``pgbench``...): from ``$PATH``, else from the
    server binaries' directory; raises PostgresNotFoundError when neither has it."""
    found = shutil.which(name)
    if found is not None:
        return found
    candidate = find_pg_bindir() / name
    if os.access(candidate, os.X_OK):
        return str(candidate)
    raise PostgresNotFoundError(f"{name} is not installed (nor in {candidate.parent})")


def find_pg_bindir(bindir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the PostgreSQL server binaries.

    Order: the ``bindir`` argument, ``$DBSIGHT_PG_BINDIR``, ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu) or ``/usr/pgsql-*/bin`` (RHEL), and
    finally ``initdb`` on ``$PATH``.
    """
    tried: list[str] = []
    explicit = bindir if bindir is not None else os.environ.get("DBSIGHT_PG_BINDIR") or None
    if explicit is not None:
        path = Path(explicit)
        if _is_server_bindir(path):
            return path
        raise PostgresNotFoundError(
            f"no PostgreSQL server binaries ({', '.join(_REQUIRED_TOOLS)}) in {path}"
        )

    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            tried.append(f"pg_config --bindir ({out})")
            if _is_server_bindir(Path(out)):
                return Path(out)

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        tried.append(pattern)
        found = sorted(
            (p for p in Path("/").glob(pattern.lstrip("/")) if _is_server_bindir(p)),
            key=_version_key,
            reverse=True,
        )
        if found:
            return found[0]

    initdb = shutil.which("initdb")
    tried.append("initdb on $PATH")
    if initdb and _is_server_bindir(Path(initdb).parent):
        return Path(initdb).parent

    raise PostgresNotFoundError(
        "PostgreSQL server binaries not found (tried " + ", ".join(tried) + "). Install the "
        "server package (e.g. `apt-get install postgresql`) or set DBSIGHT_PG_BINDIR to the "
        "directory containing initdb, postgres and psql."
    )


def _pkglibdir(bindir: Path) -> Path:
    """The server's library directory (``pg_config --pkglibdir``), beside ``bindir``."""
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(pg_config), "--pkglibdir"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip())
    return bindir.parent / "lib"


def _format_setting(value: SETTING_VALUE) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _run_initdb(
    bindir: Path,
    account: Account,
    superuser: str,
    data_dir: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
) -> None:
    argv = [
        str(bindir / "initdb"),
        "-D", str(data_dir),
        "-U", superuser,
        "-A", "trust",
        "-E", "UTF8",
        "--locale=C",
        "--no-sync",
    ]  # fmt: skip
    run_tool(
        argv,
        account=account,
        env=env,
        cwd=data_dir.parent,
        log_path=log_path,
        timeout=timeout,
        what="initdb",
    )


class _InitdbCache:
    """Pristine initdb output, made once per process and copied for every new cluster.

    Copying the ~40 MB data directory takes a fraction of initdb's 1-2 s. The copies live in
    a work directory of their own, removed at exit like the servers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirs: dict[tuple[str, int, str], Path] = {}
        self._workdirs: list[Path] = []

    def data_dir(
        self,
        bindir: Path,
        account: Account,
        base_dir: str | os.PathLike[str] | None,
        superuser: str,
        timeout: float,
    ) -> Path:
        key = (str(bindir), account.uid, superuser)
        with self._lock:
            cached = self._dirs.get(key)
            if cached is not None and cached.is_dir():
                return cached
            workdir = make_workdir("pg-initdb", account, base_dir)
            self._workdirs.append(workdir)
            register(self)
            data_dir = workdir / "data"
            try:
                _run_initdb(
                    bindir, account, superuser, data_dir, child_env(account, workdir),
                    workdir / "initdb.log", timeout,
                )  # fmt: skip
            except BaseException:
                remove_workdir(workdir)
                raise
            self._dirs[key] = data_dir
            return data_dir

    def stop(self) -> None:
        with self._lock:
            for workdir in self._workdirs:
                remove_workdir(workdir)
            self._workdirs.clear()
            self._dirs.clear()
            unregister(self)


_INITDB_CACHE = _InitdbCache()


class EmbeddedPostgres(ServerProcess):
    """A private PostgreSQL cluster (or a streaming replica of one); see the module docstring.

    Arguments:
        bindir: directory of the server binaries (default: :func:`find_pg_bindir`).
        port: TCP port; default is a free one chosen at start.
        base_dir: where to create the temporary work directory (default: see
            :func:`dbsight.embedded._common.default_parents`: /dev/shm or $TMPDIR).
        run_as: OS user to run the server as (default: self, or ``postgres``/``nobody`` as root).
        settings: extra ``postgresql.conf`` settings, overriding the defaults.
        startup_timeout: seconds to wait for initdb/pg_basebackup and for the server to start.
        name: ``cluster_name`` (shows in process titles; replicas use it as application_name).
        die_with_parent: ask the kernel to stop the server if this process dies without
            cleaning up (Linux). ``None``: only when started from the main thread.
    """

    superuser = "postgres"
    host = HOST
    #: Copy a per-process initdb result instead of running initdb for every cluster.
    reuse_initdb = True

    def __init__(
        self,
        *,
        bindir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        run_as: str | None = None,
        settings: Mapping[str, SETTING_VALUE] | None = None,
        startup_timeout: float = 60.0,
        name: str = "dbsight",
        die_with_parent: bool | None = None,
    ) -> None:
        self._bindir_arg = bindir
        self._requested_port = port
        self._base_dir = base_dir
        self._run_as = run_as
        self._settings = dict(settings or {})
        self.startup_timeout = startup_timeout
        self.name = name
        self._die_with_parent = die_with_parent

        self._bindir: Path | None = None
        self._account: Account | None = None
        super().__init__()
        self._version: int | None = None
        self._primary: EmbeddedPostgres | None = None
        self._slot: str | None = None
        self._replicas: list[EmbeddedPostgres] = []

    # ------------------------------------------------------------------ properties

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def socket_dir(self) -> str | None:
        """The directory of the server's Unix socket, or None when it listens on TCP only
        (its working directory's path is too long for a socket)."""
        socket_dir = str(self.workdir)
        if len(socket_dir) + len("/.s.PGSQL.65535.lock") > _MAX_SOCKET_PATH:
            return None
        return socket_dir

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_pg_bindir(self._bindir_arg)
        return self._bindir

    @property
    def account(self) -> Account:
        """The OS account the server runs as."""
        if self._account is None:
            self._account = resolve_account(self._run_as, DEFAULT_ACCOUNTS)
        return self._account

    @property
    def version(self) -> int:
        """Major version of the server binaries (e.g. 15)."""
        if self._version is None:
            out = subprocess.run(
                [str(self.bindir / "postgres"), "--version"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            match = re.search(r"(\d+)", out)
            if not match:
                raise EmbeddedError(f"cannot parse `postgres --version` output: {out!r}")
            self._version = int(match.group(1))
        return self._version

    @property
    def is_replica(self) -> bool:
        return self._primary is not None

    @property
    def primary(self) -> EmbeddedPostgres | None:
        """For a replica: its primary."""
        return self._primary

    @property
    def replicas(self) -> list[EmbeddedPostgres]:
        return list(self._replicas)

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A ``postgresql://user@127.0.0.1:port/dbname`` URL (libpq, psycopg, asyncpg)."""
        user = user or self.superuser
        user_part = quote(user, safe="")
        return f"postgresql://{user_part}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def __repr__(self) -> str:
        role = "replica" if self.is_replica else "primary"
        where = f"port={self._port}" if self._port else "not started"
        return f"<EmbeddedPostgres {self.name} {role} {where}>"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Create the cluster (initdb, or pg_basebackup for a replica) and start it.

        Returns when the server accepts connections (read-only ones for a replica).
        """
        if self.running:
            return self
        if self._workdir is not None:
            raise EmbeddedError("an EmbeddedPostgres cannot be restarted after stop()")
        account = self.account
        bindir = self.bindir
        self._workdir = make_workdir("pg", account, self._base_dir)
        register(self)
        try:
            if self._primary is None:
                self._initdb(bindir, account)
            else:
                self._basebackup(bindir, account)
            self._launch(bindir, account)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (then immediate, then SIGKILL), and remove the work directory.

        Stopping a primary stops its replicas first. Safe to call more than once.
        """
        for replica in reversed(self._replicas):
            replica._stop(drop_slot=False)
        self._replicas.clear()
        self._stop(drop_slot=True)

    def pause(self) -> None:
        """Shut the server down (fast shutdown) but keep its data, so that `resume` can
        start it again on the same port: an outage, as a test of reconnection needs."""
        if self._proc is None:
            return
        terminate(self._proc, [(signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)])
        self._proc = None

    def resume(self) -> None:
        """Start a `pause`d server again, on the port it had."""
        if self._proc is not None:
            return
        if self._workdir is None:
            raise EmbeddedError("resume() needs a server that was started and paused")
        self._requested_port = self.port
        self._launch(self.bindir, self.account)

    def _stop(self, *, drop_slot: bool) -> None:
        unregister(self)
        if self._proc is not None:
            terminate(
                self._proc,
                [(signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)],
            )
            self._proc = None
        primary = self._primary
        if primary is not None:
            if self in primary._replicas:
                primary._replicas.remove(self)
            if drop_slot and self._slot and primary.running:
                self._drop_slot(primary, self._slot)
        remove_workdir(self._workdir)

    def _env(self) -> dict[str, str]:
        return child_env(self.account, self.workdir, {"PGTZ": "UTC"})

    def _initdb(self, bindir: Path, account: Account) -> None:
        if self.reuse_initdb:
            template = _INITDB_CACHE.data_dir(
                bindir, account, self._base_dir, self.superuser, self.startup_timeout
            )
            shutil.copytree(template, self.data_dir, symlinks=True)
            chown_tree(self.data_dir, account)
        else:
            _run_initdb(
                bindir, account, self.superuser, self.data_dir, self._env(), self.log_path,
                self.startup_timeout,
            )  # fmt: skip
        settings = {**DEFAULT_SETTINGS, **self._settings}
        if settings.get("shared_preload_libraries") == "pg_stat_statements" and not (
            _pkglibdir(bindir) / "pg_stat_statements.so"
        ).exists():  # a server without the contrib modules starts without it
            settings["shared_preload_libraries"] = ""
        lines = [f"{key} = {_format_setting(value)}" for key, value in settings.items()]
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# --- dbsight embedded settings ---\n" + "\n".join(lines) + "\n")

    def _basebackup(self, bindir: Path, account: Account) -> None:
        primary = self._primary
        assert primary is not None and self._slot is not None
        argv = [
            str(bindir / "pg_basebackup"),
            "-h", primary.host,
            "-p", str(primary.port),
            "-U", primary.superuser,
            "-D", str(self.data_dir),
            "-R",                      # standby.signal + primary_conninfo
            "-X", "stream",
            "-c", "fast",              # don't wait for a spread checkpoint
            "-C", "-S", self._slot,    # a slot: the primary keeps WAL the replica still needs
            "--no-sync",
            "-w",
        ]  # fmt: skip
        run_tool(
            argv,
            account=account,
            env=self._env(),
            cwd=self.workdir,
            log_path=self.log_path,
            timeout=self.startup_timeout,
            what=f"pg_basebackup from {primary.dsn()}",
        )
        if self._settings:
            lines = [f"{k} = {_format_setting(v)}" for k, v in self._settings.items()]
            with open(self.data_dir / "postgresql.conf", "a") as conf:
                conf.write("\n# --- dbsight replica settings ---\n" + "\n".join(lines) + "\n")

    def _launch(self, bindir: Path, account: Account) -> None:
        socket_dir = self.socket_dir or ""  # "": TCP only

        def argv_for(port: int) -> list[str]:
            argv = [
                str(bindir / "postgres"),
                "-D", str(self.data_dir),
                "-p", str(port),
                "-c", f"unix_socket_directories={socket_dir}",
                "-c", f"cluster_name={self.name}",
            ]  # fmt: skip
            return argv

        self._spawn_on_free_port(
            argv_for,
            account=account,
            env=self._env(),
            cwd=self.data_dir,
            death_signal=signal.SIGQUIT,  # immediate shutdown, stops the backends too
            wait_ready=self._wait_ready,
        )

    def _pidfile_status(self) -> str:
        """The status line of postmaster.pid: 'starting', 'ready', 'standby' or 'stopping'."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return ""
        return lines[7].strip() if len(lines) > 7 else ""

    def _wait_ready(self) -> None:
        in_recovery = "t" if self.is_replica else "f"

        def probe() -> bool:
            # A hot standby reports "standby" or (PostgreSQL 15) "ready" once it accepts
            # read-only connections; pg_is_in_recovery() tells the two roles apart.
            if self._pidfile_status() not in ("ready", "standby"):
                return False
            try:
                return self.execute("SELECT pg_is_in_recovery()", timeout=10) == in_recovery
            except EmbeddedError:
                return False

        wait_until(
            probe,
            timeout=self.startup_timeout,
            what=f"waiting for {self!r} to accept connections",
            log_path=self.log_path,
            proc=self._proc,
        )

    # ------------------------------------------------------------------ SQL helpers

    def execute(self, *sql: str, dbname: str = "postgres", timeout: float = 60.0) -> str:
        """Run SQL statements with psql as the superuser; returns the unaligned output.

        Each argument is sent as its own command (so its own transaction). The output has
        no headers; columns are separated by ``|``.
        """
        argv = [
            str(self.bindir / "psql"),
            "-X", "-q", "-A", "-t",
            "-v", "ON_ERROR_STOP=1",
            "-h", self.host,
            "-p", str(self.port),
            "-U", self.superuser,
            "-d", dbname,
        ]  # fmt: skip
        for statement in sql:
            argv += ["-c", statement]
        env = child_env(
            Account.current(),
            self.workdir,
            {"PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "dbsight-embedded", "PGSSLMODE": "disable"},
        )
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
                cwd=self.workdir,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedError(f"psql timed out after {timeout}s running {sql!r}") from None
        if proc.returncode != 0:
            raise EmbeddedError(f"psql failed on {self!r}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def create_database(
        self, name: str, *, owner: str | None = None, template: str = "template0"
    ) -> str:
        """Create a database and return its DSN."""
        if len(name.encode()) > _MAX_IDENTIFIER:
            raise ValueError(f"database name longer than {_MAX_IDENTIFIER} bytes: {name!r}")
        sql = f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(template)}"
        if owner:
            sql += f" OWNER {quote_ident(owner)}"
        self.execute(sql)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, disconnecting its sessions."""
        if self.version >= 13:
            self.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        else:
            self.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = {quote_literal(name)} AND pid <> pg_backend_pid()",
                f"DROP DATABASE IF EXISTS {quote_ident(name)}",
            )

    # ------------------------------------------------------------------ replication

    def add_replica(
        self, *, name: str | None = None, timeout: float | None = None
    ) -> EmbeddedPostgres:
        """Create and start a streaming hot-standby replica of this (primary) cluster.

        Returns once the replica accepts read-only connections, reports
        ``pg_is_in_recovery()`` and has replayed the primary's current WAL position.
        """
        if self.is_replica:
            raise EmbeddedError(
                "cascading replicas are not supported; call add_replica() on the primary"
            )
        if not self.running:
            raise EmbeddedError("start the primary before adding replicas")
        index = 1
        taken = {r.name for r in self._replicas}
        while f"{self.name}-replica{index}" in taken:
            index += 1
        replica = EmbeddedPostgres(
            bindir=self.bindir,
            base_dir=self._base_dir,
            run_as=self._run_as,
            startup_timeout=timeout or self.startup_timeout,
            name=name or f"{self.name}-replica{index}",
            die_with_parent=self._die_with_parent,
        )
        replica._account = self._account
        replica._primary = self
        slot = re.sub(r"[^a-z0-9_]", "_", replica.name.lower())
        replica._slot = f"{slot[:40]}_{os.getpid()}_{int(time.monotonic() * 1000) % 1_000_000}"
        self._replicas.append(replica)
        try:
            replica.start()
            replica.wait_for_replay(timeout=timeout or self.startup_timeout)
        except BaseException:
            replica._stop(drop_slot=True)
            raise
        return replica

    def current_lsn(self) -> str:
        """The WAL position everything committed so far ends at (flushed, so it replicates).

        On a primary this commits a tiny transaction with synchronous_commit on, so all
        earlier asynchronous commits are flushed and will be streamed; on a replica it is
        the last replayed position. The transaction must write WAL: PostgreSQL flushes at
        commit only then, and a bare ``txid_current()`` is committed asynchronously.
        """
        if self.is_replica:
            return self.execute("SELECT pg_last_wal_replay_lsn()")
        out = self.execute(
            "SET synchronous_commit = on",
            "SELECT pg_logical_emit_message(true, 'dbsight', 'flush')",
            "SELECT pg_current_wal_flush_lsn()",
        )
        return out.splitlines()[-1].strip()

    def wait_for_replay(self, lsn: str | None = None, *, timeout: float = 30.0) -> None:
        """Wait until this replica has replayed ``lsn`` (default: the primary's current LSN).

        On a primary, waits for all of its replicas.
        """
        if not self.is_replica:
            target = lsn or self.current_lsn()
            for replica in self._replicas:
                replica.wait_for_replay(target, timeout=timeout)
            return
        primary = self._primary
        assert primary is not None
        target = lsn or primary.current_lsn()
        check = f"SELECT pg_last_wal_replay_lsn() >= {quote_literal(target)}::pg_lsn"

        def probe() -> bool:
            try:
                return self.execute(check, timeout=10) == "t"
            except EmbeddedError:
                return False

        wait_until(
            probe,
            timeout=timeout,
            what=f"waiting for {self!r} to replay WAL up to {target}",
            log_path=self.log_path,
            proc=self._proc,
            interval=0.01,
        )

    @staticmethod
    def _drop_slot(primary: EmbeddedPostgres, slot: str) -> None:
        # The walsender may need a moment to notice the replica is gone.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                primary.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    f"WHERE slot_name = {quote_literal(slot)} AND NOT active"
                )
                remaining = primary.execute(
                    "SELECT count(*) FROM pg_replication_slots "
                    f"WHERE slot_name = {quote_literal(slot)}"
                )
            except EmbeddedError:
                return
            if remaining == "0":
                return
            time.sleep(0.05)
