"""Conversations, memberships, messages, reactions and mentions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soa_platform.db import Base, Id, UtcDateTime, utcnow


class ConversationKind(enum.StrEnum):
    public = "public"
    private = "private"
    direct = "direct"
    group = "group"


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[ConversationKind] = mapped_column(Enum(ConversationKind, native_enum=False, length=16))
    name: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)  # channels only
    topic: Mapped[str] = mapped_column(String(250), default="")
    # sorted member ids of a direct/group conversation, so the same people get the same one
    direct_key: Mapped[str | None] = mapped_column(String(400), unique=True, default=None)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    last_message_id: Mapped[int] = mapped_column(Id, default=0)


class Membership(Base):
    __tablename__ = "memberships"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_read_message_id: Mapped[int] = mapped_column(Id, default=0)

    __table_args__ = (Index("ix_memberships_user", "user_id"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    thread_root_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), default=None)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    # files attached ([3/4] files): a page asks for attachments only when a message has any
    attachment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    idempotency_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __table_args__ = (
        UniqueConstraint("author_id", "idempotency_key", name="uq_messages_author_idempotency"),
        Index("ix_messages_conversation_id", "conversation_id", "id"),
        Index("ix_messages_thread", "thread_root_id", "id"),
        Index("ix_messages_created_at", "created_at"),
    )


class Reaction(Base):
    __tablename__ = "reactions"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Mention(Base):
    __tablename__ = "mentions"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Id)

    __table_args__ = (Index("ix_mentions_user_conversation", "user_id", "conversation_id", "message_id"),)
