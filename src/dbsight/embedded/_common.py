"""Shared machinery for the embedded servers: accounts, work directories, processes, waits.

Every embedded server lives in its own work directory (``<dir>/dbsight-<kind>-XXXXXXXX``,
where ``<dir>`` is ``$DBSIGHT_EMBEDDED_DIR``, else ``/dev/shm`` when it is a tmpfs with room,
else ``$TMPDIR``/``/tmp``) that holds its data, sockets and log. The guarantees we aim for:

* servers never run as root: PostgreSQL refuses to, mariadbd wants ``--user``; when the
  current process is root the server is started as an unprivileged OS account (switched
  with ``subprocess.Popen(user=, group=, extra_groups=[])``, i.e. setgroups/setregid/setreuid
  in the forked child before ``exec``), and the work directory is chowned to that account;
* nothing is left behind: servers are stopped by ``stop()``, by the context manager, by
  an ``atexit`` hook, and - if the owning process dies without running any of those
  (``SIGKILL``, a crash) - by the kernel, through ``PR_SET_PDEATHSIG`` on Linux. Work
  directories of dead owners are swept the next time any embedded server starts.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from .._process import pid_alive, process_start_time

__all__ = [
    "Account",
    "BinariesNotFoundError",
    "EmbeddedError",
    "StartupError",
    "free_port",
    "resolve_account",
]

WORKDIR_PREFIX = "dbsight-"
OWNER_FILE = ".dbsight-owner"


class EmbeddedError(RuntimeError):
    """Base class for errors raised by the embedded servers."""


class ServerProcess:
    """What every embedded server shares: its process, port and work directory, and
    ``with server:`` starting and stopping it. Subclasses implement ``start``/``stop``,
    ``log_path`` and set the attributes annotated here."""

    host: str
    _requested_port: int | None
    _die_with_parent: bool | None

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def __init__(self) -> None:
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedError("the server is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise EmbeddedError("the server is not started")
        return self._workdir

    def _spawn_on_free_port(
        self,
        argv_for: Callable[[int], list[str]],
        *,
        account: Account,
        env: Mapping[str, str],
        cwd: Path,
        death_signal: int,
        wait_ready: Callable[[], None],
    ) -> None:
        """Start the server on a free port (or the requested one) and wait until it is ready;
        when another process took the port in between, try again on a new one."""
        requested = self._requested_port
        log_path = self.log_path
        attempts = 1 if requested else 5
        for attempt in range(attempts):
            port = requested or free_port(self.host)
            log_offset = log_path.stat().st_size if log_path.exists() else 0
            self._port = port
            self._proc = spawn_server(
                argv_for(port),
                account=account,
                env=env,
                cwd=cwd,
                log_path=log_path,
                death_signal=death_signal,
                die_with_parent=self._die_with_parent,
            )
            try:
                wait_ready()
                return
            except StartupError:
                exited = self._proc.poll() is not None
                with open(log_path, errors="replace") as log:
                    log.seek(log_offset)
                    new_log = log.read()
                if exited and port_conflict(new_log) and attempt + 1 < attempts:
                    self._proc = None
                    continue
                raise

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class BinariesNotFoundError(EmbeddedError):
    """The server binaries needed to start an embedded server are not installed."""


class StartupError(EmbeddedError):
    """A server (or one of its setup tools) failed or did not become ready in time."""


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account:
    """An OS account a server process runs as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> Account:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name=name, uid=uid, gid=os.getegid())

    @classmethod
    def lookup(cls, name: str) -> Account:
        entry = pwd.getpwnam(name)
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``subprocess.Popen`` that run the child as this account."""
        if self.is_current:
            return {}
        # extra_groups=[] makes the child call setgroups([]) so it does not keep root's
        # supplementary groups.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def resolve_account(run_as: str | None, candidates: Sequence[str]) -> Account:
    """The account a server should run as.

    ``run_as`` forces an account by name. Otherwise: the current account when not root,
    else the first existing account of ``candidates``.
    """
    if run_as is not None:
        try:
            return Account.lookup(run_as)
        except KeyError:
            raise EmbeddedError(f"OS user {run_as!r} does not exist") from None
    if os.geteuid() != 0:
        return Account.current()
    for name in candidates:
        with contextlib.suppress(KeyError):
            account = Account.lookup(name)
            if account.uid != 0:
                return account
    raise EmbeddedError(
        "running as root, and none of the unprivileged OS users "
        f"{', '.join(candidates)} exists to run the server as; create one "
        "(e.g. `useradd --system postgres`) or pass run_as="
    )


# --------------------------------------------------------------------------- ports


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_conflict(log_text: str) -> bool:
    """Whether a server log says the listen port was taken (so a retry may help)."""
    text = log_text.lower()
    return "address already in use" in text or "error: 98" in text


# --------------------------------------------------------------------------- workdirs


def _can_traverse(path: Path, account: Account) -> bool:
    """Whether ``account`` can reach ``path`` (search permission on it and every parent)."""
    if account.uid == 0:
        return True
    for part in [path, *path.parents]:
        try:
            st = part.stat()
        except OSError:
            return False
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _owner_marker() -> str:
    """``PID START_TIME PID_NAMESPACE`` of this process, written into each work directory."""
    pid = os.getpid()
    return f"{pid} {process_start_time(pid) or '-'} {_pid_namespace() or '-'}\n"


def _owner_alive(owner_file: Path) -> bool:
    try:
        fields = owner_file.read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return False
    start = fields[1] if len(fields) > 1 and fields[1] != "-" else ""
    namespace = fields[2] if len(fields) > 2 and fields[2] != "-" else ""
    if namespace and namespace != _pid_namespace():
        # Written from another PID namespace (a container sharing this directory): its PIDs
        # mean nothing here, so never judge it dead.
        return True
    if not pid_alive(pid):
        return False
    current = process_start_time(pid)
    # Without /proc (not Linux) we cannot tell PID reuse apart: assume alive.
    return current is None or not start or current == start


def _processes_in(directory: Path) -> list[int]:
    """PIDs of processes whose working directory is inside ``directory`` (Linux only).

    Every embedded server changes into its data directory, so this finds the servers that
    belong to a work directory even when their command line was rewritten (redis, postgres).
    """
    found: list[int] = []
    prefix = str(directory)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == prefix or cwd.startswith(prefix + os.sep):
            found.append(int(entry))
    return found


def sweep_stale_workdirs(parent: Path) -> list[Path]:
    """Remove work directories (and stray servers) left by processes that died.

    Only directories carrying our owner marker whose owner is gone are touched. Servers
    still running inside them (their owner died without ``PR_SET_PDEATHSIG`` firing, e.g.
    it was started from a thread that had exited) are killed first.
    """
    removed: list[Path] = []
    try:
        candidates = list(parent.glob(WORKDIR_PREFIX + "*"))
    except OSError:
        return removed
    for workdir in candidates:
        owner_file = workdir / OWNER_FILE
        if not owner_file.is_file() or _owner_alive(owner_file):
            continue
        for pid in _processes_in(workdir):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
        removed.append(workdir)
    return removed


SHM_DIR = Path("/dev/shm")
SHM_MIN_FREE = 1 << 30  # Docker's default 64 MB /dev/shm is far too small: need 1 GiB free


def _shm_usable() -> bool:
    """Whether /dev/shm is a roomy, writable tmpfs.

    Servers in RAM start several times faster and create databases ~10x faster than on a
    slow (virtual) disk, even with fsync off.
    """
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return False
    return (
        SHM_DIR.is_dir()
        and os.access(SHM_DIR, os.W_OK | os.X_OK)
        and st.f_bavail * st.f_frsize >= SHM_MIN_FREE
    )


def default_parents() -> list[Path]:
    """Where work directories go: ``$DBSIGHT_EMBEDDED_DIR``, else /dev/shm when it is a
    roomy tmpfs, else ``$TMPDIR``/``/tmp``."""
    configured = os.environ.get("DBSIGHT_EMBEDDED_DIR")
    if configured:
        return [Path(configured)]
    parents = [SHM_DIR] if _shm_usable() else []
    return [*parents, Path(tempfile.gettempdir()), Path("/tmp")]


def make_workdir(kind: str, account: Account, base_dir: str | os.PathLike[str] | None) -> Path:
    """Create a private work directory owned by ``account``."""
    parents = [Path(base_dir)] if base_dir is not None else default_parents()
    parent = next((p for p in parents if p.is_dir() and _can_traverse(p, account)), None)
    if parent is None:
        raise EmbeddedError(
            f"no directory usable by OS user {account.name!r} for the {kind} work directory "
            f"(tried {', '.join(map(str, parents))}); pass base_dir= or set TMPDIR"
        )
    parent = parent.resolve()
    sweep_stale_workdirs(parent)
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{kind}-", dir=parent))
    (workdir / OWNER_FILE).write_text(_owner_marker())
    if not account.is_current:
        os.chown(workdir, account.uid, account.gid)
    return workdir


def chown_tree(path: Path, account: Account) -> None:
    if account.is_current:
        return
    os.chown(path, account.uid, account.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), account.uid, account.gid, follow_symlinks=False)


# --------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1
_prctl_cache: list[Callable[..., int] | None] = []


def _prctl() -> Callable[..., int] | None:
    """libc's prctl (Linux only), resolved once, before any fork."""
    if not _prctl_cache:
        func = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                func = ctypes.CDLL(None, use_errno=True).prctl
        _prctl_cache.append(func)
    return _prctl_cache[0]


