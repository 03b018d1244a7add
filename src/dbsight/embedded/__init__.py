"""Private, throw-away database servers started from locally installed binaries.

Used by the test fixtures (:mod:`dbsight.testing`) and by ``dbsight demo``. Each server runs
on a free loopback port, keeps everything in a temporary directory, never runs as root and
is cleaned up on ``stop()``, on context-manager exit, at interpreter exit, and (on Linux)
by the kernel if the owning process dies.

The server classes live in submodules so importing this package stays cheap::

    from dbsight.embedded.postgres import EmbeddedPostgres
    from dbsight.embedded.mariadb import EmbeddedMariaDB
    from dbsight.embedded.redis import EmbeddedRedis
"""

from dbsight.embedded._common import (
    BinariesNotFoundError,
    EmbeddedError,
    StartupError,
    free_port,
)

__all__ = ["BinariesNotFoundError", "EmbeddedError", "StartupError", "free_port"]
