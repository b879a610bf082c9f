"""All SQL of the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.db import utcnow
from soa_platform.notifications.models import OutboxEntry


async def add_once(session: AsyncSession, *, kind: str, dedupe_key: str, payload: dict[str, Any]) -> OutboxEntry:
    """Insert the entry unless one with `dedupe_key` exists (also under concurrency); return the stored one."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxEntry)
        .values(kind=kind, dedupe_key=dedupe_key, payload=payload, created_at=utcnow(), attempts=0, last_error="")
        .on_conflict_do_nothing(index_elements=[OutboxEntry.dedupe_key])
    )
    await session.execute(statement)
    return (await session.scalars(select(OutboxEntry).where(OutboxEntry.dedupe_key == dedupe_key))).one()


async def lock_pending(session: AsyncSession, entry_id: int) -> OutboxEntry | None:
    """The undelivered entry, locked for this transaction; None if delivered, gone or locked by another worker."""
    query = (
        select(OutboxEntry)
        .where(OutboxEntry.id == entry_id, OutboxEntry.delivered_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).first()


async def delivery_state(session: AsyncSession, entry_id: int) -> tuple[bool, datetime | None]:
    """(exists, delivered_at) without locking."""
    row = (await session.execute(select(OutboxEntry.delivered_at).where(OutboxEntry.id == entry_id))).first()
    return (False, None) if row is None else (True, row[0])


async def undelivered(
    session: AsyncSession, *, created_before: datetime, max_attempts: int, limit: int
) -> Sequence[Row[tuple[int, int, datetime]]]:
    """(id, attempts, created_at) of undelivered entries older than `created_before`, oldest first."""
    query = (
        select(OutboxEntry.id, OutboxEntry.attempts, OutboxEntry.created_at)
        .where(
            OutboxEntry.delivered_at.is_(None),
            OutboxEntry.created_at < created_before,
            OutboxEntry.attempts < max_attempts,
        )
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    return (await session.execute(query)).all()
