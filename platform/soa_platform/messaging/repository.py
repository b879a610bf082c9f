"""All SQL of messaging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, column, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.messaging.models import Conversation, ConversationKind, Membership, Mention, Message, Reaction


@dataclass(frozen=True)
class ConversationSummary:
    conversation: Conversation
    unread_count: int
    mention_count: int
    last_read_message_id: int


async def get_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def conversation_by_name(session: AsyncSession, name: str) -> Conversation | None:
    return (await session.scalars(select(Conversation).where(Conversation.name == name))).first()


async def conversation_by_direct_key(session: AsyncSession, key: str) -> Conversation | None:
    return (await session.scalars(select(Conversation).where(Conversation.direct_key == key))).first()


async def add_conversation(
    session: AsyncSession, conversation: Conversation, member_ids: Sequence[int]
) -> Conversation:
    session.add(conversation)
    await session.flush()
    for user_id in member_ids:
        session.add(
            Membership(conversation_id=conversation.id, user_id=user_id, is_owner=user_id == conversation.created_by)
        )
    await session.flush()
    return conversation


async def get_membership(session: AsyncSession, conversation_id: int, user_id: int) -> Membership | None:
    return await session.get(Membership, (conversation_id, user_id))


async def add_member(session: AsyncSession, conversation_id: int, user_id: int) -> bool:
    """Add a member; False when already one (idempotent)."""
    if await get_membership(session, conversation_id, user_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(Membership(conversation_id=conversation_id, user_id=user_id))
    except IntegrityError:
        return False
    return True


async def remove_member(session: AsyncSession, conversation_id: int, user_id: int) -> bool:
    result = await session.execute(
        delete(Membership).where(Membership.conversation_id == conversation_id, Membership.user_id == user_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def member_ids(session: AsyncSession, conversation_id: int) -> list[int]:
    rows = await session.scalars(select(Membership.user_id).where(Membership.conversation_id == conversation_id))
    return list(rows)


async def member_counts(session: AsyncSession, conversation_ids: Sequence[int]) -> dict[int, int]:
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(Membership.conversation_id, func.count())
        .where(Membership.conversation_id.in_(conversation_ids))
        .group_by(Membership.conversation_id)
    )
    return {int(cid): int(count) for cid, count in rows.all()}


async def conversations_of(session: AsyncSession, user_id: int) -> list[ConversationSummary]:
    """The user's conversations with unread and mention counts, most recently active first."""
    unread = (
        select(func.count(Message.id))
        .where(
            Message.conversation_id == Membership.conversation_id,
            Message.id > Membership.last_read_message_id,
            Message.deleted_at.is_(None),
            Message.author_id != user_id,
        )
        .correlate(Membership)
        .scalar_subquery()
    )
    mentions = (
        select(func.count())
        .select_from(Mention)
        .where(
            Mention.user_id == user_id,
            Mention.conversation_id == Membership.conversation_id,
            Mention.message_id > Membership.last_read_message_id,
        )
        .correlate(Membership)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Conversation, unread, mentions, Membership.last_read_message_id)
        .join(Membership, Membership.conversation_id == Conversation.id)
        .where(Membership.user_id == user_id)
        .order_by(Conversation.last_message_id.desc(), Conversation.id.desc())
    )
    return [ConversationSummary(c, int(u or 0), int(m or 0), int(r)) for c, u, m, r in rows.all()]


async def public_channels(session: AsyncSession, *, after_id: int, limit: int) -> Sequence[Conversation]:
    query = (
        select(Conversation)
        .where(
            Conversation.kind == ConversationKind.public, Conversation.archived.is_(False), Conversation.id > after_id
        )
        .order_by(Conversation.id)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def message_by_key(session: AsyncSession, author_id: int, key: str) -> Message | None:
    query = select(Message).where(Message.author_id == author_id, Message.idempotency_key == key)
    return (await session.scalars(query)).first()


async def get_message(session: AsyncSession, message_id: int) -> Message | None:
    return await session.get(Message, message_id)


async def insert_message(session: AsyncSession, message: Message) -> Message | None:
    """Insert; None when the author's idempotency key already exists (a concurrent retry won)."""
    try:
        async with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None
    return message


async def bump_conversation(session: AsyncSession, conversation_id: int, message_id: int) -> None:
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.last_message_id < message_id)
        .values(last_message_id=message_id)
    )


