"""Request and response bodies of messaging endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from soa_platform.files.schemas import AttachmentOut
from soa_platform.messaging.models import ConversationKind

ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,100}$")]
Emoji = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_+-]{1,64}$")]
UserId = Annotated[int, Field(ge=1, le=2**62)]
MessageId = Annotated[int, Field(ge=1, le=2**62)]


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ConversationKind
    name: ChannelName | None = Field(default=None, description="channels only: lower-case, digits, - and _")
    topic: str = Field(default="", max_length=250)
    member_ids: list[UserId] = Field(default_factory=list, max_length=100, description="others to add")


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: ConversationKind
    name: str | None
    topic: str
    created_by: int
    created_at: datetime
    archived: bool
    last_message_id: int
    member_count: int = 0


class ConversationSummaryOut(ConversationOut):
    unread_count: int
    mention_count: int
    last_read_message_id: int


class ConversationList(BaseModel):
    items: list[ConversationSummaryOut]


class ChannelDirectory(BaseModel):
    items: list[ConversationOut]
    next_after: int | None


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: UserId


class MemberList(BaseModel):
    user_ids: list[int]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, description="text; mention someone with <@user-id>")
    idempotency_key: IdempotencyKey = Field(
        description="a client-chosen key: a retry with the same key creates nothing new"
    )
    thread_root_id: MessageId | None = None
    file_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(
        default_factory=list, max_length=10, description="your own available files to attach (POST /v1/files)"
    )


class MessageEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1)


class ReadMark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: MessageId


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    author_id: int
    body: str | None = Field(description="null once deleted")
    thread_root_id: int | None
    reply_count: int
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reactions: dict[str, list[int]] = Field(default_factory=dict, description="emoji -> user ids")
    mentions: list[int] = Field(default_factory=list)
    attachments: list[AttachmentOut] = Field(default_factory=list, description="files attached, in order")


class MessagePage(BaseModel):
    items: list[MessageOut]
    has_more: bool = Field(description="more messages exist beyond this page in the paging direction")
    direction: Literal["before", "after"]


class SearchResults(BaseModel):
    items: list[MessageOut]
    next_before: int | None
