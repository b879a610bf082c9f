"""Meetings, their moderators, and each join (a participant with its per-join Janus token)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from soa_platform.db import Base, Id, UtcDateTime, utcnow


class MeetingStatus(enum.StrEnum):
    scheduled = "scheduled"  # created for later; nobody has joined yet
    live = "live"  # its Janus room exists (or is recreated by the reconcile)
    ended = "ended"


class ParticipantState(enum.StrEnum):
    waiting = "waiting"  # in the lobby
    admitted = "admitted"  # holds a token on the room's allowed list
    denied = "denied"
    left = "left"
    removed = "removed"  # kicked by a moderator


ACTIVE_STATES = (ParticipantState.waiting, ParticipantState.admitted)


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # the chat: the channel it was created in, or a private channel made for its invitees
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[MeetingStatus] = mapped_column(
        Enum(MeetingStatus, native_enum=False, length=16), default=MeetingStatus.scheduled
    )
    # a random Janus room number, so a room left over from an older database is never reused
    room_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # None: instant
    lobby: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_activity_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_meetings_status", "status"), Index("ix_meetings_conversation", "conversation_id"))


class MeetingModerator(Base):
    """Users granted moderation (the creator is one implicitly)."""

    __tablename__ = "meeting_moderators"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Participant(Base):
    """One join of one user. The token is both a Janus stored token and an entry of the room's `allowed`
    list; it is revoked when the participant leaves, is removed, or the meeting ends."""

    __tablename__ = "meeting_participants"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[ParticipantState] = mapped_column(Enum(ParticipantState, native_enum=False, length=16))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    admitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __table_args__ = (
        Index("ix_meeting_participants_meeting_state", "meeting_id", "state"),
        Index("ix_meeting_participants_user", "user_id", "meeting_id"),
    )
