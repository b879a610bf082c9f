"""SQLAlchemy 2 async engine, the declarative base, and the unit of work a request or task runs in.

Services never commit: the unit of work commits, and only then publishes the real-time events and
enqueues the Celery tasks the services buffered, so nothing is announced that was not stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from soa_platform.errors import DomainError

log = logging.getLogger(__name__)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both PostgreSQL and SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine whose PostgreSQL pool keeps `pool_size` connections and never opens more.

    No overflow: an overflow connection is closed when it is returned, so every burst beyond the pool
    forked a new PostgreSQL backend and re-prepared the statements on it, which costs most when the
    api is already overloaded (docs/performance.md). A request beyond the pool waits for a connection.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    # no pre-ping: it costs three round trips per request (BEGIN, ping, ROLLBACK); a connection that died
    # with the server fails one request, which invalidates the whole pool (clients retry with their key)
    return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=30)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # the driver's own BEGIN handling breaks savepoints; SQLAlchemy emits BEGIN itself (below)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # take the write lock up front: a deferred transaction that later writes fails with "database is
    # locked" instead of waiting when another writer committed in between
    connection.exec_driver_sql("BEGIN IMMEDIATE")


AfterCommit = Callable[[], Awaitable[None]]


@dataclass
class UnitOfWork:
    """One request's or task's transaction plus what to do once it is durable."""

    session: AsyncSession
    _after_commit: list[AfterCommit] = field(default_factory=list)

    def after_commit(self, action: AfterCommit) -> None:
        self._after_commit.append(action)

    def discard_after_commit(self) -> None:
        self._after_commit.clear()

    async def run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            try:
                await action()
            except Exception:
                # the data is committed; a lost notification is recovered by the outbox sweep
                log.exception("after-commit action failed")


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.sessions() as session:
            uow = UnitOfWork(session)
            try:
                yield uow
                await session.commit()
            except DomainError as error:
                if not error.keep_changes:
                    await session.rollback()
                    raise
                await session.commit()
                uow.discard_after_commit()
                raise
            except BaseException:
                await session.rollback()
                raise
        await uow.run_after_commit()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
