"""Files retention and upkeep: expired files go with their objects; abandoned uploads are removed;
completed uploads whose verification was lost are sent for verification again.

A file expires with the tenant's message retention (the admin setting, else SOA_MESSAGING_RETENTION_DAYS;
0 keeps everything): once it is older than the period and no message younger than the period shows it.
A file is never younger than a message it is attached to... except when attached later, which is why the
messages are asked. Objects are deleted before the rows in each small batch; the deletes are idempotent,
so a batch whose transaction fails is simply done again by the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from soa_platform.audit import service as audit
from soa_platform.db import Database, utcnow
from soa_platform.files import repository
from soa_platform.files.models import FileStatus
from soa_platform.files.service import remove_objects
from soa_platform.files.storage import Storage
from soa_platform.messaging.retention import retention_days
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

PURGED = "files.purged"
VERIFY_RESEND_AFTER = timedelta(minutes=10)  # longer than any verification takes


@dataclass(frozen=True)
class FilesPurgeResult:
    days: int
    cutoff: datetime | None
    deleted: int


@dataclass(frozen=True)
class SweepResult:
    abandoned: int  # pending uploads never completed, removed
    resend: list[int]  # completed uploads still pending: verify these again


async def purge_expired_files(
    db: Database, storage: Storage | None, settings: PlatformSettings, *, batch_size: int = 500,
    now: datetime | None = None,
) -> FilesPurgeResult:  # fmt: skip
    """Delete every expired file, object and row; audit the run if it deleted anything."""
    async with db.unit_of_work() as uow:
        days = await retention_days(uow.session, settings)
    if days == 0:
        return FilesPurgeResult(days=0, cutoff=None, deleted=0)
    cutoff = (now or utcnow()) - timedelta(days=days)
    deleted = 0
    while True:
        async with db.unit_of_work() as uow:
            batch = await repository.expired(uow.session, cutoff, batch_size)
            if storage is not None:
                for file in batch:
                    if file.status is not FileStatus.deleted:  # a deleted file's objects went with it
                        await remove_objects(storage, file)
            deleted += await repository.delete_rows(uow.session, [file.id for file in batch])
        if len(batch) < batch_size:
            break
    if deleted:
        async with db.unit_of_work() as uow:
            await audit.record(uow.session, PURGED, target_type="files", count=deleted, days=days,
                               before=cutoff.isoformat())  # fmt: skip
        log.info("retention purged %d files created before %s", deleted, cutoff.isoformat())
    return FilesPurgeResult(days=days, cutoff=cutoff, deleted=deleted)


async def sweep_uploads(
    db: Database, storage: Storage | None, settings: PlatformSettings, *, batch_size: int = 500,
    now: datetime | None = None,
) -> SweepResult:  # fmt: skip
    """Remove uploads pending longer than `storage_pending_upload_hours`; list lost verifications."""
    now = now or utcnow()
    abandoned_before = now - timedelta(hours=settings.storage_pending_upload_hours)
    abandoned = 0
    while True:
        async with db.unit_of_work() as uow:
            batch = await repository.stale_uploads(uow.session, abandoned_before, batch_size)
            for file in batch:
                if storage is not None:
                    await remove_objects(storage, file)
                file.status, file.deleted_at = FileStatus.deleted, now
                file.reject_reason = "the upload was never completed"
            abandoned += len(batch)
        if len(batch) < batch_size:
            break
    async with db.unit_of_work() as uow:
        resend = await repository.unverified(uow.session, now - VERIFY_RESEND_AFTER, batch_size)
    if abandoned:
        log.info("removed %d abandoned uploads", abandoned)
    return SweepResult(abandoned=abandoned, resend=resend)
