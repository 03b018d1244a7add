"""A private, throw-away MariaDB server started from the locally installed binaries.

    with EmbeddedMariaDB() as db:
        dsn = db.create_database("app")     # mysql://root@127.0.0.1:PORT/app
        kwargs = db.connect_kwargs("app")   # for pymysql.connect(**kwargs)

The data directory is created with ``mariadb-install-db`` (root with an empty password,
no test database) in a temporary directory; the server listens on a free loopback port and
on a unix socket in that directory. It never reads the machine's option files
(``--no-defaults``), so it cannot pick up the system server's datadir, socket or port.

mariadbd refuses to run as root without ``--user``: when the current process is root, the
setup and the server run as the ``mysql`` OS user if it exists, else ``nobody``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

from dbsight.embedded._common import (
    Account,
    BinariesNotFoundError,
    EmbeddedError,
    ServerProcess,
    child_env,
    make_workdir,
    register,
    remove_workdir,
    resolve_account,
    run_tool,
    tcp_exchange,
    terminate,
    unregister,
    wait_until,
)

__all__ = ["EmbeddedMariaDB", "MariaDBNotFoundError", "find_mariadb_binaries"]

HOST = "127.0.0.1"
DEFAULT_ACCOUNTS = ("mysql", "nobody")
_SEARCH_DIRS = (
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/local/mysql/bin",
)

# Server options shared by the bootstrap (install-db passes unknown options to mariadbd)
# and the server itself. Small, fast, not durable.
_SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    # io_uring/libaio are often unavailable or limited in containers; tests don't need them.
    "--innodb-use-native-aio=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
)


class MariaDBNotFoundError(BinariesNotFoundError):
    """mariadbd, mariadb-install-db or the mariadb client is not installed."""


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for directory in _SEARCH_DIRS:
            candidate = Path(directory) / name
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def find_mariadb_binaries() -> tuple[str, str, str]:
    """Paths of (server, install-db script, command-line client)."""
    server = _which("mariadbd", "mysqld")
    install_db = _which("mariadb-install-db", "mysql_install_db")
    client = _which("mariadb", "mysql")
    missing = [
        label
        for label, path in (
            ("mariadbd", server),
            ("mariadb-install-db", install_db),
            ("mariadb (client)", client),
        )
        if path is None
    ]
    if missing or server is None or install_db is None or client is None:
        raise MariaDBNotFoundError(
            f"MariaDB binaries not found: {', '.join(missing)} (searched $PATH and "
            f"{', '.join(_SEARCH_DIRS)}); install e.g. `apt-get install mariadb-server`"
        )
    out = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    if "mariadb" not in out.lower():
        raise MariaDBNotFoundError(
            f"{server} is not MariaDB ({out.strip()!r}); only MariaDB is supported"
        )
    return server, install_db, client


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class EmbeddedMariaDB(ServerProcess):
    """A private MariaDB server; see the module docstring.

    Arguments mirror :class:`dbsight.embedded.postgres.EmbeddedPostgres`.
    """

    host = HOST
    user = "root"

    def __init__(
        self,
        *,
        port: int | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        run_as: str | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 60.0,
        die_with_parent: bool | None = None,
    ) -> None:
        self._requested_port = port
        self._base_dir = base_dir
        self._run_as = run_as
        self._extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self._die_with_parent = die_with_parent

        self._binaries: tuple[str, str, str] | None = None
        self._account: Account | None = None
        super().__init__()

    # ------------------------------------------------------------------ properties

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "mysqld.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mariadb.log"

    @property
    def binaries(self) -> tuple[str, str, str]:
        if self._binaries is None:
            self._binaries = find_mariadb_binaries()
        return self._binaries

    @property
    def account(self) -> Account:
        if self._account is None:
            self._account = resolve_account(self._run_as, DEFAULT_ACCOUNTS)
        return self._account

    def dsn(self, dbname: str = "", user: str | None = None) -> str:
        """A ``mysql://root@127.0.0.1:port/dbname`` URL."""
        user = user or self.user
        return f"mysql://{quote(user, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect`` / ``MySQLdb.connect``."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": "",
        }
        if dbname:
            kwargs["database"] = dbname
        return kwargs

    def __repr__(self) -> str:
        where = f"port={self._port}" if self._port else "not started"
        return f"<EmbeddedMariaDB {where}>"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self.running:
            return self
        if self._workdir is not None:
            raise EmbeddedError("an EmbeddedMariaDB cannot be restarted after stop()")
        server, install_db, _client = self.binaries
        account = self.account
        self._workdir = make_workdir("mariadb", account, self._base_dir)
        register(self)
        try:
            (self.workdir / "tmp").mkdir()
            if not account.is_current:
                os.chown(self.workdir / "tmp", account.uid, account.gid)
            self._install(install_db, account)
            self._launch(server, account)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Normal shutdown (SIGTERM), SIGKILL if it hangs; remove the work directory."""
        unregister(self)
        if self._proc is not None:
            terminate(self._proc, [(signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)])
            self._proc = None
        remove_workdir(self._workdir)

    def _env(self) -> dict[str, str]:
        return child_env(self.account, self.workdir)

    def _install(self, install_db: str, account: Account) -> None:
        argv = [
            install_db,
            "--no-defaults",  # must come first: never read /etc/mysql/my.cnf
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *_SERVER_OPTIONS,
            *self._extra_args,
        ]
        run_tool(
            argv,
            account=account,
            env=self._env(),
            cwd=self.workdir,
            log_path=self.log_path,
            timeout=self.startup_timeout,
            what="mariadb-install-db",
        )

    def _launch(self, server: str, account: Account) -> None:
        def argv_for(port: int) -> list[str]:
            argv = [
                server,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                f"--port={port}",
                f"--bind-address={self.host}",
                f"--socket={self.socket_path}",
                f"--pid-file={self.workdir / 'mariadbd.pid'}",
                f"--tmpdir={self.workdir / 'tmp'}",
                "--skip-log-bin",
                "--max-connections=200",
                *_SERVER_OPTIONS,
                *self._extra_args,
            ]
            return argv

        self._spawn_on_free_port(
            argv_for,
            account=account,
            env=self._env(),
            cwd=self.workdir,
            death_signal=signal.SIGKILL,
            wait_ready=lambda: wait_until(
                self._ready,
                timeout=self.startup_timeout,
                what=f"waiting for {self!r} to accept connections",
                log_path=self.log_path,
                proc=self._proc,
            ),
        )

    def _ready(self) -> bool:
        # A protocol-10 handshake packet (byte 4) means the server is accepting connections.
        greeting = tcp_exchange(self.host, self.port, None)
        if len(greeting) < 5 or greeting[4] != 0x0A:
            return False
        try:
            datadir = self.execute("SELECT @@datadir", timeout=10)
        except EmbeddedError:
            return False
        # Ours, not another server that grabbed the port first.
        return os.path.normpath(datadir) == os.path.normpath(self.data_dir)

    # ------------------------------------------------------------------ SQL helpers

    def execute(self, sql: str, *, dbname: str | None = None, timeout: float = 60.0) -> str:
        """Run SQL with the mariadb client as root; tab-separated output without headers."""
        client = self.binaries[2]
        argv = [
            client,
            "--no-defaults",  # the machine's [client] section may point at its own socket
            f"--host={self.host}",
            f"--port={self.port}",
            "--protocol=TCP",
            f"--user={self.user}",
            "--batch",
            "--skip-column-names",
            "--connect-timeout=5",
            f"--execute={sql}",
        ]
        if dbname:
            argv.append(f"--database={dbname}")
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=child_env(Account.current(), self.workdir),
                timeout=timeout,
                check=False,
                cwd=self.workdir,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedError(
                f"mariadb client timed out after {timeout}s running {sql!r}"
            ) from None
        if proc.returncode != 0:
            raise EmbeddedError(f"mariadb client failed on {self!r}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create a database (utf8mb4) and return its DSN."""
        if len(name) > 64:
            raise ValueError(f"database name longer than 64 characters: {name!r}")
        self.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, first killing the sessions that use it."""
        ids = self.execute(
            "SELECT id FROM information_schema.processlist "
            f"WHERE db = {quote_literal(name)} AND id <> CONNECTION_ID()"
        )
        for session_id in re.findall(r"\d+", ids):
            try:
                self.execute(f"KILL {int(session_id)}")
            except EmbeddedError:
                pass  # already gone
        self.execute(
            f"SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS {quote_ident(name)}"
        )
