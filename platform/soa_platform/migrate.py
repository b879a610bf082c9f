"""`soa migrate`: bring the database to the schema of this release, refusing unknown newer ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from soa_platform.db import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class UnknownSchemaVersion(RuntimeError):
    """The database was migrated by a newer release: refusing to run older code against it."""


def upgrade(url: str) -> None:
    """Migrate to head (idempotent: at head it does nothing)."""
    config = alembic_config(url)
    current = asyncio.run(current_revision(url))
    script = ScriptDirectory.from_config(config)
    if current is not None and script.get_revision(current) is None:
        raise UnknownSchemaVersion(f"database schema revision {current} is newer than this release")
    command.upgrade(config, "head")


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
