"""Recording notifications in the caller's transaction (the outbox); delivery happens in the worker.

The caller dispatches `soa.notifications.deliver(entry.id)` after its commit; if that enqueue is lost,
the periodic `soa.notifications.sweep` delivers the entry anyway.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.notifications import repository
from soa_platform.notifications.models import OutboxEntry

MENTION = "mention"


def mention_key(message_id: int, user_id: int) -> str:
    return f"mention:{message_id}:{user_id}"


async def add_mention(
    session: AsyncSession,
    *,
    message_id: int,
    conversation_id: int,
    user_id: int,
    author_id: int,
    excerpt: str,
    tenant: str,
) -> OutboxEntry:
    """Record that `user_id` was mentioned in `message_id` (flushed, not committed; once per message and user)."""
    payload = {
        "tenant": tenant,
        "message_id": message_id,
        "conversation_id": conversation_id,
        "user_id": user_id,
        "author_id": author_id,
        "excerpt": excerpt,
    }
    return await repository.add_once(
        session, kind=MENTION, dedupe_key=mention_key(message_id, user_id), payload=payload
    )
