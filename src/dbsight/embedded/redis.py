"""A private, throw-away Redis server (no persistence) started from the local redis-server.

    with EmbeddedRedis() as r:
        url = r.url()          # redis://127.0.0.1:PORT/0

Redis is happy to run as any user, so it runs as the current one (pass ``run_as`` to change
that). Nothing is saved: ``--save "" --appendonly no``.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Self

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
    tcp_exchange,
    terminate,
    unregister,
    wait_until,
)

__all__ = ["EmbeddedRedis", "RedisNotFoundError", "find_redis_server"]

HOST = "127.0.0.1"
_SEARCH_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/opt/homebrew/bin")
_MAX_SOCKET_PATH = 100


class RedisNotFoundError(BinariesNotFoundError):
    """redis-server is not installed."""


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    for directory in _SEARCH_DIRS:
        candidate = Path(directory) / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisNotFoundError(
        "redis-server not found on $PATH or in "
        f"{', '.join(_SEARCH_DIRS)}; install e.g. `apt-get install redis-server`"
    )


def _encode_command(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(out)


class EmbeddedRedis(ServerProcess):
    """A private Redis server; see the module docstring."""

    host = HOST

    def __init__(
        self,
        *,
        port: int | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        run_as: str | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 30.0,
        die_with_parent: bool | None = None,
    ) -> None:
        self._requested_port = port
        self._base_dir = base_dir
        self._run_as = run_as
        self._extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self._die_with_parent = die_with_parent

        self._server: str | None = None
        super().__init__()

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    @property
    def socket_path(self) -> Path | None:
        path = self.workdir / "redis.sock"
        return path if len(str(path)) <= _MAX_SOCKET_PATH else None

    @property
    def account(self) -> Account:
        if self._run_as is None:
            return Account.current()
        return resolve_account(self._run_as, ())

    def url(self, db: int = 0) -> str:
        """A ``redis://127.0.0.1:port/db`` URL."""
        return f"redis://{self.host}:{self.port}/{db}"

    def __repr__(self) -> str:
        where = f"port={self._port}" if self._port else "not started"
        return f"<EmbeddedRedis {where}>"

    def start(self) -> Self:
        if self.running:
            return self
        if self._workdir is not None:
            raise EmbeddedError("an EmbeddedRedis cannot be restarted after stop()")
        server = self._server or find_redis_server()
        self._server = server
        account = self.account
        self._workdir = make_workdir("redis", account, self._base_dir)
        register(self)
        try:
            self._launch(server, account)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM (SIGKILL if it hangs) and remove the work directory."""
        unregister(self)
        if self._proc is not None:
            terminate(self._proc, [(signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)])
            self._proc = None
        remove_workdir(self._workdir)

    def _launch(self, server: str, account: Account) -> None:
        def argv_for(port: int) -> list[str]:
            argv = [
                server,
                "--port", str(port),
                "--bind", self.host,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--daemonize", "no",
                "--protected-mode", "yes",
                "--logfile", "",  # stdout, which goes to our log file
            ]  # fmt: skip
            if self.socket_path is not None:
                argv += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
            argv += self._extra_args
            return argv

        self._spawn_on_free_port(
            argv_for,
            account=account,
            env=child_env(account, self.workdir),
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
        # Not just PING: if another server grabbed the port first, it must not pass for ours.
        info = tcp_exchange(
            self.host, self.port, _encode_command("INFO", "server"), until=b"\r\nconfig_file:"
        )
        return self._proc is not None and f"\r\nprocess_id:{self._proc.pid}\r\n".encode() in info

    def ping(self) -> bool:
        """Whether the server answers PING with PONG."""
        return tcp_exchange(self.host, self.port, _encode_command("PING")).startswith(b"+PONG")
