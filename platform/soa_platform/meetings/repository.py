"""All SQL of meetings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from soa_platform.meetings.models import (
    ACTIVE_STATES,
    Meeting,
    MeetingModerator,
    MeetingStatus,
    Participant,
    ParticipantState,
)
from soa_platform.messaging.models import Membership


async def add_meeting(session: AsyncSession, meeting: Meeting) -> Meeting:
    session.add(meeting)
    await session.flush()
    return meeting


async def get_meeting(session: AsyncSession, meeting_id: int, *, lock: bool = False) -> Meeting | None:
    """The meeting; with ``lock``, its row stays locked until commit (joins and admissions serialize on it)."""
    if lock:
        query = select(Meeting).where(Meeting.id == meeting_id).with_for_update()
        return (await session.scalars(query)).first()
    return await session.get(Meeting, meeting_id)


async def meetings_for_user(
    session: AsyncSession, user_id: int, *, include_ended: bool, limit: int
) -> Sequence[Meeting]:
    """Meetings whose conversation the user is a member of, newest first."""
    query = (
        select(Meeting)
        .join(Membership, Membership.conversation_id == Meeting.conversation_id)
        .where(Membership.user_id == user_id)
        .order_by(Meeting.id.desc())
        .limit(limit)
    )
    if not include_ended:
        query = query.where(Meeting.status != MeetingStatus.ended)
    return (await session.scalars(query)).all()


async def live_meetings(session: AsyncSession) -> Sequence[Meeting]:
    return (await session.scalars(select(Meeting).where(Meeting.status == MeetingStatus.live))).all()


async def count_live(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).where(Meeting.status == MeetingStatus.live)) or 0)


async def moderator_ids(session: AsyncSession, meeting_id: int) -> list[int]:
    rows = await session.scalars(select(MeetingModerator.user_id).where(MeetingModerator.meeting_id == meeting_id))
    return sorted(rows)


async def add_moderator(session: AsyncSession, meeting_id: int, user_id: int, granted_by: int) -> bool:
    """Grant moderation; False if the user already has it."""
    if await session.get(MeetingModerator, (meeting_id, user_id)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(MeetingModerator(meeting_id=meeting_id, user_id=user_id, granted_by=granted_by))
    except IntegrityError:
        return False
    return True


async def is_moderator(session: AsyncSession, meeting_id: int, user_id: int) -> bool:
    return await session.get(MeetingModerator, (meeting_id, user_id)) is not None


async def add_participant(session: AsyncSession, participant: Participant) -> Participant:
    session.add(participant)
    await session.flush()
    return participant


async def get_participant(session: AsyncSession, meeting_id: int, participant_id: int) -> Participant | None:
    participant = await session.get(Participant, participant_id)
    return participant if participant is not None and participant.meeting_id == meeting_id else None


async def latest_participation(session: AsyncSession, meeting_id: int, user_id: int) -> Participant | None:
    query = (
        select(Participant)
        .where(Participant.meeting_id == meeting_id, Participant.user_id == user_id)
        .order_by(Participant.id.desc())
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def participants(
    session: AsyncSession, meeting_id: int, states: Sequence[ParticipantState] = ACTIVE_STATES
) -> Sequence[Participant]:
    query = (
        select(Participant)
        .where(Participant.meeting_id == meeting_id, Participant.state.in_(list(states)))
        .order_by(Participant.id)
    )
    return (await session.scalars(query)).all()


async def count_in_state(session: AsyncSession, meeting_id: int, state: ParticipantState) -> int:
    query = select(func.count()).where(Participant.meeting_id == meeting_id, Participant.state == state)
    return int(await session.scalar(query) or 0)


async def admitted_counts(session: AsyncSession, meeting_ids: Sequence[int]) -> dict[int, int]:
    if not meeting_ids:
        return {}
    rows = await session.execute(
        select(Participant.meeting_id, func.count())
        .where(Participant.meeting_id.in_(meeting_ids), Participant.state == ParticipantState.admitted)
        .group_by(Participant.meeting_id)
    )
    return {int(mid): int(count) for mid, count in rows.all()}
