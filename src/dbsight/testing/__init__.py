"""pytest fixtures that give tests real PostgreSQL, MariaDB and Redis servers.

The fixtures live in :mod:`dbsight.testing.pytest_plugin` (load it with
``pytest_plugins = ["dbsight.testing.pytest_plugin"]`` in a conftest.py, or ``pytest -p
dbsight.testing.pytest_plugin``: dbsight declares no ``pytest11`` entry point, so pytest does
not load it by itself); this package exports the objects they return and a few helpers. Importing it is cheap: no server library is imported until used.
"""

from dbsight.testing._servers import (
    MysqlServer,
    PgCluster,
    PgClusterFactory,
    PgServer,
    RedisServer,
    ReplicatedDatabase,
    mysql_connect_kwargs,
    pg_url,
    unique_name,
)

__all__ = [
    "MysqlServer",
    "PgCluster",
    "PgClusterFactory",
    "PgServer",
    "RedisServer",
    "ReplicatedDatabase",
    "mysql_connect_kwargs",
    "pg_url",
    "unique_name",
]
