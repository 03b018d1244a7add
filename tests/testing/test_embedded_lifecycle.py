"""dbsight.embedded: start-up, failures, users, and never leaving servers or directories behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbsight.embedded import BinariesNotFoundError, StartupError
from dbsight.embedded import _common
from dbsight.embedded.postgres import EmbeddedPostgres, PostgresNotFoundError, find_pg_bindir
from dbsight.embedded.redis import EmbeddedRedis, find_redis_server


def _have_pg() -> bool:
    try:
        find_pg_bindir()
    except PostgresNotFoundError:
        return False
    return True


def _have_redis() -> bool:
    try:
        find_redis_server()
    except BinariesNotFoundError:
        return False
    return True


needs_pg = pytest.mark.skipif(not _have_pg(), reason="PostgreSQL server binaries not installed")
needs_redis = pytest.mark.skipif(not _have_redis(), reason="redis-server not installed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent, init, reaps it eventually).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _wait_dead(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_missing_binaries_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PostgresNotFoundError, match="no PostgreSQL server binaries"):
        find_pg_bindir(tmp_path)
    with pytest.raises(BinariesNotFoundError):
        EmbeddedPostgres(bindir=tmp_path).start()


@needs_pg
def test_lifecycle_dsn_and_cleanup() -> None:
    pg = EmbeddedPostgres()
    with pg:
        assert pg.running
        port = pg.port
        assert pg.dsn() == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert pg.dsn("my db", user="app") == f"postgresql://app@127.0.0.1:{port}/my%20db"
        assert pg.create_database("made_here").endswith("/made_here")
        assert pg.execute("SELECT datname FROM pg_database WHERE datname = 'made_here'") == (
            "made_here"
        )
        assert pg.execute("SHOW unix_socket_directories") == str(pg.workdir)
        pid, workdir = pg.pid, pg.workdir
        assert pid is not None
        if os.geteuid() == 0:
            assert _uid_of(pid) != 0, "the server must not run as root"
            assert pg.account.name in ("postgres", "nobody")
        else:
            assert _uid_of(pid) == os.geteuid()
    assert not pg.running
    assert not workdir.exists()
    assert _wait_dead([pid]) == []
    pg.stop()  # idempotent
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


@needs_pg
def test_startup_failure_reports_the_log_and_cleans_up() -> None:
    pg = EmbeddedPostgres(settings={"shared_buffers": "not-a-size"})
    with pytest.raises(StartupError) as excinfo:
        pg.start()
    message = str(excinfo.value)
    assert "shared_buffers" in message
    assert "last" in message and "postgres.log" in message
    assert not pg.running
    assert not pg.workdir.exists()


@needs_redis
def test_port_conflict_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real_free_port = _common.free_port

    def fake_free_port(host: str = "127.0.0.1") -> int:
        return next(ports, None) or real_free_port(host)

    monkeypatch.setattr(_common, "free_port", fake_free_port)
    try:
        with EmbeddedRedis() as server:
            assert server.port != taken.getsockname()[1]
            assert server.ping()
            assert "Address already in use" in server.log_path.read_text()
    finally:
        taken.close()


CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from dbsight.embedded.postgres import EmbeddedPostgres
    from dbsight.embedded.redis import EmbeddedRedis

    pg = EmbeddedPostgres().start()
    replica = pg.add_replica()
    rd = EmbeddedRedis().start()
    servers = [pg, replica, rd]
    info = {"pids": [s.pid for s in servers], "dirs": [str(s.workdir) for s in servers]}
    print(json.dumps(info), flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    # "exit": leave without stopping anything; atexit must clean up.
    """
)


@pytest.fixture
def child_script(tmp_path: Path) -> Iterator[Path]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    yield script


def _run_child(script: Path, mode: str) -> dict[str, list]:
    proc = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=180
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stdout + proc.stderr
    if mode == "kill":
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    return json.loads(lines[0])


@needs_pg
@needs_redis
def test_normal_exit_without_stop_cleans_up(child_script: Path) -> None:
    info = _run_child(child_script, "exit")
    assert _wait_dead(info["pids"]) == []
    assert [d for d in info["dirs"] if Path(d).exists()] == []


@needs_pg
@needs_redis
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_killed_owner_takes_its_servers_along(child_script: Path) -> None:
    info = _run_child(child_script, "kill")
    # The kernel signals the servers when their parent dies ...
    assert _wait_dead(info["pids"]) == [], "servers outlived their SIGKILLed owner"
    # ... and their directories are swept by the next embedded server to start.
    leftovers = [Path(d) for d in info["dirs"]]
    with EmbeddedRedis(base_dir=leftovers[0].parent):
        pass
    assert [d for d in leftovers if d.exists()] == []


def test_sweep_kills_strays_of_dead_owners(tmp_path: Path) -> None:
    """A server whose owner died without the death signal is killed by the next sweep."""
    workdir = tmp_path / "dbsight-redis-stray"
    workdir.mkdir()
    # An owner marker naming a process that is certainly dead (a reaped child).
    dead = subprocess.Popen(["true"])
    dead.wait()
    (workdir / _common.OWNER_FILE).write_text(f"{dead.pid} 0\n")
    stray = subprocess.Popen(["sleep", "300"], cwd=workdir, start_new_session=True)
    try:
        # A live owner's directory must be left alone.
        keep = tmp_path / "dbsight-redis-live"
        keep.mkdir()
        (keep / _common.OWNER_FILE).write_text(_common._owner_marker())
        # Nor one written in another PID namespace, whose PIDs mean nothing here.
        foreign = tmp_path / "dbsight-pg-foreign"
        foreign.mkdir()
        (foreign / _common.OWNER_FILE).write_text(f"{dead.pid} 0 pid:[1]\n")
        removed = _common.sweep_stale_workdirs(tmp_path)
        assert removed == [workdir]
        assert foreign.exists()
        assert stray.wait(timeout=10) == -signal.SIGKILL
        assert keep.exists()
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


@needs_pg
def test_stopping_a_replica_drops_its_slot() -> None:
    with EmbeddedPostgres() as primary:
        first = primary.add_replica()
        second = primary.add_replica()
        assert [r.name for r in primary.replicas] == ["dbsight-replica1", "dbsight-replica2"]
        slots = primary.execute("SELECT count(*) FROM pg_replication_slots WHERE active")
        assert slots == "2"
        first.stop()
        assert primary.replicas == [second]
        assert primary.execute("SELECT count(*) FROM pg_replication_slots") == "1"
        assert not first.running and not first.workdir.exists()
        assert second.running
        second_dir = second.workdir
    assert not second.running and not second_dir.exists()


SKIP_INNER = textwrap.dedent(
    """
    def test_needs_pg(pg_dsn):
        raise AssertionError("must not run")
    """
)


@pytest.mark.parametrize("require", [False, True])
def test_missing_postgres_skips_or_fails(tmp_path: Path, require: bool) -> None:
    (tmp_path / "test_inner.py").write_text(SKIP_INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("DBSIGHT_TEST_")
    }
    env["DBSIGHT_PG_BINDIR"] = str(tmp_path / "no-such-bindir")
    if require:
        env["DBSIGHT_TEST_REQUIRE_SERVERS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
         "-p", "dbsight.testing.pytest_plugin", "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert "no PostgreSQL to test against" in output, output
    if require:
        assert proc.returncode == 1 and "1 error" in output, output
    else:
        assert proc.returncode == 0 and "1 skipped" in output, output
