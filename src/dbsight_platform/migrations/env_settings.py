"""Names the migration environment and the runner share."""

VERSION_TABLE = "platform_alembic_version"
