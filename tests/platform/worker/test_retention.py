"""The retention purge hard-deletes expired messages with their threads, reactions and mentions, and nothing else."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from soa_platform.admin.models import Setting
from soa_platform.audit.models import AuditEvent
from soa_platform.db import Database, utcnow
from soa_platform.messaging.models import Mention, Message, Reaction
from soa_platform.messaging.retention import purge_expired_messages
from soa_platform.settings import PlatformSettings
from tests.platform.worker.conftest import Chat, WorkerEnv, make_chat, post

NOW = utcnow()
OLD = NOW - timedelta(days=40)


def _settings(worker_env: WorkerEnv, days: int) -> PlatformSettings:
    return worker_env.settings.model_copy(update={"messaging_retention_days": days})


async def _old_thread(db: Database, chat: Chat) -> tuple[int, int]:
    """An expired root with a reaction, a mention and a reply posted yesterday; returns (root, reply)."""
    root = await post(db, chat, created_at=OLD)
    reply = await post(db, chat, created_at=NOW - timedelta(days=1), thread_root_id=root)
    async with db.unit_of_work() as uow:
        uow.session.add(Reaction(message_id=root, user_id=chat.reader_id, emoji="+1"))
        uow.session.add(Mention(message_id=root, user_id=chat.reader_id, conversation_id=chat.conversation_id))
    return root, reply


async def _message_ids(db: Database) -> set[int]:
    async with db.sessions() as session:
        return set((await session.scalars(select(Message.id))).all())


async def _count(db: Database, model: type[Reaction] | type[Mention]) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _purge_events(db: Database) -> list[AuditEvent]:
    async with db.sessions() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.purged"))).all())


async def test_expired_messages_go_with_their_replies_reactions_and_mentions(
    worker_env: WorkerEnv, db: Database
) -> None:
    chat = await make_chat(db)
    await _old_thread(db, chat)
    kept = {await post(db, chat), await post(db, chat, created_at=NOW - timedelta(days=29))}

    result = await purge_expired_messages(db, _settings(worker_env, 30))

    assert result.deleted == 2
    assert await _message_ids(db) == kept
    assert await _count(db, Reaction) == 0
    assert await _count(db, Mention) == 0
    (event,) = await _purge_events(db)
    assert event.details["count"] == 2
    assert event.details["days"] == 30


async def test_purging_twice_in_a_row_is_harmless(worker_env: WorkerEnv, db: Database) -> None:
    chat = await make_chat(db)
    await _old_thread(db, chat)
    kept = {await post(db, chat)}

    first = await purge_expired_messages(db, _settings(worker_env, 30))
    second = await purge_expired_messages(db, _settings(worker_env, 30))

    assert (first.deleted, second.deleted) == (2, 0)
    assert await _message_ids(db) == kept
    assert len(await _purge_events(db)) == 1  # a run that deleted nothing leaves no audit record


async def test_two_purges_at_once_split_the_work(worker_env: WorkerEnv, db: Database) -> None:
    chat = await make_chat(db)
    for _ in range(12):
        await _old_thread(db, chat)
    kept = {await post(db, chat)}
    other = Database(worker_env.settings.sqlalchemy_url)
    try:
        results = await asyncio.gather(
            purge_expired_messages(db, _settings(worker_env, 30), batch_size=2),
            purge_expired_messages(other, _settings(worker_env, 30), batch_size=2),
        )
    finally:
        await other.dispose()

    assert sum(result.deleted for result in results) == 24
    assert await _message_ids(db) == kept


async def test_the_admin_setting_overrides_the_deployment_default(worker_env: WorkerEnv, db: Database) -> None:
    chat = await make_chat(db)
    ten_days_old = await post(db, chat, created_at=NOW - timedelta(days=10))
    async with db.unit_of_work() as uow:
        uow.session.add(Setting(key="retention", value={"days": 7}))

    result = await purge_expired_messages(db, _settings(worker_env, 365))

    assert (result.days, result.deleted) == (7, 1)
    assert ten_days_old not in await _message_ids(db)


async def test_zero_days_keeps_everything(worker_env: WorkerEnv, db: Database) -> None:
    chat = await make_chat(db)
    root, reply = await _old_thread(db, chat)
    async with db.unit_of_work() as uow:
        uow.session.add(Setting(key="retention", value={"days": 0}))

    result = await purge_expired_messages(db, _settings(worker_env, 30))

    assert result.deleted == 0
    assert await _message_ids(db) == {root, reply}
    assert await _purge_events(db) == []