def _death_signal_preexec(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel send ``sig`` to the child when we die.

    It runs after Popen's setuid (which would otherwise clear the setting). The getppid
    check closes the race where the parent died between fork and prctl.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def child_env(
    account: Account, home: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for server processes: ours minus PG*/MYSQL*/REDIS* settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PG", "MYSQL", "MARIADB", "REDIS"))
    }
    env["HOME"] = str(home)
    env["USER"] = env["LOGNAME"] = account.name
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def run_tool(
    argv: Sequence[str],
    *,
    account: Account,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    timeout: float,
    what: str,
) -> None:
    """Run a setup tool (initdb, pg_basebackup, install-db) as ``account``, logging to a file."""
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                timeout=timeout,
                check=False,
                **account.popen_kwargs(),
            )
        except subprocess.TimeoutExpired:
            raise StartupError(
                f"{what} did not finish within {timeout:.0f}s\n{log_tail(log_path)}"
            ) from None
        except OSError as exc:
            raise StartupError(f"{what} could not be run: {exc}") from exc
    if proc.returncode != 0:
        raise StartupError(f"{what} failed (exit status {proc.returncode})\n{log_tail(log_path)}")


def spawn_server(
    argv: Sequence[str],
    *,
    account: Account,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    death_signal: int,
    die_with_parent: bool | None,
) -> subprocess.Popen[bytes]:
    """Start a long-running server process as ``account`` with its output in ``log_path``.

    ``die_with_parent``: None means "when spawned from the main thread" - the kernel sends the
    parent-death signal when the spawning *thread* exits, so it is only safe from a thread
    that lives as long as the process.
    """
    if die_with_parent is None:
        die_with_parent = threading.current_thread() is threading.main_thread()
    kwargs: dict[str, Any] = dict(account.popen_kwargs())
    preexec = _death_signal_preexec(death_signal) if die_with_parent else None
    if preexec is not None:
        kwargs["preexec_fn"] = preexec
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                # Own session: a Ctrl-C in the terminal goes to the test runner only, which
                # then stops the server in order.
                start_new_session=True,
                **kwargs,
            )
        except OSError as exc:
            raise StartupError(f"could not start {argv[0]}: {exc}") from exc


