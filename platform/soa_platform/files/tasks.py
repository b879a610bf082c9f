"""Celery tasks of files: verification, the upload sweep and the retention purge."""

from __future__ import annotations

import logging
import os
from typing import Any

from soa_platform.files.driver import configured_storage
from soa_platform.files.retention import purge_expired_files, sweep_uploads
from soa_platform.files.scan import ScanError
from soa_platform.files.service import VERIFY, VERIFY_MANY
from soa_platform.files.storage import Storage, StorageError
from soa_platform.files.verification import verify_file
from soa_platform.settings import PlatformSettings
from soa_platform.worker.declare import PERMANENT_ERRORS, TRANSIENT_ERRORS, task
from soa_platform.worker.runtime import runtime_for

log = logging.getLogger(__name__)

SWEEP = "soa.files.sweep_uploads"
PURGE_EXPIRED = "soa.files.purge_expired"

_storage: tuple[int, Storage | None] | None = None


def worker_storage(settings: PlatformSettings) -> Storage | None:
    """This worker process's store (built once per process: its connection pool does not survive a fork)."""
    global _storage
    if _storage is None or _storage[0] != os.getpid():
        _storage = (os.getpid(), configured_storage(settings))
    return _storage[1]


@task(
    VERIFY,
    bind=True,
    # idempotent: the verdict is a conditional update of a pending row, so a redelivered task decides once
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(StorageError, ScanError, *TRANSIENT_ERRORS),
    dont_autoretry_for=PERMANENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,  # stays below the broker's visibility timeout
    retry_jitter=True,
    max_retries=8,
)
def verify(self: Any, file_id: int) -> str | None:
    """Verify completed upload `file_id` and mark it available or rejected (no-op unless it is pending)."""
    runtime = runtime_for(self.app)
    storage = worker_storage(runtime.settings)
    if storage is None:
        log.warning("file %d not verified: file storage is not configured for this worker", file_id)
        return None
    status = runtime.run(verify_file(runtime.db, storage, runtime.settings, file_id))
    return status.value if status is not None else None


@task(VERIFY_MANY, bind=True, acks_late=True, reject_on_worker_lost=True)
def verify_many(self: Any, file_ids: list[int]) -> int:
    """Enqueue `soa.files.verify` for each file of a completed batch, so that several workers share them.
    Running twice only enqueues verifications that find their file decided; returns how many were enqueued."""
    for file_id in file_ids:
        self.app.send_task(VERIFY, args=[file_id])
    return len(file_ids)


@task(SWEEP, bind=True, acks_late=True, reject_on_worker_lost=True, expires=60)
def sweep(self: Any) -> int:
    """Remove abandoned uploads and re-enqueue lost verifications; returns how many were re-enqueued."""
    runtime = runtime_for(self.app)
    result = runtime.run(sweep_uploads(runtime.db, worker_storage(runtime.settings), runtime.settings))
    for file_id in result.resend:
        self.app.send_task(VERIFY, args=[file_id])
    if result.resend:
        log.info("files sweep re-enqueued %d verifications", len(result.resend))
    return len(result.resend)


@task(
    PURGE_EXPIRED,
    bind=True,
    # idempotent: object deletes are, and concurrent runs skip each other's rows
    acks_late=True,
    reject_on_worker_lost=True,
    expires=3600,
    autoretry_for=(StorageError, *TRANSIENT_ERRORS),
    dont_autoretry_for=PERMANENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=3,
)
def purge_expired(self: Any) -> int:
    """Delete expired files with their objects; returns how many."""
    runtime = runtime_for(self.app)
    settings = runtime.settings
    result = runtime.run(
        purge_expired_files(runtime.db, worker_storage(settings), settings, batch_size=settings.retention_batch_size)
    )
    return result.deleted
