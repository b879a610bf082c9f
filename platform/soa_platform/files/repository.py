"""All SQL of files and message attachments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, exists, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.files.models import File, FileStatus, MessageAttachment
from soa_platform.messaging.models import Membership, Message

# one application-wide advisory lock serialises quota checks on PostgreSQL (SQLite writers are serial anyway)
_QUOTA_LOCK = 0x50A_F11E
COUNTED = (FileStatus.pending, FileStatus.available)  # what occupies (or will occupy) the store


async def get(session: AsyncSession, file_id: int) -> File | None:
    return await session.get(File, file_id)


async def get_for_update(session: AsyncSession, file_id: int) -> File | None:
    query = select(File).where(File.id == file_id).with_for_update()
    return (await session.scalars(query)).first()


async def get_many(session: AsyncSession, file_ids: Sequence[int]) -> list[File]:
    if not file_ids:
        return []
    return list((await session.scalars(select(File).where(File.id.in_(file_ids)))).all())


async def by_idempotency_keys(session: AsyncSession, owner_id: int, keys: Sequence[str]) -> dict[str, File]:
    query = select(File).where(File.owner_id == owner_id, File.idempotency_key.in_(keys))
    return {file.idempotency_key: file for file in (await session.scalars(query)).all() if file.idempotency_key}


async def get_many_for_update(session: AsyncSession, file_ids: Sequence[int]) -> list[File]:
    """The files, locked in id order (two batches over the same files never wait on each other in a cycle)."""
    query = select(File).where(File.id.in_(file_ids)).order_by(File.id).with_for_update()
    return list((await session.scalars(query)).all())


async def insert_many(session: AsyncSession, files: Sequence[File]) -> bool:
    """Insert the files in one statement; False when one of the owner's idempotency keys already exists (a
    concurrent retry won, and nothing of this batch was inserted)."""
    if all(file.idempotency_key is None for file in files):
        # nothing a concurrent request could share: no savepoint (two round trips fewer under the quota lock)
        session.add_all(files)
        await session.flush()
        return True
    try:
        async with session.begin_nested():
            session.add_all(files)
    except IntegrityError:
        return False
    return True


async def visible_ids(session: AsyncSession, file_ids: Sequence[int], user_id: int) -> set[int]:
    """Those of the files attached to a live message of a conversation the user is a member of."""
    query = (
        select(MessageAttachment.file_id)
        .join(Message, Message.id == MessageAttachment.message_id)
        .join(Membership, Membership.conversation_id == Message.conversation_id)
        .where(MessageAttachment.file_id.in_(file_ids), Message.deleted_at.is_(None), Membership.user_id == user_id)
        .distinct()
    )
    return set((await session.scalars(query)).all())


async def lock_quota(session: AsyncSession) -> None:
    """Hold the quota lock until the transaction ends, so concurrent uploads cannot overshoot together."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _QUOTA_LOCK})


async def usage(session: AsyncSession) -> tuple[int, int]:
    """Declared bytes and number of the files that count against the quota (pending and available)."""
    row = (
        await session.execute(
            select(func.coalesce(func.sum(File.size), 0), func.count()).where(File.status.in_(COUNTED))
        )
    ).one()
    return int(row[0]), int(row[1])


async def visible_through_messages(session: AsyncSession, file_id: int, user_id: int) -> bool:
    """Whether the file is attached to a live message of a conversation the user is a member of."""
    query = select(
        exists()
        .where(MessageAttachment.file_id == file_id)
        .where(Message.id == MessageAttachment.message_id, Message.deleted_at.is_(None))
        .where(Membership.conversation_id == Message.conversation_id, Membership.user_id == user_id)
    )
    return bool(await session.scalar(query))


