"""Celery tasks of the notification outbox."""

from __future__ import annotations

import logging
from typing import Any

from soa_platform.notifications.delivery import DeliveryFailed, EntryBusy, deliver_entry, entries_to_resend
from soa_platform.worker.declare import PERMANENT_ERRORS, TRANSIENT_ERRORS, task
from soa_platform.worker.runtime import runtime_for

log = logging.getLogger(__name__)

DELIVER = "soa.notifications.deliver"
SWEEP = "soa.notifications.sweep"


@task(
    DELIVER,
    bind=True,
    # idempotent: the row is re-read under a lock and the receiver deduplicates by Idempotency-Key
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DeliveryFailed, EntryBusy, *TRANSIENT_ERRORS),
    dont_autoretry_for=PERMANENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,  # stays below the broker's visibility timeout
    retry_jitter=True,
    max_retries=6,
)
def deliver(self: Any, entry_id: int) -> bool:
    """POST outbox entry `entry_id` to the webhook and mark it delivered (no-op if it already is)."""
    runtime = runtime_for(self.app)
    return runtime.run(deliver_entry(runtime.db, runtime.http, runtime.settings.notification_webhook_url, entry_id))


@task(SWEEP, bind=True, acks_late=True, reject_on_worker_lost=True, expires=60)
def sweep(self: Any) -> int:
    """Re-enqueue undelivered entries whose enqueue was lost or whose retries ran out; returns how many."""
    runtime = runtime_for(self.app)
    settings = runtime.settings
    entry_ids = runtime.run(
        entries_to_resend(
            runtime.db,
            first_delay=settings.outbox_retry_after_seconds,
            max_delay=settings.outbox_retry_max_delay_seconds,
            max_attempts=settings.outbox_max_attempts,
        )
    )
    for entry_id in entry_ids:
        self.app.send_task(DELIVER, args=[entry_id])
    if entry_ids:
        log.info("outbox sweep re-enqueued %d entries", len(entry_ids))
    return len(entry_ids)
