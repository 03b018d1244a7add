"""pytest fixtures that give tests real PostgreSQL, MariaDB and Redis servers.

The fixtures live in :mod:`dbsight.testing.pytest_plugin` (loaded automatically by pytest
through the ``pytest11`` entry point); this package exports the objects they return and a
few helpers. Importing it is cheap: no server library is imported until used.
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
