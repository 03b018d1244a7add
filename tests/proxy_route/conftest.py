"""A primary with two streaming replicas, and a `dbsight proxy` routing between them (in
transaction pooling mode unless a test asks for ``pool_mode="session"``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dbsight.proxy._config import ProxyConfig
from dbsight.testing._servers import ReplicatedDatabase
from dbsight.testing.proxy import RunningProxy


@pytest.fixture(scope="module")
def replicated2(pg_cluster_factory: Any) -> Iterator[ReplicatedDatabase]:
    """A fresh database on a primary with two replicas (the cluster is shared)."""
    cluster = pg_cluster_factory(replicas=2)
    database = cluster.create_database()
    try:
        yield database
    finally:
        cluster.drop_database(database.name)


@pytest.fixture
def routing_proxy(replicated2: ReplicatedDatabase) -> Iterator[Any]:
    """``routing_proxy(**options)``: a proxy in front of ``replicated2`` with both replicas."""
    made: list[RunningProxy] = []

    def make(**options: Any) -> RunningProxy:
        options.setdefault("pool_size", 4)
        options.setdefault("health_interval_s", 0.2)
        options.setdefault("read_your_writes_s", 0.0)
        options.setdefault("pool_mode", "transaction")
        config = ProxyConfig(
            listen="127.0.0.1:0",
            upstream=replicated2.primary_dsn,
            replicas=replicated2.replica_dsns,
            **options,
        )
        proxy = RunningProxy(config)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
