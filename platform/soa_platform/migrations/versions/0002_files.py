"""files and message attachments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 15:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachment_count", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "files",
        sa.Column("id", _ID, nullable=False),
        sa.Column("owner_id", _ID, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "available", "rejected", "deleted", name="filestatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("reject_reason", sa.String(length=500), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("upload_id", sa.String(length=1024), nullable=True),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("version_id", sa.String(length=1024), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("detected_type", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_files_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
        sa.UniqueConstraint("owner_id", "idempotency_key", name="uq_files_owner_idempotency"),
        sa.UniqueConstraint("storage_key", name=op.f("uq_files_storage_key")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_files_status_created_at", ["status", "created_at"], unique=False)

    op.create_table(
        "message_attachments",
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("file_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_message_attachments_file_id_files"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_attachments_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("message_id", "file_id", name=op.f("pk_message_attachments")),
    )
    with op.batch_alter_table("message_attachments", schema=None) as batch_op:
        batch_op.create_index("ix_message_attachments_file", ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_message_attachments_file")
    op.drop_table("message_attachments")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_status_created_at")
        batch_op.drop_index("ix_files_created_at")
    op.drop_table("files")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("attachment_count")
