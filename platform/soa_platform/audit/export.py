"""Audit log exports: every event up to the newest one at the start, as NDJSON stored on the export row."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from soa_platform.audit import repository
from soa_platform.audit.models import AuditEvent, AuditExport
from soa_platform.db import Database, utcnow

DONE = "done"
PENDING = "pending"


def event_record(event: AuditEvent) -> dict[str, Any]:
    """One NDJSON line's object."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_email": event.actor_email,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "details": event.details,
        "ip": event.ip,
    }


def to_ndjson(events: Iterable[AuditEvent]) -> str:
    return "".join(
        json.dumps(event_record(event), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        for event in events
    )


async def run_export(db: Database, export_id: int) -> bool:
    """Fill export `export_id`; True if this call did it, False if it is done already or gone.

    The row is locked for the whole run, so a second copy of the task waits and then finds it done.
    """
    async with db.unit_of_work() as uow:
        export = await repository.get_export(uow.session, export_id, for_update=True)
        if export is None or export.status == DONE:
            return False
        last_id = await repository.last_event_id(uow.session)
        events = await repository.all_events_up_to(uow.session, last_id)
        export.content = to_ndjson(events)
        export.event_count = len(events)
        export.status = DONE
        export.finished_at = utcnow()
    return True


async def stale_export_ids(db: Database, *, requested_before: datetime, limit: int = 100) -> Sequence[int]:
    """Exports still pending though requested before `requested_before` (their task was lost)."""
    query = (
        select(AuditExport.id)
        .where(AuditExport.status == PENDING, AuditExport.created_at < requested_before)
        .order_by(AuditExport.id)
        .limit(limit)
    )
    async with db.unit_of_work() as uow:
        return (await uow.session.scalars(query)).all()