def terminate(
    proc: subprocess.Popen[bytes],
    steps: Iterable[tuple[int, float]],
) -> None:
    """Send each signal in turn, waiting up to its timeout for the process to exit."""
    for sig, timeout in steps:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
            return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def remove_workdir(path: Path | None) -> None:
    if path is None:
        return
    shutil.rmtree(path, ignore_errors=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return f"--- last {len(tail)} lines of {path} ---\n" + "\n".join(tail)


class _Probe(Protocol):
    def __call__(self) -> bool: ...


def wait_until(
    probe: _Probe,
    *,
    timeout: float,
    what: str,
    log_path: Path | None = None,
    proc: subprocess.Popen[bytes] | None = None,
    interval: float = 0.02,
    max_interval: float = 0.2,
) -> None:
    """Poll ``probe`` until it returns True; raise StartupError with the log tail otherwise.

    Fails early if ``proc`` exits while we wait.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        if probe():
            return
        if proc is not None and proc.poll() is not None:
            tail = log_tail(log_path) if log_path else ""
            raise StartupError(
                f"{what}: the server exited with status {proc.returncode}\n{tail}"
            )
        if time.monotonic() >= deadline:
            tail = log_tail(log_path) if log_path else ""
            raise StartupError(f"{what}: gave up after {timeout:.1f}s\n{tail}")
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval)


def tcp_exchange(
    host: str,
    port: int,
    payload: bytes | None,
    *,
    until: bytes | None = None,
    timeout: float = 1.0,
) -> bytes:
    """Connect, optionally send ``payload``, return what comes back (b"" on failure).

    Reads one chunk, or until ``until`` appears in the data or the peer closes.
    """
    data = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if payload:
                sock.sendall(payload)
            while True:
                chunk = sock.recv(65536)
                data += chunk
                if not chunk or until is None or until in data:
                    return data
    except OSError:
        return data


# --------------------------------------------------------------------------- atexit registry


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_live: list[_Stoppable] = []
_live_lock = threading.Lock()


def register(server: _Stoppable) -> None:
    with _live_lock:
        if server not in _live:
            _live.append(server)


def unregister(server: _Stoppable) -> None:
    with _live_lock:
        with contextlib.suppress(ValueError):
            _live.remove(server)


@atexit.register
def _stop_all() -> None:
    # Newest first: replicas before their primaries.
    while True:
        with _live_lock:
            if not _live:
                return
            server = _live.pop()
        with contextlib.suppress(Exception):
            server.stop()
