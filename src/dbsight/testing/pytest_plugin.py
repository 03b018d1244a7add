"""pytest fixtures that give tests real PostgreSQL, MariaDB and Redis servers."""
