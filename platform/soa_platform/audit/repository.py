"""All SQL of the audit log. Rows are only ever inserted (the retention task never touches them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.audit.models import AuditEvent, AuditExport


async def add_event(session: AsyncSession, event: AuditEvent) -> None:
    session.add(event)


async def list_events(
    session: AsyncSession, *, before_id: int | None, limit: int, action: str | None, since: datetime | None
) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return (await session.scalars(query)).all()


async def all_events_up_to(session: AsyncSession, last_id: int) -> Sequence[AuditEvent]:
    return (await session.scalars(select(AuditEvent).where(AuditEvent.id <= last_id).order_by(AuditEvent.id))).all()


async def last_event_id(session: AsyncSession) -> int:
    value = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    return int(value or 0)


async def add_export(session: AsyncSession, export: AuditExport) -> AuditExport:
    session.add(export)
    await session.flush()
    return export


async def get_export(session: AsyncSession, export_id: int, *, for_update: bool = False) -> AuditExport | None:
    query = select(AuditExport).where(AuditExport.id == export_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).first()
