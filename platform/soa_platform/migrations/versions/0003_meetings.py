"""meetings, their moderators and participants

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", _ID, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("conversation_id", _ID, nullable=False),
        sa.Column("created_by", _ID, nullable=False),
        sa.Column(
            "status",
            sa.Enum("scheduled", "live", "ended", name="meetingstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("room_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", _AT, nullable=True),
        sa.Column("lobby", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("started_at", _AT, nullable=True),
        sa.Column("ended_at", _AT, nullable=True),
        sa.Column("last_activity_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_meetings_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_meetings_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
        sa.UniqueConstraint("room_id", name=op.f("uq_meetings_room_id")),
    )
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.create_index("ix_meetings_conversation", ["conversation_id"], unique=False)
        batch_op.create_index("ix_meetings_status", ["status"], unique=False)

    op.create_table(
        "meeting_moderators",
        sa.Column("meeting_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("granted_by", _ID, nullable=False),
        sa.Column("granted_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["granted_by"], ["users.id"], name=op.f("fk_meeting_moderators_granted_by_users")),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_meeting_moderators_meeting_id_meetings"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_meeting_moderators_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("meeting_id", "user_id", name=op.f("pk_meeting_moderators")),
    )
    op.create_table(
        "meeting_participants",
        sa.Column("id", _ID, nullable=False),
        sa.Column("meeting_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "waiting",
                "admitted",
                "denied",
                "left",
                "removed",
                name="participantstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("admitted_at", _AT, nullable=True),
        sa.Column("left_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_participants_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_meeting_participants_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_participants")),
        sa.UniqueConstraint("token", name=op.f("uq_meeting_participants_token")),
    )
    with op.batch_alter_table("meeting_participants", schema=None) as batch_op:
        batch_op.create_index("ix_meeting_participants_meeting_state", ["meeting_id", "state"], unique=False)
        batch_op.create_index("ix_meeting_participants_user", ["user_id", "meeting_id"], unique=False)


def downgrade() -> None:
    op.drop_table("meeting_participants")
    op.drop_table("meeting_moderators")
    op.drop_table("meetings")