async def bump_reply_count(session: AsyncSession, root_id: int) -> None:
    await session.execute(update(Message).where(Message.id == root_id).values(reply_count=Message.reply_count + 1))


async def add_mentions(session: AsyncSession, message: Message, user_ids: Sequence[int]) -> None:
    for user_id in user_ids:
        session.add(Mention(message_id=message.id, user_id=user_id, conversation_id=message.conversation_id))


async def mark_read(session: AsyncSession, conversation_id: int, user_id: int, message_id: int) -> None:
    await session.execute(
        update(Membership)
        .where(
            Membership.conversation_id == conversation_id,
            Membership.user_id == user_id,
            Membership.last_read_message_id < message_id,
        )
        .values(last_read_message_id=message_id)
    )


async def page(
    session: AsyncSession,
    conversation_id: int,
    *,
    thread_root_id: int | None,
    before: int | None,
    after: int | None,
    limit: int,
) -> tuple[list[Message], bool]:
    """One page in ascending id order and whether more exist beyond it in the paging direction."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if thread_root_id is None:
        query = query.where(Message.thread_root_id.is_(None))
    else:
        query = query.where(Message.thread_root_id == thread_root_id)
    if after is not None:
        query = query.where(Message.id > after).order_by(Message.id.asc())
    else:
        if before is not None:
            query = query.where(Message.id < before)
        query = query.order_by(Message.id.desc())
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if after is None:
        rows.reverse()
    return rows, more


async def reactions_for(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, dict[str, list[int]]]:
    if not message_ids:
        return {}
    rows = await session.execute(
        select(Reaction.message_id, Reaction.emoji, Reaction.user_id)
        .where(Reaction.message_id.in_(message_ids))
        .order_by(Reaction.message_id, Reaction.emoji, Reaction.created_at)
    )
    result: dict[int, dict[str, list[int]]] = {}
    for message_id, emoji, user_id in rows.all():
        result.setdefault(int(message_id), {}).setdefault(emoji, []).append(int(user_id))
    return result


async def mentions_for(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[int]]:
    if not message_ids:
        return {}
    rows = await session.execute(
        select(Mention.message_id, Mention.user_id).where(Mention.message_id.in_(message_ids)).order_by(Mention.user_id)
    )
    result: dict[int, list[int]] = {}
    for message_id, user_id in rows.all():
        result.setdefault(int(message_id), []).append(int(user_id))
    return result


async def add_reaction(session: AsyncSession, message_id: int, user_id: int, emoji: str) -> bool:
    if await session.get(Reaction, (message_id, user_id, emoji)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(Reaction(message_id=message_id, user_id=user_id, emoji=emoji))
    except IntegrityError:
        return False
    return True


async def remove_reaction(session: AsyncSession, message_id: int, user_id: int, emoji: str) -> bool:
    result = await session.execute(
        delete(Reaction).where(Reaction.message_id == message_id, Reaction.user_id == user_id, Reaction.emoji == emoji)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def search(
    session: AsyncSession, user_id: int, terms: str, *, conversation_id: int | None, before: int | None, limit: int
) -> list[Message]:
    """Full-text search over messages in the user's conversations, newest first."""
    member_of = select(Membership.conversation_id).where(Membership.user_id == user_id)
    query = select(Message).where(Message.conversation_id.in_(member_of), Message.deleted_at.is_(None))
    if session.bind.dialect.name == "sqlite":
        fts = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q").bindparams(q=_fts5_query(terms))
        query = query.where(Message.id.in_(fts.columns(column("rowid", Integer))))
    else:
        query = query.where(
            func.to_tsvector(text("'simple'"), Message.body).op("@@")(
                func.websearch_to_tsquery(text("'simple'"), terms)
            )
        )
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.id < before)
    return list((await session.scalars(query.order_by(Message.id.desc()).limit(limit))).all())


def _fts5_query(terms: str) -> str:
    # every word as a quoted FTS5 string: user input never reaches FTS5's query syntax
    words = [word.replace('"', '""') for word in terms.split()]
    return " ".join(f'"{word}"' for word in words) or '""'
