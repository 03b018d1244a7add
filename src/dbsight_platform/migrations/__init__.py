"""The platform's Alembic migrations (PostgreSQL and MariaDB/MySQL alike) and their runner."""
