"""Request and response bodies of meetings endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from soa_platform.meetings.models import MeetingStatus, ParticipantState

UserId = Annotated[int, Field(ge=1, le=2**62)]
ConversationId = Annotated[int, Field(ge=1, le=2**62)]


class MeetingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime | None = Field(
        default=None, description="when it is scheduled; omit for an instant meeting"
    )
    invitee_ids: list[UserId] = Field(
        default_factory=list, max_length=100, description="people to invite: they get a private chat channel"
    )
    channel_id: ConversationId | None = Field(
        default=None, description="hold it in this conversation instead: its members may join, its chat is the chat"
    )
    password: str | None = Field(default=None, min_length=4, max_length=128, description="asked of non-moderators")
    lobby: bool = Field(default=False, description="non-moderators wait until a moderator admits them")

    @model_validator(mode="after")
    def _invitees_or_channel(self) -> MeetingCreate:
        if self.channel_id is not None and self.invitee_ids:
            raise ValueError("give either invitee_ids or channel_id, not both")
        if not self.title.strip():
            raise ValueError("title must not be blank")
        return self


class MeetingOut(BaseModel):
    id: int
    title: str
    status: MeetingStatus
    conversation_id: int
    created_by: int
    starts_at: datetime | None
    lobby: bool
    has_password: bool
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    moderator_ids: list[int]
    participant_count: int = Field(description="participants admitted right now")


class MeetingList(BaseModel):
    items: list[MeetingOut]


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, max_length=128)


class IceServer(BaseModel):
    urls: list[str]
    username: str
    credential: str


class JanusAccess(BaseModel):
    url: str = Field(description="the Janus API (HTTP; its WebSocket transport serves the same requests)")
    room: int
    token: str = Field(description="send as `token` in every Janus request and in the videoroom join")
    pin: str = Field(description="the room's pin: send as `pin` in the videoroom join")


class JoinOut(BaseModel):
    status: Literal["joined", "waiting"]
    meeting_id: int
    participant_id: int
    moderator: bool
    janus: JanusAccess | None = Field(default=None, description="null while waiting in the lobby")
    ice_servers: list[IceServer] = Field(default_factory=list)


class ParticipantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    state: ParticipantState
    created_at: datetime
    admitted_at: datetime | None


class ParticipantList(BaseModel):
    items: list[ParticipantOut]


class MuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["audio", "video"]
    mute: bool = True
