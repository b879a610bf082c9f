"""Messaging rules: who may see, post and change what, and what is announced after commit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from soa_platform.audit.service import record
from soa_platform.context import Platform
from soa_platform.db import UnitOfWork, utcnow
from soa_platform.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from soa_platform.files import service as files
from soa_platform.files.schemas import AttachmentOut
from soa_platform.identity import repository as users
from soa_platform.identity.models import Role, User
from soa_platform.messaging import repository
from soa_platform.messaging.models import Conversation, ConversationKind, Message
from soa_platform.messaging.repository import MessageView
from soa_platform.messaging.schemas import ConversationCreate, MessageOut, MessagePage
from soa_platform.metrics import MESSAGES
from soa_platform.notifications import service as notifications

MENTION = re.compile(r"<@(\d{1,18})>")
CHANNEL_KINDS = (ConversationKind.public, ConversationKind.private)
MAX_GROUP_MEMBERS = 9
EXCERPT_CHARS = 200


def _announce(uow: UnitOfWork, platform: Platform, user_ids: Sequence[int], event: dict[str, Any]) -> None:
    recipients = list(user_ids)

    async def publish() -> None:
        await platform.events.publish(recipients, event)

    uow.after_commit(publish)


async def require_member(uow: UnitOfWork, user: User, conversation_id: int) -> Conversation:
    """The conversation, if the user is a member; otherwise 404 (its existence is not revealed)."""
    conversation = await repository.conversation_of_member(uow.session, conversation_id, user.id)
    if conversation is None:
        raise NotFound("no such conversation")
    return conversation


async def page(
    uow: UnitOfWork, user: User, conversation_id: int, *, before: int | None, after: int | None, limit: int
) -> MessagePage:
    """A page of the conversation's messages (thread replies excluded), for a member only."""
    if before is not None and after is not None:
        raise InvalidRequest("use either before or after, not both")
    if not await repository.is_member(uow.session, conversation_id, user.id):
        raise NotFound("no such conversation")
    rows, more = await repository.page(
        uow.session, conversation_id, thread_root_id=None, before=before, after=after, limit=limit
    )
    items = await render(uow, rows)
    return MessagePage.model_construct(items=items, has_more=more, direction="after" if after is not None else "before")


async def create_conversation(
    uow: UnitOfWork, platform: Platform, user: User, body: ConversationCreate
) -> Conversation:
    if user.role is Role.guest:
        raise Forbidden("guests can only use the conversations they are invited to")
    others = sorted(set(body.member_ids) - {user.id})
    found = await users.get_many(uow.session, others)
    if len(found) != len(others) or any(not u.active for u in found):
        raise InvalidRequest("member_ids contains an unknown or disabled user")
    if body.kind in CHANNEL_KINDS:
        if body.name is None:
            raise InvalidRequest("a channel needs a name")
        if await repository.conversation_by_name(uow.session, body.name) is not None:
            raise Conflict(f"a channel named {body.name!r} exists")
        conversation = Conversation(kind=body.kind, name=body.name, topic=body.topic, created_by=user.id)
    else:
        if body.name is not None:
            raise InvalidRequest("direct and group conversations have no name")
        _check_direct_size(body.kind, others)
        key = ",".join(str(i) for i in sorted([user.id, *others]))
        existing = await repository.conversation_by_direct_key(uow.session, key)
        if existing is not None:
            return existing  # the same people always get the same conversation
        conversation = Conversation(kind=body.kind, direct_key=key, topic=body.topic, created_by=user.id)
    members = [user.id, *others]
    conversation = await repository.add_conversation(uow.session, conversation, members)
    _announce(uow, platform, members, {"type": "conversation.created", "conversation_id": conversation.id})
    return conversation


def _check_direct_size(kind: ConversationKind, others: Sequence[int]) -> None:
    if kind is ConversationKind.direct and len(others) != 1:
        raise InvalidRequest("a direct conversation has exactly one other member")
    if kind is ConversationKind.group and not 2 <= len(others) <= MAX_GROUP_MEMBERS - 1:
        raise InvalidRequest(f"a group conversation has 3 to {MAX_GROUP_MEMBERS} members")


async def join(uow: UnitOfWork, platform: Platform, user: User, conversation_id: int) -> Conversation:
    conversation = await repository.get_conversation(uow.session, conversation_id)
    is_member = conversation is not None and await repository.get_membership(uow.session, conversation_id, user.id)
    if conversation is None or (conversation.kind is not ConversationKind.public and not is_member):
        raise NotFound("no such conversation")
    if user.role is Role.guest and not is_member:
        raise Forbidden("guests can only use the conversations they are invited to")
    if conversation.archived:
        raise Conflict("the channel is archived")
    if await repository.add_member(uow.session, conversation_id, user.id):
        members = await repository.member_ids(uow.session, conversation_id)
        _announce(uow, platform, members, _member_event("conversation.member_joined", conversation_id, user.id))
    return conversation


