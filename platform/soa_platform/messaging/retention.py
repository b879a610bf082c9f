"""Message retention: hard-delete messages older than the tenant's retention period.

The period is the admin setting "retention" (`{"days": n}`) if present, else SOA_MESSAGING_RETENTION_DAYS;
0 keeps everything. A thread goes with its root: replies of an expired root are deleted too (a reply is
never older than its root), reactions and mentions by the foreign-key cascade, attached files (objects and
rows) through `files.service.purge_for_messages` in the same transaction. Batches are small
transactions that take expired roots with `FOR UPDATE SKIP LOCKED` and touch replies only through their
root, so two purges running at once split the work instead of colliding or deadlocking.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.admin.models import Setting
from soa_platform.audit import service as audit
from soa_platform.db import Database, utcnow
from soa_platform.files import service as files
from soa_platform.files.storage import Storage
from soa_platform.messaging.models import Message
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

RETENTION_SETTING = "retention"
PURGED = "retention.purged"


@dataclass(frozen=True)
class PurgeResult:
    days: int
    cutoff: datetime | None
    deleted: int


async def retention_days(session: AsyncSession, settings: PlatformSettings) -> int:
    """Days messages are kept (0: forever): the admin's setting wins over the deployment default."""
    setting = await session.get(Setting, RETENTION_SETTING)
    if setting is not None:
        days = setting.value.get("days")
        if isinstance(days, int) and not isinstance(days, bool) and days >= 0:
            return days
        log.warning("ignoring invalid retention setting %r", setting.value)
    return settings.messaging_retention_days


async def _expired_ids(session: AsyncSession, cutoff: datetime, limit: int) -> Sequence[int]:
    query = (
        select(Message.id)
        .where(Message.created_at < cutoff, Message.thread_root_id.is_(None))
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def _delete_with_replies(session: AsyncSession, root_ids: Sequence[int]) -> int:
    replies = cast(
        CursorResult[Any], await session.execute(delete(Message).where(Message.thread_root_id.in_(root_ids)))
    )
    roots = cast(CursorResult[Any], await session.execute(delete(Message).where(Message.id.in_(root_ids))))
    return int(replies.rowcount or 0) + int(roots.rowcount or 0)


async def purge_expired_messages(
    db: Database,
    settings: PlatformSettings,
    *,
    batch_size: int = 500,
    now: datetime | None = None,
    storage: Storage | None = None,
) -> PurgeResult:
    """Delete every expired message (in batches of `batch_size`) with the files only they show (objects and
    rows: nothing is left orphaned in the store); audit the run if it deleted anything."""
    async with db.unit_of_work() as uow:
        days = await retention_days(uow.session, settings)
    if days == 0:
        return PurgeResult(days=0, cutoff=None, deleted=0)
    cutoff = (now or utcnow()) - timedelta(days=days)
    deleted = 0
    while True:
        async with db.unit_of_work() as uow:
            batch = await _expired_ids(uow.session, cutoff, batch_size)
            if batch:
                await files.purge_for_messages(uow, storage, batch, include_replies=True)
                deleted += await _delete_with_replies(uow.session, batch)
        if len(batch) < batch_size:
            break
    if deleted:
        # an hourly no-op would flood the audit log: only runs that deleted something are recorded
        async with db.unit_of_work() as uow:
            await audit.record(
                uow.session, PURGED, target_type="messages", count=deleted, days=days, before=cutoff.isoformat()
            )
        log.info("retention purged %d messages created before %s", deleted, cutoff.isoformat())
    return PurgeResult(days=days, cutoff=cutoff, deleted=deleted)