async def finish_verification(session: AsyncSession, file_id: int, **values: Any) -> bool:
    """Move a pending file to its verdict; False when it is no longer pending (someone else decided)."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(File).where(File.id == file_id, File.status == FileStatus.pending).values(**values)
        ),
    )
    return bool(result.rowcount)


async def conversation_of_message(session: AsyncSession, message_id: int) -> int | None:
    found = await session.scalar(select(Message.conversation_id).where(Message.id == message_id))
    return int(found) if found is not None else None


async def attached_file_ids(session: AsyncSession, message_id: int) -> set[int]:
    rows = await session.scalars(select(MessageAttachment.file_id).where(MessageAttachment.message_id == message_id))
    return set(rows.all())


async def add_attachments(session: AsyncSession, message_id: int, file_ids: Sequence[int], first_position: int) -> None:
    for offset, file_id in enumerate(file_ids):
        session.add(MessageAttachment(message_id=message_id, file_id=file_id, position=first_position + offset))
    await session.flush()
    if file_ids:
        # pages ask for attachments only of messages that have some
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(attachment_count=Message.attachment_count + len(file_ids))
            .execution_options(synchronize_session=False)
        )


async def attachments_for(session: AsyncSession, message_ids: Sequence[int]) -> list[tuple[int, File]]:
    """(message id, file) of the messages' available attachments, in attachment order."""
    if not message_ids:
        return []
    rows = await session.execute(
        select(MessageAttachment.message_id, File)
        .join(File, File.id == MessageAttachment.file_id)
        .where(MessageAttachment.message_id.in_(message_ids), File.status == FileStatus.available)
        .order_by(MessageAttachment.message_id, MessageAttachment.position)
    )
    return [(int(message_id), file) for message_id, file in rows.tuples().all()]


async def remove_attachments_of_file(session: AsyncSession, file_id: int) -> None:
    await session.execute(delete(MessageAttachment).where(MessageAttachment.file_id == file_id))


async def thread_replies(session: AsyncSession, root_ids: Sequence[int]) -> list[int]:
    if not root_ids:
        return []
    return list((await session.scalars(select(Message.id).where(Message.thread_root_id.in_(root_ids)))).all())


async def files_only_attached_to(session: AsyncSession, message_ids: Sequence[int]) -> list[File]:
    """Files attached to some of these messages and to no other message."""
    if not message_ids:
        return []
    elsewhere = (
        select(MessageAttachment.file_id)
        .where(MessageAttachment.file_id == File.id, MessageAttachment.message_id.not_in(message_ids))
        .exists()
    )
    here = select(MessageAttachment.file_id).where(MessageAttachment.message_id.in_(message_ids))
    query = select(File).where(File.id.in_(here), ~elsewhere).order_by(File.id).with_for_update()
    return list((await session.scalars(query)).all())


async def remove_attachments_of_messages(session: AsyncSession, message_ids: Sequence[int]) -> None:
    if message_ids:
        await session.execute(delete(MessageAttachment).where(MessageAttachment.message_id.in_(message_ids)))


async def delete_rows(session: AsyncSession, file_ids: Sequence[int]) -> int:
    if not file_ids:
        return 0
    result = cast(CursorResult[Any], await session.execute(delete(File).where(File.id.in_(file_ids))))
    return int(result.rowcount or 0)


async def expired(session: AsyncSession, cutoff: datetime, limit: int) -> list[File]:
    """Files created before `cutoff` that no message newer than `cutoff` still shows (locked, skipping others')."""
    still_shown = (
        select(MessageAttachment.file_id)
        .join(Message, Message.id == MessageAttachment.message_id)
        .where(MessageAttachment.file_id == File.id, Message.created_at >= cutoff)
        .exists()
    )
    query = (
        select(File)
        .where(File.created_at < cutoff, ~still_shown)
        .order_by(File.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def stale_uploads(session: AsyncSession, before: datetime, limit: int) -> list[File]:
    """Pending files never completed, announced before `before` (locked, skipping others')."""
    query = (
        select(File)
        .where(File.status == FileStatus.pending, File.completed_at.is_(None), File.created_at < before)
        .order_by(File.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def unverified(session: AsyncSession, completed_before: datetime, limit: int) -> list[int]:
    """Completed uploads still pending since before `completed_before`: their verification was lost."""
    query = (
        select(File.id)
        .where(and_(File.status == FileStatus.pending, File.completed_at < completed_before))
        .order_by(File.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
