"""All SQL of messaging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, Row, String, column, delete, func, literal, select, text, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from soa_platform.messaging.models import Conversation, ConversationKind, Membership, Mention, Message, Reaction


class MessageView(Protocol):
    """What rendering reads of a message: an ORM `Message`, or a row of the page query (no ORM state)."""

    @property
    def id(self) -> int: ...
    @property
    def conversation_id(self) -> int: ...
    @property
    def author_id(self) -> int: ...
    @property
    def body(self) -> str: ...
    @property
    def thread_root_id(self) -> int | None: ...
    @property
    def reply_count(self) -> int: ...
    @property
    def attachment_count(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def edited_at(self) -> datetime | None: ...
    @property
    def deleted_at(self) -> datetime | None: ...


CONVERSATION_COLUMNS = (
    Conversation.id, Conversation.kind, Conversation.name, Conversation.topic, Conversation.created_by,
    Conversation.created_at, Conversation.archived, Conversation.last_message_id,
)  # fmt: skip


# the columns a page reads: rows, not entities, because a 60-message page spent most of its CPU in the ORM
PAGE_COLUMNS = (
    Message.id, Message.conversation_id, Message.author_id, Message.body, Message.thread_root_id,
    Message.reply_count, Message.attachment_count, Message.created_at, Message.edited_at, Message.deleted_at,
)  # fmt: skip


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


async def conversation_of_member(session: AsyncSession, conversation_id: int, user_id: int) -> Conversation | None:
    """The conversation if the user is a member of it, in one query."""
    query = (
        select(Conversation)
        .join(Membership, (Membership.conversation_id == Conversation.id) & (Membership.user_id == user_id))
        .where(Conversation.id == conversation_id)
    )
    return (await session.scalars(query)).first()


async def is_member(session: AsyncSession, conversation_id: int, user_id: int) -> bool:
    query = select(Membership.user_id).where(
        Membership.conversation_id == conversation_id, Membership.user_id == user_id
    )
    return (await session.execute(query)).first() is not None


async def read_target(session: AsyncSession, conversation_id: int, user_id: int, message_id: int) -> tuple[bool, bool]:
    """(is the user a member, is the message one of this conversation), in one query."""
    query = (
        select(Membership.user_id, Message.id)
        .select_from(Membership)
        .outerjoin(Message, (Message.id == message_id) & (Message.conversation_id == Membership.conversation_id))
        .where(Membership.conversation_id == conversation_id, Membership.user_id == user_id)
    )
    row = (await session.execute(query)).first()
    return row is not None, row is not None and row[1] is not None


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


async def conversations_of(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    """The user's conversations with member, unread and mention counts, most recently active first: one
    query returning plain rows (keys: the conversation's columns, member_count, unread_count, mention_count,
    last_read_message_id)."""
    everyone = aliased(Membership)
    members = (
        select(func.count())
        .select_from(everyone)
        .where(everyone.conversation_id == Conversation.id)
        .correlate(Conversation)
        .scalar_subquery()
    )
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
    query = (
        select(
            *CONVERSATION_COLUMNS,
            members.label("member_count"),
            unread.label("unread_count"),
            mentions.label("mention_count"),
            Membership.last_read_message_id,
        )
        .join(Membership, Membership.conversation_id == Conversation.id)
        .where(Membership.user_id == user_id)
        .order_by(Conversation.last_message_id.desc(), Conversation.id.desc())
    )
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


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
) -> tuple[list[Row[Any]], bool]:
    """One page (rows of PAGE_COLUMNS) in ascending id order and whether more exist in the paging direction."""
    query = select(*PAGE_COLUMNS).where(Message.conversation_id == conversation_id)
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
    rows = list((await session.execute(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if after is None:
        rows.reverse()
    return rows, more


@dataclass(frozen=True)
class MessageExtras:
    reactions: dict[int, dict[str, list[int]]]  # message id -> emoji -> user ids, in the order they reacted
    mentions: dict[int, list[int]]  # message id -> mentioned user ids, ascending


async def extras_for(session: AsyncSession, message_ids: Sequence[int]) -> MessageExtras:
    """Reactions and mentions of these messages in one round trip (a mention is a row with emoji '')."""
    extras = MessageExtras({}, {})
    if not message_ids:
        return extras
    reactions = select(Reaction.message_id, Reaction.emoji, Reaction.user_id, Reaction.created_at).where(
        Reaction.message_id.in_(message_ids)
    )
    mentions = select(
        Mention.message_id, literal("", String).label("emoji"), Mention.user_id, literal(None).label("created_at")
    ).where(Mention.message_id.in_(message_ids))
    both = union_all(reactions, mentions).subquery()
    query = select(both.c.message_id, both.c.emoji, both.c.user_id).order_by(
        both.c.message_id, both.c.emoji, both.c.created_at, both.c.user_id
    )
    for message_id, emoji, user_id in (await session.execute(query)).all():
        if emoji:
            extras.reactions.setdefault(int(message_id), {}).setdefault(emoji, []).append(int(user_id))
        else:
            extras.mentions.setdefault(int(message_id), []).append(int(user_id))
    return extras


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
