"""No acknowledged message is lost or duplicated when the api, the worker, Redis or PostgreSQL is killed (-9)
and restarted while a client keeps posting, and a mention reaches the webhook exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from soa_platform.db import Database
from soa_platform.notifications.models import OutboxEntry
from soa_platform.notifications.service import mention_key
from tests.platform.system.conftest import Member, Stack
from tests.platform.system.messaging_client import Poster, read_conversation
from tests.platform.worker.webhook import WebhookReceiver
from tests.support.servers import PostgresServer, RedisServer

MENTION_EVERY = 4  # the first poster mentions bob in every 4th message: the one worker process keeps up
PROGRESS = 8  # acknowledged messages to wait for before a kill and after a restart
KILLS = 3
OUTAGE_FAILURES = 3  # failed client attempts to see before a restart
WITHIN = 60.0


@dataclass(frozen=True)
class Chat:
    alice: Member
    bob: Member
    carol: Member
    conversation_id: int


@pytest.fixture
def webhook(stack: Stack) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        stack.env["SOA_NOTIFICATION_WEBHOOK_URL"] = receiver.url
        yield receiver


@pytest.fixture
async def chat(stack: Stack, webhook: WebhookReceiver) -> Chat:
    """The api and the worker running; alice, bob and carol in one channel."""
    alice, bob, carol = await stack.members("alice", "bob", "carol")
    await stack.start_api()
    await stack.start_worker()
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        body = {"kind": "public", "name": "general", "member_ids": [bob.id, carol.id]}
        response = await client.post("/v1/conversations", json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    return Chat(alice, bob, carol, int(response.json()["id"]))


class Traffic:
    """Posters running concurrently; waits are polled conditions on what they achieved."""

    def __init__(self, posters: list[Poster]) -> None:
        self.posters = posters
        self.stop = asyncio.Event()
        self.tasks = [asyncio.create_task(poster.post_until_stopped(self.stop)) for poster in posters]

    @property
    def acknowledged(self) -> int:
        return sum(len(poster.acknowledged) for poster in self.posters)

    @property
    def failed_attempts(self) -> int:
        return sum(poster.failed_attempts for poster in self.posters)

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WITHIN
        while not condition():
            for task in self.tasks:
                if task.done():
                    task.result()  # a poster's assertion failed: raise it here
                    raise AssertionError("a poster stopped early")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {WITHIN}s waiting for {what}")
            await asyncio.sleep(0.02)

    async def progress(self, count: int = PROGRESS) -> None:
        """Wait until `count` more messages are acknowledged."""
        target = self.acknowledged + count
        await self.until(lambda: self.acknowledged >= target, f"{count} more acknowledged messages")

    async def outage(self) -> None:
        """Wait until client attempts failed: the kill hit requests in flight or about to be sent."""
        target = self.failed_attempts + OUTAGE_FAILURES
        await self.until(lambda: self.failed_attempts >= target, f"{OUTAGE_FAILURES} failed attempts")

    async def finish(self) -> None:
        """Stop after each poster's current message is acknowledged."""
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), WITHIN)


