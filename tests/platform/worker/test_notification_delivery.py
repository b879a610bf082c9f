"""Mention notifications reach the webhook through a real worker: once per Idempotency-Key, even across a kill -9."""

from __future__ import annotations

import asyncio

from soa_platform.db import Database
from soa_platform.notifications.models import OutboxEntry
from soa_platform.worker import CeleryDispatcher
from tests.platform.worker.conftest import WorkerEnv, eventually, mention, reload_entry
from tests.platform.worker.webhook import WebhookReceiver

DELIVER = "soa.notifications.deliver"


async def _delivered(db: Database, entry_id: int) -> OutboxEntry | None:
    entry = await reload_entry(db, entry_id)
    return entry if entry.delivered_at is not None else None


async def test_a_mention_is_posted_with_its_idempotency_key_and_marked_delivered(
    worker_env: WorkerEnv, webhook: WebhookReceiver, db: Database, dispatcher: CeleryDispatcher
) -> None:
    entry = await mention(db, "hello @reader")
    worker_env.start_worker()

    await dispatcher.send(DELIVER, entry.id)

    delivered = await eventually(lambda: _delivered(db, entry.id), what="the entry to be delivered")
    (request,) = webhook.requests_for(entry.dedupe_key)
    assert request.body == entry.payload
    assert request.kind == "mention"
    assert entry.dedupe_key == f"mention:{entry.payload['message_id']}:{entry.payload['user_id']}"
    assert (delivered.attempts, delivered.last_error) == (1, "")


async def test_a_task_of_a_killed_worker_is_redelivered_and_takes_effect_once(
    worker_env: WorkerEnv, webhook: WebhookReceiver, db: Database, dispatcher: CeleryDispatcher
) -> None:
    entry = await mention(db, "hello @reader")
    webhook.hold_first = True
    first = worker_env.start_worker()
    await dispatcher.send(DELIVER, entry.id)
    await asyncio.to_thread(webhook.wait_for_requests, 1)  # the receiver applied it; the worker awaits the answer

    first.kill()
    webhook.release()
    assert (await reload_entry(db, entry.id)).delivered_at is None  # the killed attempt's transaction never committed
    worker_env.start_worker()

    delivered = await eventually(lambda: _delivered(db, entry.id), what="redelivery to the second worker")
    assert len(webhook.requests_for(entry.dedupe_key)) == 2
    assert webhook.effects[entry.dedupe_key] == 1
    assert delivered.attempts == 1


async def test_a_refused_delivery_is_recorded_and_retried(
    worker_env: WorkerEnv, webhook: WebhookReceiver, db: Database, dispatcher: CeleryDispatcher
) -> None:
    entry = await mention(db, "hello @reader")
    webhook.answers = [503]
    worker_env.start_worker()

    await dispatcher.send(DELIVER, entry.id)

    delivered = await eventually(lambda: _delivered(db, entry.id), what="delivery after a retry")
    assert [item.status for item in webhook.requests_for(entry.dedupe_key)] == [503, 200]
    assert (delivered.attempts, delivered.last_error) == (2, "")
    assert webhook.effects[entry.dedupe_key] == 1


async def test_beat_sweeps_up_an_entry_whose_enqueue_was_lost(
    worker_env: WorkerEnv, webhook: WebhookReceiver, db: Database
) -> None:
    worker_env.values.update(SOA_OUTBOX_SWEEP_SECONDS="1", SOA_OUTBOX_RETRY_AFTER_SECONDS="0.5")
    entry = await mention(db, "hello @reader")  # and no task sent: as if the api died right after its commit
    worker_env.start_worker()
    worker_env.start_beat()

    await eventually(lambda: _delivered(db, entry.id), what="the sweep to deliver the entry")
    assert webhook.effects[entry.dedupe_key] == 1
    assert "soa.notifications.sweep" in (worker_env.tmp_path / "worker0.log").read_text()
