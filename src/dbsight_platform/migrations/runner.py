"""Run the platform's migrations from Python or the command line (no alembic.ini needed):
``python -m dbsight_platform migrate [REVISION]`` (default ``head``) and
``python -m dbsight_platform downgrade [REVISION]`` (default ``-1``; ``base`` undoes all).

Synchronous: Alembic's environment runs its own event loop, so call these from a thread
when a loop is already running.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..core.config import Settings

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(settings: Settings, output: TextIO | None = None) -> Config:
    config = Config(stdout=output) if output is not None else Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # ConfigParser interpolates '%': a password may contain one.
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "-1") -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None before the first migration)."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from .env_settings import VERSION_TABLE

    async def read() -> str | None:
        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(
                        sync, opts={"version_table": VERSION_TABLE}
                    ).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