async def add_member(uow: UnitOfWork, platform: Platform, user: User, conversation_id: int, new_id: int) -> None:
    conversation = await require_member(uow, user, conversation_id)
    if conversation.kind not in CHANNEL_KINDS:
        raise InvalidRequest("members are added to channels only; start a new group conversation instead")
    if user.role is Role.guest:
        raise Forbidden("guests cannot invite")
    invitee = await users.get(uow.session, new_id)
    if invitee is None or not invitee.active:
        raise InvalidRequest("unknown or disabled user")
    if await repository.add_member(uow.session, conversation_id, new_id):
        members = await repository.member_ids(uow.session, conversation_id)
        _announce(uow, platform, members, _member_event("conversation.member_added", conversation_id, new_id))


async def remove_member(uow: UnitOfWork, platform: Platform, user: User, conversation_id: int, member_id: int) -> None:
    conversation = await require_member(uow, user, conversation_id)
    if conversation.kind not in CHANNEL_KINDS:
        raise InvalidRequest("direct and group conversations cannot be left")
    membership = await repository.get_membership(uow.session, conversation_id, user.id)
    allowed = member_id == user.id or user.role is Role.admin or (membership is not None and membership.is_owner)
    if not allowed:
        raise Forbidden("only the channel owner or an admin can remove others")
    before = await repository.member_ids(uow.session, conversation_id)
    if await repository.remove_member(uow.session, conversation_id, member_id):
        _announce(uow, platform, before, _member_event("conversation.member_removed", conversation_id, member_id))


def _member_event(kind: str, conversation_id: int, user_id: int) -> dict[str, Any]:
    return {"type": kind, "conversation_id": conversation_id, "user_id": user_id}


async def post(
    uow: UnitOfWork,
    platform: Platform,
    user: User,
    conversation_id: int,
    body: str,
    key: str,
    thread_root_id: int | None,
    file_ids: Sequence[int] = (),
) -> tuple[MessageOut, bool]:
    """Store a message; (message, created). A retry with the same key returns the first message."""
    existing = await repository.message_by_key(uow.session, user.id, key)
    if existing is not None:
        return await _replay(uow, existing, conversation_id, body, thread_root_id), False
    conversation = await require_member(uow, user, conversation_id)
    _check_size(platform, body)
    if conversation.archived:
        raise Conflict("the conversation is archived")
    if thread_root_id is not None:
        await _check_thread_root(uow, conversation_id, thread_root_id)
    message = await repository.insert_message(
        uow.session,
        Message(
            conversation_id=conversation_id, author_id=user.id, body=body, thread_root_id=thread_root_id,
            idempotency_key=key, created_at=utcnow(),
        ),
    )  # fmt: skip
    if message is None:  # a concurrent retry with the same key committed first
        winner = await repository.message_by_key(uow.session, user.id, key)
        assert winner is not None
        return await _replay(uow, winner, conversation_id, body, thread_root_id), False
    await repository.bump_conversation(uow.session, conversation_id, message.id)
    if thread_root_id is not None:
        await repository.bump_reply_count(uow.session, thread_root_id)
    await repository.mark_read(uow.session, conversation_id, user.id, message.id)
    members = await repository.member_ids(uow.session, conversation_id)
    mentioned = sorted({int(m) for m in MENTION.findall(body)} & set(members) - {user.id})
    await repository.add_mentions(uow.session, message, mentioned)
    await _notify_mentions(uow, platform, message, mentioned)
    attachments: list[AttachmentOut] = []
    if file_ids:
        await files.attach(uow, user, message.id, conversation_id, file_ids)
        attachments = (await files.attachments_for(uow.session, [message.id])).get(message.id, [])
    out = to_out(message, {}, mentioned, attachments)

    async def count() -> None:
        MESSAGES.inc()

    uow.after_commit(count)
    _announce(uow, platform, members, {"type": "message.created", "message": out.model_dump(mode="json")})
    return out, True


async def _replay(
    uow: UnitOfWork, message: Message, conversation_id: int, body: str, thread_root_id: int | None
) -> MessageOut:
    if (message.conversation_id, message.body, message.thread_root_id) != (conversation_id, body, thread_root_id):
        raise Conflict("this idempotency key was already used for a different message")
    return (await render(uow, [message]))[0]


def _check_size(platform: Platform, body: str) -> None:
    limit = platform.settings.messaging_max_message_bytes
    if len(body.encode()) > limit:
        raise PayloadTooLarge(f"messages are limited to {limit} bytes")
    if not body.strip():
        raise InvalidRequest("a message cannot be blank")


async def _check_thread_root(uow: UnitOfWork, conversation_id: int, root_id: int) -> None:
    root = await repository.get_message(uow.session, root_id)
    if root is None or root.conversation_id != conversation_id:
        raise InvalidRequest("thread_root_id is not a message of this conversation")
    if root.thread_root_id is not None:
        raise InvalidRequest("replies go to the thread's first message")
    if root.deleted_at is not None:
        raise Conflict("the thread's first message was deleted")


