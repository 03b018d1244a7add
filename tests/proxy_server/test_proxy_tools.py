"""PostgreSQL's own tools through `dbsight proxy`: psql and pgbench."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from dbsight.embedded.postgres import PostgresNotFoundError, pg_program


def _tool(name: str) -> str:
    try:
        return pg_program(name)
    except PostgresNotFoundError as exc:
        pytest.fail(f"{exc} (./dev installs the PostgreSQL client tools)")


def test_psql_through_the_proxy(proxy: Any, pg_dsn: str) -> None:
    result = subprocess.run(
        [_tool("psql"), proxy.dsn(pg_dsn), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-c", "CREATE TABLE t (id int)",
         "-c", "INSERT INTO t SELECT generate_series(1, 5)",
         "-c", "SELECT sum(id) FROM t"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "15"
    failed = subprocess.run(
        [_tool("psql"), proxy.dsn(pg_dsn), "-X", "-v", "ON_ERROR_STOP=1", "-c", "SELECT nope"],
        capture_output=True, text=True, timeout=60,
    )
    assert failed.returncode != 0 and 'column "nope" does not exist' in failed.stderr


@pytest.mark.parametrize("protocol", ["simple", "extended", "prepared"])
def test_pgbench_through_the_proxy(proxy: Any, pg_dsn: str, protocol: str) -> None:
    pgbench = _tool("pgbench")
    dsn = proxy.dsn(pg_dsn)
    init = subprocess.run([pgbench, "-i", "-s", "1", "-q", dsn], capture_output=True, text=True,
                          timeout=120)
    assert init.returncode == 0, init.stderr
    run = subprocess.run(
        [pgbench, "-n", "-M", protocol, "-c", "4", "-j", "2", "-t", "50", dsn],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    processed = re.search(r"number of transactions actually processed: (\d+)/(\d+)", run.stdout)
    assert processed is not None and processed.group(1) == processed.group(2) == "200"
    assert "number of failed transactions: 0" in run.stdout


def test_pgbench_prepared_with_more_clients_than_server_connections(
    proxy_factory: Any, pg_dsn: str
) -> None:
    """pgbench prepares with a blocking call on the thread that also drives the clients
    holding every server connection: the proxy answers such a prepare itself."""
    pgbench = _tool("pgbench")
    direct = subprocess.run([pgbench, "-i", "-s", "1", "-q", pg_dsn], capture_output=True,
                            text=True, timeout=120)
    assert direct.returncode == 0, direct.stderr
    proxy = proxy_factory(pg_dsn, pool_mode="transaction", pool_size=1, pool_timeout_s=20)
    run = subprocess.run(
        [pgbench, "-n", "-M", "prepared", "-c", "3", "-j", "1", "-t", "30", proxy.dsn(pg_dsn)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "number of transactions actually processed: 90/90" in run.stdout
