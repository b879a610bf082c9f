"""Uploaded files and their attachment to messages."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soa_platform.db import Base, Id, UtcDateTime, utcnow


class FileStatus(enum.StrEnum):
    pending = "pending"  # announced; bytes on their way to the store, or waiting for verification
    available = "available"  # verified: may be attached and downloaded
    rejected = "rejected"  # verification failed (`reject_reason`); its object is removed
    deleted = "deleted"  # removed by its owner, an admin or the stale-upload sweep; the object is gone


class File(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))  # as declared by the uploader
    size: Mapped[int] = mapped_column(BigInteger)  # as declared; verification rejects any other size
    status: Mapped[FileStatus] = mapped_column(
        Enum(FileStatus, native_enum=False, length=16), default=FileStatus.pending
    )
    reject_reason: Mapped[str] = mapped_column(String(500), default="")
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)  # files/<id>/<random token>
    upload_id: Mapped[str | None] = mapped_column(String(1024), default=None)  # multipart uploads only
    idempotency_key: Mapped[str | None] = mapped_column(String(100), default=None)
    version_id: Mapped[str | None] = mapped_column(String(1024), default=None)  # versioned buckets
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    detected_type: Mapped[str | None] = mapped_column(String(255), default=None)  # sniffed from the bytes
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # the client said "uploaded"
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # available or rejected since
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key", name="uq_files_owner_idempotency"),
        Index("ix_files_status_created_at", "status", "created_at"),
        Index("ix_files_created_at", "created_at"),
    )


class MessageAttachment(Base):
    __tablename__ = "message_attachments"

    # both cascade: a message's hard delete (retention) or a file row's removal never fails on the other
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_message_attachments_file", "file_id"),)
