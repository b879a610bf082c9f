"""Imports every domain's tables so the metadata (and Alembic) sees the whole schema."""

from soa_platform.admin.models import Setting
from soa_platform.audit.models import AuditEvent, AuditExport
from soa_platform.db import Base
from soa_platform.files.models import File, FileStatus, MessageAttachment
from soa_platform.identity.models import Role, User
from soa_platform.meetings.models import Meeting, MeetingModerator, MeetingStatus, Participant, ParticipantState
from soa_platform.messaging.models import Conversation, ConversationKind, Membership, Mention, Message, Reaction
from soa_platform.notifications.models import OutboxEntry

__all__ = [
    "AuditEvent",
    "AuditExport",
    "Base",
    "Conversation",
    "ConversationKind",
    "File",
    "FileStatus",
    "Meeting",
    "MeetingModerator",
    "MeetingStatus",
    "Membership",
    "Mention",
    "Message",
    "MessageAttachment",
    "OutboxEntry",
    "Participant",
    "ParticipantState",
    "Reaction",
    "Role",
    "Setting",
    "User",
]
