"""The outbox in-process: recording mentions once, delivering under a row lock, choosing what the sweep resends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx
import pytest

from soa_platform.db import Database, utcnow
from soa_platform.notifications import service
from soa_platform.notifications.delivery import NO_WEBHOOK, EntryBusy, deliver_entry, entries_to_resend
from soa_platform.notifications.models import OutboxEntry
from soa_platform.notifications.repository import lock_pending
from tests.platform.worker.conftest import WorkerEnv, mention, reload_entry
from tests.platform.worker.webhook import WebhookReceiver


async def _due(db: Database, now: datetime) -> Sequence[int]:
    return await entries_to_resend(db, first_delay=30.0, max_delay=3600.0, max_attempts=5, now=now)


async def _update(db: Database, entry_id: int, **values: object) -> None:
    async with db.unit_of_work() as uow:
        entry = await uow.session.get(OutboxEntry, entry_id)
        assert entry is not None
        for name, value in values.items():
            setattr(entry, name, value)


async def test_a_mention_is_recorded_once(worker_env: WorkerEnv, db: Database) -> None:
    entry = await mention(db)
    async with db.unit_of_work() as uow:
        again = await service.add_mention(uow.session, tenant="alpha", excerpt="hi again", **{
            key: entry.payload[key] for key in ("message_id", "conversation_id", "user_id", "author_id")
        })  # fmt: skip

    assert again.id == entry.id
    assert again.payload["excerpt"] == "hi"


async def test_a_delivery_in_progress_elsewhere_is_retried_not_repeated(worker_env: WorkerEnv, db: Database) -> None:
    entry = await mention(db)
    async with httpx.AsyncClient() as http, db.unit_of_work() as other_worker:
        assert await lock_pending(other_worker.session, entry.id) is not None
        with pytest.raises(EntryBusy):
            await deliver_entry(db, http, "http://127.0.0.1:9/", entry.id)


async def test_a_delivered_entry_is_not_posted_again(worker_env: WorkerEnv, db: Database) -> None:
    entry = await mention(db)
    with WebhookReceiver() as webhook:
        async with httpx.AsyncClient() as http:
            assert await deliver_entry(db, http, webhook.url, entry.id) is True
            assert await deliver_entry(db, http, webhook.url, entry.id) is False
    assert len(webhook.received) == 1


async def test_without_a_webhook_an_entry_is_closed_with_the_reason(worker_env: WorkerEnv, db: Database) -> None:
    entry = await mention(db)
    async with httpx.AsyncClient() as http:
        assert await deliver_entry(db, http, "", entry.id) is False

    closed = await reload_entry(db, entry.id)
    assert closed.delivered_at is not None
    assert closed.last_error == NO_WEBHOOK


async def test_the_sweep_resends_old_undelivered_entries_with_growing_spacing(
    worker_env: WorkerEnv, db: Database
) -> None:
    entry = await mention(db)
    created = (await reload_entry(db, entry.id)).created_at

    assert await _due(db, created + timedelta(seconds=10)) == []
    assert await _due(db, created + timedelta(seconds=31)) == [entry.id]
    await _update(db, entry.id, attempts=2)
    assert await _due(db, created + timedelta(seconds=100)) == []
    assert await _due(db, created + timedelta(seconds=121)) == [entry.id]


async def test_the_sweep_leaves_delivered_and_exhausted_entries_alone(worker_env: WorkerEnv, db: Database) -> None:
    entry = await mention(db)
    later = utcnow() + timedelta(days=1)
    await _update(db, entry.id, attempts=5)
    assert await _due(db, later) == []
    await _update(db, entry.id, attempts=0, delivered_at=utcnow())
    assert await _due(db, later) == []
