"""DBSIGHT_TEST_MYSQL_DSN / DBSIGHT_TEST_REDIS_URL point the fixtures at an existing server.

The "existing" servers here are this session's own (private) ones, handed to a pytest run in
a subprocess, so this never touches the machine's services.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from dbsight.testing import MysqlServer, RedisServer

INNER_TEST = textwrap.dedent(
    """
    import json
    import pymysql
    import redis
    from dbsight.testing import mysql_connect_kwargs

    def test_inner(mysql_dsn, mysql_server, redis_url, redis_prefix, redis_server):
        assert mysql_server.embedded is None and redis_server.embedded is None
        kwargs = mysql_connect_kwargs(mysql_dsn)
        conn = pymysql.connect(**kwargs)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (x INT)")
            cur.execute("INSERT INTO t VALUES (7)")
            conn.commit()
            cur.execute("SELECT x FROM t")
            assert cur.fetchall() == ((7,),)
        # left open on purpose: teardown must still drop the database
        client = redis.Redis.from_url(redis_url)
        client.set(redis_prefix + "k", "v")
        assert client.get(redis_prefix + "k") == b"v"
        with open("inner.json", "w") as f:
            json.dump({"database": kwargs["database"], "prefix": redis_prefix}, f)
    """
)


def test_external_mysql_and_redis_from_env(
    mysql_server: MysqlServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {
        **os.environ,
        "DBSIGHT_TEST_MYSQL_DSN": mysql_server.admin_dsn,
        "DBSIGHT_TEST_REDIS_URL": redis_server.url,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "dbsight.testing.pytest_plugin", "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inner = json.loads((tmp_path / "inner.json").read_text())
    assert inner["database"].startswith("dbsight_test_")
    assert not mysql_server.database_exists(inner["database"])
    assert redis_server.keys(inner["prefix"]) == []
