"""Without HypoPG the advisor says so and stops (installed but not enabled in the database,
or not installed on the server at all); it enables it only when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from advisor_schema import statement, workload
from typer.testing import CliRunner

from dbsight.advise import AdvisorError, AdvisorOptions, advise_indexes
from dbsight.cli import app as cli


def _table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, v int)")
        conn.execute("INSERT INTO t SELECT i, i FROM generate_series(1, 20000) i")
        conn.execute("ANALYZE t")


def _enabled(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone()[0])  # fmt: skip


def test_hypopg_not_enabled_is_a_clear_error_and_changes_nothing(pg_dsn: str) -> None:
    _table(pg_dsn)
    w = workload(statement("SELECT * FROM t WHERE v = 3"))
    with pytest.raises(AdvisorError) as caught:
        advise_indexes(pg_dsn, w)
    message = str(caught.value)
    assert "HypoPG is installed on the server but not enabled in database" in message
    assert "CREATE EXTENSION hypopg" in message and "--create-extension" in message
    assert not _enabled(pg_dsn)


def test_create_extension_enables_it_when_asked(pg_dsn: str) -> None:
    _table(pg_dsn)
    w = workload(statement("SELECT * FROM t WHERE v = 3", calls=100, total_ms=500))
    advice = advise_indexes(pg_dsn, w, options=AdvisorOptions(create_extension=True))
    assert _enabled(pg_dsn)
    assert [i.index.columns for i in advice.indexes] == [("v",)]


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(AdvisorError, match="cannot connect to postgresql://"):
        advise_indexes("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", workload())


@pytest.fixture(scope="module")
def server_without_hypopg() -> Iterator[str]:
    """A PostgreSQL whose installation has no HypoPG: the server binaries copied under a
    private root, with the real share directory's files except HypoPG's (the server finds
    its share directory relative to its own executable)."""
    from dbsight.embedded.postgres import EmbeddedPostgres, _pkglibdir, find_pg_bindir

    real_bin = find_pg_bindir()
    pg_config = real_bin / "pg_config"
    if not pg_config.exists():
        pytest.skip("no pg_config to find the share directory with")
    real_share = Path(subprocess.run([str(pg_config), "--sharedir"], capture_output=True,
                                     text=True, check=True).stdout.strip())  # fmt: skip
    real_lib = _pkglibdir(real_bin)
    root = Path(tempfile.mkdtemp(prefix="dbsight-no-hypopg-"))
    try:
        bindir = root / real_bin.relative_to("/")
        bindir.mkdir(parents=True)
        for tool in ("postgres", "initdb"):
            shutil.copy2(real_bin / tool, bindir / tool)
        (bindir / "psql").symlink_to(real_bin / "psql")
        lib = root / real_lib.relative_to("/")
        lib.parent.mkdir(parents=True, exist_ok=True)
        if not lib.exists():
            lib.symlink_to(real_lib)
        share = root / real_share.relative_to("/")
        (share / "extension").mkdir(parents=True)
        for entry in real_share.iterdir():
            if entry.name != "extension":
                (share / entry.name).symlink_to(entry)
        for entry in (real_share / "extension").iterdir():
            if not entry.name.startswith("hypopg"):
                (share / "extension" / entry.name).symlink_to(entry)
        for directory, _, _ in os.walk(root):
            os.chmod(directory, 0o755)  # the server's own account reads it
        with EmbeddedPostgres(bindir=bindir, name="dbsight-no-hypopg") as server:
            yield server.dsn()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_hypopg_not_installed_on_the_server_is_a_clear_error(server_without_hypopg: str,
                                                             tmp_path: Path) -> None:  # fmt: skip
    with psycopg.connect(server_without_hypopg) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()[0] == 0  # fmt: skip
    with pytest.raises(AdvisorError) as caught:
        advise_indexes(server_without_hypopg, workload(statement("SELECT * FROM t WHERE v = 3")),
                       options=AdvisorOptions(create_extension=True))  # fmt: skip
    assert "HypoPG is not installed on the database server" in str(caught.value)
    assert "postgresql-15-hypopg" in str(caught.value)
    capture = tmp_path / "capture.jsonl"
    capture.write_text("")
    result = CliRunner().invoke(
        cli, ["advise", "--dsn", server_without_hypopg, "--workload", str(capture)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("dbsight advise: HypoPG is not installed on the database server")
    assert "Traceback" not in result.output