@asynccontextmanager
async def traffic(stack: Stack, chat: Chat) -> AsyncIterator[Traffic]:
    """Three clients posting at once (two of them as alice); the first mentions bob now and then."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        posters = [
            Poster(client, author, chat.conversation_id, f"p{number}", chat.bob if number == 0 else None, MENTION_EVERY)
            for number, author in enumerate([chat.alice, chat.carol, chat.alice])
        ]
        running = Traffic(posters)
        try:
            yield running
            await running.finish()
        finally:
            for task in running.tasks:
                task.cancel()


async def assert_each_acknowledged_message_stored_once(stack: Stack, chat: Chat, run: Traffic) -> dict[str, int]:
    """Compare the conversation as bob reads it with what was acknowledged; returns body -> id."""
    acknowledged = {item.body: item.message_id for poster in run.posters for item in poster.acknowledged}
    assert len(acknowledged) == run.acknowledged  # every body (and key) is unique
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        stored = await read_conversation(client, chat.bob, chat.conversation_id)
    duplicated = [body for body, count in Counter(m["body"] for m in stored).items() if count > 1]
    assert duplicated == []
    assert {m["body"]: m["id"] for m in stored} == acknowledged
    return acknowledged


async def outbox(stack: Stack) -> dict[str, OutboxEntry]:
    db = Database(stack.settings.sqlalchemy_url)
    try:
        async with db.sessions() as session:
            return {entry.dedupe_key: entry for entry in (await session.scalars(select(OutboxEntry))).all()}
    finally:
        await db.dispose()


async def assert_each_mention_delivered_once(
    stack: Stack, chat: Chat, webhook: WebhookReceiver, stored: dict[str, int]
) -> None:
    """Every mention of bob is marked delivered in the outbox and was applied once by the webhook."""
    expected = {mention_key(message_id, chat.bob.id) for body, message_id in stored.items() if "<@" in body}
    deadline = time.monotonic() + WITHIN
    while pending := [key for key, entry in (await outbox(stack)).items() if entry.delivered_at is None]:
        assert time.monotonic() < deadline, f"{len(pending)} notifications undelivered after {WITHIN}s"
        await asyncio.sleep(0.1)
    assert set(await outbox(stack)) == expected
    assert set(webhook.effects) == expected  # the receiver applies a key once; every key arrived
    for key in expected:
        payloads = [request.body for request in webhook.requests_for(key)]
        assert all(payload == payloads[0] for payload in payloads)  # a redelivery is the same notification


async def test_killing_the_api_loses_and_duplicates_no_acknowledged_message(
    stack: Stack, chat: Chat, webhook: WebhookReceiver
) -> None:
    async with traffic(stack, chat) as run:
        for _ in range(KILLS):
            await run.progress()
            assert stack.api is not None
            stack.api.kill()
            await run.outage()
            await stack.start_api()
        await run.progress()

    stored = await assert_each_acknowledged_message_stored_once(stack, chat, run)
    await assert_each_mention_delivered_once(stack, chat, webhook, stored)


async def test_killing_the_worker_delivers_an_in_flight_mention_exactly_once(
    stack: Stack, chat: Chat, webhook: WebhookReceiver
) -> None:
    webhook.hold_first = True  # the first delivery is applied by the receiver, then the worker dies awaiting it
    async with traffic(stack, chat) as run:
        await run.progress()
        (held,) = await asyncio.to_thread(webhook.wait_for_requests, 1)
        assert stack.worker is not None
        stack.worker.kill()
        webhook.release()
        assert (await outbox(stack))[held.key].delivered_at is None  # its transaction died with the worker
        await run.progress()  # the api does not need the worker
        await stack.start_worker()
        await run.progress()
        stack.worker.kill()  # and once more, wherever it is
        await stack.start_worker()
        await run.progress()

    stored = await assert_each_acknowledged_message_stored_once(stack, chat, run)
    await assert_each_mention_delivered_once(stack, chat, webhook, stored)
    assert len(webhook.requests_for(held.key)) >= 2  # sent again after the kill, applied once


async def test_killing_redis_loses_and_duplicates_no_acknowledged_message(
    stack: Stack, chat: Chat, webhook: WebhookReceiver, redis_server: RedisServer
) -> None:
    async with traffic(stack, chat) as run:
        for _ in range(KILLS):
            await run.progress()
            redis_server.kill()
            await run.outage()
            redis_server.start()
        await run.progress()

    stored = await assert_each_acknowledged_message_stored_once(stack, chat, run)
    await assert_each_mention_delivered_once(stack, chat, webhook, stored)


async def test_killing_postgresql_loses_and_duplicates_no_acknowledged_message(
    stack: Stack, chat: Chat, webhook: WebhookReceiver, postgres_server: PostgresServer
) -> None:
    async with traffic(stack, chat) as run:
        for _ in range(KILLS):
            await run.progress()
            postgres_server.kill()
            await run.outage()
            postgres_server.start()
        await run.progress()

    stored = await assert_each_acknowledged_message_stored_once(stack, chat, run)
    await assert_each_mention_delivered_once(stack, chat, webhook, stored)