async def _notify_mentions(uow: UnitOfWork, platform: Platform, message: Message, user_ids: Sequence[int]) -> None:
    entry_ids = []
    for user_id in user_ids:
        entry = await notifications.add_mention(
            uow.session, message_id=message.id, conversation_id=message.conversation_id, user_id=user_id,
            author_id=message.author_id, excerpt=message.body[:EXCERPT_CHARS], tenant=platform.settings.tenant,
        )  # fmt: skip
        entry_ids.append(entry.id)

    async def dispatch() -> None:
        for entry_id in entry_ids:
            await platform.tasks.send("soa.notifications.deliver", entry_id)

    if entry_ids:
        uow.after_commit(dispatch)


async def _own_live_message(uow: UnitOfWork, user: User, message_id: int) -> Message:
    message = await repository.get_message(uow.session, message_id)
    if message is None or await repository.get_membership(uow.session, message.conversation_id, user.id) is None:
        raise NotFound("no such message")
    if message.deleted_at is not None:
        raise NotFound("the message was deleted")
    return message


async def edit(uow: UnitOfWork, platform: Platform, user: User, message_id: int, body: str) -> MessageOut:
    message = await _own_live_message(uow, user, message_id)
    if message.author_id != user.id:
        raise Forbidden("only the author can edit a message")
    _check_size(platform, body)
    if body != message.body:
        message.body, message.edited_at = body, utcnow()
        out = (await render(uow, [message]))[0]
        members = await repository.member_ids(uow.session, message.conversation_id)
        _announce(uow, platform, members, {"type": "message.updated", "message": out.model_dump(mode="json")})
        return out
    return (await render(uow, [message]))[0]


async def delete(uow: UnitOfWork, platform: Platform, user: User, message_id: int) -> None:
    message = await repository.get_message(uow.session, message_id)
    if message is None or await repository.get_membership(uow.session, message.conversation_id, user.id) is None:
        raise NotFound("no such message")
    if message.deleted_at is not None:
        return  # deleting twice is harmless
    if message.author_id != user.id and user.role is not Role.admin:
        raise Forbidden("only the author or an admin can delete a message")
    message.deleted_at = utcnow()
    if message.attachment_count:
        # a deleted message's files go as retention would remove them: objects and rows, unless shown elsewhere
        await files.purge_for_messages(uow, platform.storage, [message.id])
        message.attachment_count = 0
    await record(uow.session, "message.deleted", actor=user, target_type="message", target_id=message.id,
                 conversation_id=message.conversation_id, author_id=message.author_id)  # fmt: skip
    members = await repository.member_ids(uow.session, message.conversation_id)
    event = {"type": "message.deleted", "message_id": message.id, "conversation_id": message.conversation_id}
    _announce(uow, platform, members, event)


async def react(uow: UnitOfWork, platform: Platform, user: User, message_id: int, emoji: str, add: bool) -> None:
    message = await _own_live_message(uow, user, message_id)
    changed = (
        await repository.add_reaction(uow.session, message_id, user.id, emoji)
        if add
        else await repository.remove_reaction(uow.session, message_id, user.id, emoji)
    )
    if changed:
        members = await repository.member_ids(uow.session, message.conversation_id)
        event = {
            "type": "reaction.added" if add else "reaction.removed",
            "message_id": message_id,
            "conversation_id": message.conversation_id,
            "user_id": user.id,
            "emoji": emoji,
        }
        _announce(uow, platform, members, event)


async def mark_read(uow: UnitOfWork, platform: Platform, user: User, conversation_id: int, message_id: int) -> None:
    is_member, in_conversation = await repository.read_target(uow.session, conversation_id, user.id, message_id)
    if not is_member:
        raise NotFound("no such conversation")
    if not in_conversation:
        raise InvalidRequest("message_id is not a message of this conversation")
    await repository.mark_read(uow.session, conversation_id, user.id, message_id)
    event = {"type": "conversation.read", "conversation_id": conversation_id, "message_id": message_id}
    _announce(uow, platform, [user.id], event)


async def render(uow: UnitOfWork, messages: Sequence[MessageView]) -> list[MessageOut]:
    extras = await repository.extras_for(uow.session, [m.id for m in messages])
    with_files = [m.id for m in messages if m.attachment_count and m.deleted_at is None]
    attachments = await files.attachments_for(uow.session, with_files) if with_files else {}
    return [
        to_out(m, extras.reactions.get(m.id, {}), extras.mentions.get(m.id, []), attachments.get(m.id, []))
        for m in messages
    ]


def to_out(
    message: MessageView,
    reactions: dict[str, list[int]],
    mentions: Sequence[int],
    attachments: Sequence[AttachmentOut] = (),
) -> MessageOut:
    deleted = message.deleted_at is not None
    # built without validation: every value comes from the database (and the response is serialised by its model)
    return MessageOut.model_construct(
        id=message.id,
        conversation_id=message.conversation_id,
        author_id=message.author_id,
        body=None if deleted else message.body,
        thread_root_id=message.thread_root_id,
        reply_count=message.reply_count or 0,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted=deleted,
        reactions={} if deleted else reactions,
        mentions=list(mentions),
        attachments=[] if deleted else list(attachments),
    )
