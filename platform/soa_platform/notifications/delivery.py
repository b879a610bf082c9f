"""Delivering outbox entries to the tenant's webhook: at least once, deduplicated by the receiver.

Each POST carries `Idempotency-Key: <dedupe_key>`: a worker killed after the receiver answered but
before the row was marked delivered sends the same key again, and the receiver drops the copy. The row
is locked for the whole attempt, so two copies of the task never post at the same time on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx

from soa_platform.db import Database, utcnow
from soa_platform.notifications import repository
from soa_platform.notifications.models import OutboxEntry

log = logging.getLogger(__name__)

NO_WEBHOOK = "no webhook configured"
SWEEP_BATCH = 500


class DeliveryFailed(Exception):
    """The webhook refused or did not answer; the attempt is recorded and the task retries."""


class EntryBusy(Exception):
    """Another worker holds the entry (or its dead connection still does): try again later."""


async def deliver_entry(db: Database, http: httpx.AsyncClient, webhook_url: str, entry_id: int) -> bool:
    """Deliver one entry; True if this call delivered it, False if there was nothing to do.

    Raises DeliveryFailed (attempt recorded) or EntryBusy, both worth a retry.
    """
    error: str | None = None
    async with db.unit_of_work() as uow:
        entry = await repository.lock_pending(uow.session, entry_id)
        if entry is None:
            exists, delivered_at = await repository.delivery_state(uow.session, entry_id)
            if exists and delivered_at is None:
                raise EntryBusy(f"outbox entry {entry_id} is locked by another delivery")
            return False
        entry.attempts += 1
        if not webhook_url:
            # nothing will ever deliver it: close it rather than have the sweep re-enqueue it forever
            entry.delivered_at = utcnow()
            entry.last_error = NO_WEBHOOK
            return False
        error = await _post(http, webhook_url, entry)
        if error is None:
            entry.delivered_at = utcnow()
            entry.last_error = ""
        else:
            entry.last_error = error[:1000]
    if error is not None:
        raise DeliveryFailed(f"outbox entry {entry_id}: {error}")
    return True


async def _post(http: httpx.AsyncClient, url: str, entry: OutboxEntry) -> str | None:
    """POST the entry's payload; None on a 2xx answer, else what went wrong."""
    headers = {"Idempotency-Key": entry.dedupe_key, "X-SOA-Notification": entry.kind}
    try:
        response = await http.post(url, json=entry.payload, headers=headers)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    if response.is_success:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def retry_delay(attempts: int, *, first: float, cap: float) -> timedelta:
    """How long after its creation an entry with `attempts` failed attempts is re-enqueued by the sweep."""
    return timedelta(seconds=min(first * 2 ** min(attempts, 32), cap))


async def entries_to_resend(
    db: Database, *, first_delay: float, max_delay: float, max_attempts: int, now: datetime | None = None
) -> Sequence[int]:
    """Ids of undelivered entries due again: older than `first_delay`, spaced out as attempts accumulate."""
    now = now or utcnow()
    async with db.unit_of_work() as uow:
        rows = await repository.undelivered(
            uow.session,
            created_before=now - timedelta(seconds=first_delay),
            max_attempts=max_attempts,
            limit=SWEEP_BATCH,
        )
    return [
        entry_id
        for entry_id, attempts, created_at in rows
        if created_at + retry_delay(attempts, first=first_delay, cap=max_delay) <= now
    ]
