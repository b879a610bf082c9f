"""Celery tasks of messaging."""

from __future__ import annotations

from typing import Any

from soa_platform.files.tasks import worker_storage
from soa_platform.messaging.retention import purge_expired_messages
from soa_platform.worker.declare import PERMANENT_ERRORS, TRANSIENT_ERRORS, task
from soa_platform.worker.runtime import runtime_for

PURGE_EXPIRED = "soa.messaging.purge_expired"


@task(
    PURGE_EXPIRED,
    bind=True,
    # idempotent: deleting what is already gone deletes nothing; concurrent runs skip each other's rows
    acks_late=True,
    reject_on_worker_lost=True,
    expires=3600,
    autoretry_for=TRANSIENT_ERRORS,
    dont_autoretry_for=PERMANENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=3,
)
def purge_expired(self: Any) -> int:
    """Hard-delete messages older than the retention period; returns how many were deleted."""
    runtime = runtime_for(self.app)
    settings = runtime.settings
    result = runtime.run(
        purge_expired_messages(
            runtime.db, settings, batch_size=settings.retention_batch_size, storage=worker_storage(settings)
        )
    )
    return result.deleted
