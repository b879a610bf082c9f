"""Meetings: create, list, get, end; join (Janus access and TURN credentials), leave; lobby and moderation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from soa_platform.dependencies import CurrentUser, PlatformDep, UowDep
from soa_platform.identity.models import User
from soa_platform.meetings import repository, service
from soa_platform.meetings.schemas import (
    JoinOut,
    JoinRequest,
    MeetingCreate,
    MeetingList,
    MeetingOut,
    MuteRequest,
    ParticipantList,
    ParticipantOut,
)

# 400: an optional body (join, mute) that is not JSON at all
router = APIRouter(tags=["meetings"], responses={400: {}, 401: {}, 404: {}, 503: {}})

MeetingId = Annotated[int, Path(ge=1, le=2**62)]
ParticipantId = Annotated[int, Path(ge=1, le=2**62)]
UserIdPath = Annotated[int, Path(ge=1, le=2**62)]


async def rate_limited_user(user: CurrentUser, platform: PlatformDep) -> User:
    await platform.limiter.hit("write", str(user.id))
    return user


WritingUser = Annotated[User, Depends(rate_limited_user)]


@router.post("/v1/meetings", response_model=MeetingOut, status_code=201, responses={400: {}, 403: {}, 409: {}})
async def create_meeting(body: MeetingCreate, user: WritingUser, platform: PlatformDep, uow: UowDep) -> MeetingOut:
    """Create an instant or scheduled meeting for invitees (who get a private chat channel) or in a
    conversation you are a member of; it is announced in its chat."""
    meeting = await service.create(uow, platform, user, body)
    return (await service.render(uow, [meeting]))[0]


@router.get("/v1/meetings", response_model=MeetingList)
async def list_meetings(
    user: CurrentUser,
    uow: UowDep,
    platform: PlatformDep,
    include_ended: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MeetingList:
    """Meetings you may join, newest first."""
    service.controller(platform)
    rows = await repository.meetings_for_user(uow.session, user.id, include_ended=include_ended, limit=limit)
    return MeetingList(items=await service.render(uow, rows))


@router.get("/v1/meetings/{meeting_id}", response_model=MeetingOut)
async def get_meeting(meeting_id: MeetingId, user: CurrentUser, platform: PlatformDep, uow: UowDep) -> MeetingOut:
    service.controller(platform)
    return (await service.render(uow, [await service.visible(uow, user, meeting_id)]))[0]


@router.post("/v1/meetings/{meeting_id}/end", response_model=MeetingOut, responses={403: {}})
async def end_meeting(meeting_id: MeetingId, user: WritingUser, platform: PlatformDep, uow: UowDep) -> MeetingOut:
    """End the meeting for everyone (moderators; idempotent)."""
    meeting = await service.end(uow, platform, user, meeting_id)
    return (await service.render(uow, [meeting]))[0]


@router.post(
    "/v1/meetings/{meeting_id}/join",
    response_model=JoinOut,
    responses={
        202: {"description": "waiting in the lobby", "model": JoinOut},
        400: {},
        403: {},
        409: {},
        410: {},
        502: {},
    },
)
async def join_meeting(
    meeting_id: MeetingId, user: WritingUser, platform: PlatformDep, uow: UowDep, response: Response,
    body: JoinRequest | None = None,
) -> JoinOut:  # fmt: skip
    """Join: the Janus endpoint, room, pin and a per-join token, and ICE servers with short-lived TURN
    credentials. In a meeting with a lobby, 202 until a moderator admits you (ask again then)."""
    result = await service.join(uow, platform, user, meeting_id, body.password if body else None)
    if result.waiting:
        response.status_code = status.HTTP_202_ACCEPTED
    return result.body


@router.post("/v1/meetings/{meeting_id}/leave", status_code=204)
async def leave_meeting(meeting_id: MeetingId, user: WritingUser, platform: PlatformDep, uow: UowDep) -> Response:
    """Leave (or stop waiting); your token stops working. Idempotent."""
    await service.leave(uow, platform, user, meeting_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/meetings/{meeting_id}/participants", response_model=ParticipantList)
async def list_participants(
    meeting_id: MeetingId, user: CurrentUser, platform: PlatformDep, uow: UowDep
) -> ParticipantList:
    """Who is in the meeting; moderators also see the lobby."""
    service.controller(platform)
    rows = await service.participants_for(uow, user, meeting_id)
    return ParticipantList(items=[ParticipantOut.model_validate(p) for p in rows])


@router.post(
    "/v1/meetings/{meeting_id}/participants/{participant_id}/admit", status_code=204,
    responses={403: {}, 409: {}, 410: {}},
)  # fmt: skip
async def admit(
    meeting_id: MeetingId, participant_id: ParticipantId, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    """Let someone in from the lobby (moderators)."""
    await service.admit(uow, platform, user, meeting_id, participant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/meetings/{meeting_id}/participants/{participant_id}/deny", status_code=204,
    responses={403: {}, 409: {}, 410: {}},
)  # fmt: skip
async def deny(
    meeting_id: MeetingId, participant_id: ParticipantId, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    """Turn someone in the lobby away (moderators); they cannot ask again in this meeting."""
    await service.deny(uow, platform, user, meeting_id, participant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/meetings/{meeting_id}/participants/{participant_id}", status_code=204, responses={403: {}})
async def remove(
    meeting_id: MeetingId, participant_id: ParticipantId, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    """Remove someone from the meeting (moderators): their media stops and their token is revoked."""
    await service.remove(uow, platform, user, meeting_id, participant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/meetings/{meeting_id}/participants/{participant_id}/mute", status_code=204, responses={403: {}})
async def mute(
    meeting_id: MeetingId,
    participant_id: ParticipantId,
    body: MuteRequest,
    user: WritingUser,
    platform: PlatformDep,
    uow: UowDep,
) -> Response:
    """Stop (or resume) relaying someone's audio or video (moderators)."""
    await service.mute(uow, platform, user, meeting_id, participant_id, body.kind, body.mute)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/v1/meetings/{meeting_id}/moderators/{user_id}", status_code=204, responses={400: {}, 403: {}})
async def grant_moderator(
    meeting_id: MeetingId, user_id: UserIdPath, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    """Make someone who may join a moderator too (moderators; idempotent)."""
    await service.grant_moderator(uow, platform, user, meeting_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
