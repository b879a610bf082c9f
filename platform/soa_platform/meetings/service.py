"""Meeting rules: who may create, join, wait, moderate and end, and what Janus and the chat are told.

Who may join a meeting is who may read its chat: the members of its conversation (the channel it was held
in, or the private channel made for its invitees). Moderators are the creator and those they grant.
Janus calls happen inside the request, before commit, so a join only answers once its token is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soa_platform.context import Platform
from soa_platform.db import UnitOfWork, utcnow
from soa_platform.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound
from soa_platform.identity.models import Role, User
from soa_platform.identity.passwords import hash_password, verify_password
from soa_platform.meetings import repository
from soa_platform.meetings.janus import JanusController, MeetingServerUnavailable
from soa_platform.meetings.models import Meeting, MeetingStatus, Participant, ParticipantState
from soa_platform.meetings.schemas import IceServer, JanusAccess, JoinOut, MeetingCreate, MeetingOut
from soa_platform.meetings.turn import ice_servers
from soa_platform.messaging import repository as conversations
from soa_platform.messaging import service as messaging
from soa_platform.messaging.models import ConversationKind
from soa_platform.messaging.schemas import ConversationCreate
from soa_platform.settings import PlatformSettings

log = logging.getLogger(__name__)

ROOM_ID_BITS = 52  # Janus room numbers are JSON integers: stay within a double's exact range


class MeetingFull(Conflict):
    code = "meeting_full"


class TooManyMeetings(Conflict):
    code = "too_many_meetings"


class MeetingsOff(NotFound):
    # a tenant without meetings has no meetings API, as one without storage has no files API (not a 5xx)
    code = "meetings_disabled"


def controller(platform: Platform) -> JanusController:
    if platform.meetings is None:
        raise MeetingsOff("meetings are disabled for this workspace (no Janus is configured)")
    return platform.meetings


def room_secret(settings: PlatformSettings, room_id: int) -> str:
    """The room's Janus secret (needed to change, kick in or destroy it), derived so it is never stored."""
    return _derive(settings, f"janus-room-secret:{room_id}", 32)


def room_pin(settings: PlatformSettings, room_id: int) -> str:
    """The room's pin: given to admitted participants; Janus checks it for publishers and subscribers."""
    return _derive(settings, f"janus-room-pin:{room_id}", 20)


def _derive(settings: PlatformSettings, label: str, length: int) -> str:
    key = settings.signing_key.get_secret_value().encode()
    return hmac.new(key, label.encode(), hashlib.sha256).hexdigest()[:length]


def _announce(uow: UnitOfWork, platform: Platform, user_ids: Sequence[int], event: dict[str, Any]) -> None:
    recipients = sorted(set(user_ids))

    async def publish() -> None:
        await platform.events.publish(recipients, event)

    if recipients:
        uow.after_commit(publish)


# ---- meetings ----------------------------------------------------------------------------------


async def create(uow: UnitOfWork, platform: Platform, user: User, body: MeetingCreate) -> Meeting:
    controller(platform)
    if user.role is Role.guest:
        raise Forbidden("guests cannot create meetings")
    if body.channel_id is not None:
        conversation = await messaging.require_member(uow, user, body.channel_id)
        if conversation.archived:
            raise Conflict("the conversation is archived")
    else:
        request = ConversationCreate(
            kind=ConversationKind.private, name=f"meeting-{secrets.token_hex(6)}", topic=body.title[:250],
            member_ids=body.invitee_ids,
        )  # fmt: skip
        conversation = await messaging.create_conversation(uow, platform, user, request)
    meeting = await repository.add_meeting(
        uow.session,
        Meeting(
            title=body.title.strip(), conversation_id=conversation.id, created_by=user.id,
            status=MeetingStatus.scheduled, room_id=secrets.randbits(ROOM_ID_BITS - 1) + 1, starts_at=body.starts_at,
            lobby=body.lobby, password_hash=hash_password(body.password) if body.password else None,
            created_at=utcnow(), last_activity_at=utcnow(),
        ),
    )  # fmt: skip
    await repository.add_moderator(uow.session, meeting.id, user.id, user.id)
    await _announce_in_chat(uow, platform, user, meeting)
    members = await conversations.member_ids(uow.session, conversation.id)
    _announce(uow, platform, members, {"type": "meeting.created", "meeting_id": meeting.id})
    return meeting


async def _announce_in_chat(uow: UnitOfWork, platform: Platform, user: User, meeting: Meeting) -> None:
    """Post the meeting in its chat, as its creator (idempotent by key)."""
    when = f"at {meeting.starts_at.isoformat(timespec='minutes')}" if meeting.starts_at else "now"
    link = f"{platform.settings.public_url.rstrip('/')}/meetings/{meeting.id}"
    body = f"Meeting “{meeting.title}” {when}: {link}"
    await messaging.post(uow, platform, user, meeting.conversation_id, body, f"meeting-{meeting.id}", None)


async def visible(uow: UnitOfWork, user: User, meeting_id: int, *, lock: bool = False) -> Meeting:
    """The meeting, if the user may see it (a member of its conversation); otherwise 404."""
    meeting = await repository.get_meeting(uow.session, meeting_id, lock=lock)
    if meeting is None or await conversations.get_membership(uow.session, meeting.conversation_id, user.id) is None:
        raise NotFound("no such meeting")
    return meeting


async def _moderating(uow: UnitOfWork, user: User, meeting_id: int) -> Meeting:
    meeting = await visible(uow, user, meeting_id, lock=True)
    if not await repository.is_moderator(uow.session, meeting.id, user.id):
        raise Forbidden("only a moderator can do this")
    return meeting


async def render(uow: UnitOfWork, meetings: Sequence[Meeting]) -> list[MeetingOut]:
    counts = await repository.admitted_counts(uow.session, [m.id for m in meetings])
    items = []
    for m in meetings:
        items.append(
            MeetingOut(
                id=m.id, title=m.title, status=m.status, conversation_id=m.conversation_id, created_by=m.created_by,
                starts_at=m.starts_at, lobby=m.lobby, has_password=m.password_hash is not None,
                created_at=m.created_at, started_at=m.started_at, ended_at=m.ended_at,
                moderator_ids=await repository.moderator_ids(uow.session, m.id), participant_count=counts.get(m.id, 0),
            )
        )  # fmt: skip
    return items


async def end(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int) -> Meeting:
    janus = controller(platform)
    meeting = await _moderating(uow, user, meeting_id)
    if meeting.status is not MeetingStatus.ended:
        await close_meeting(uow, platform.settings, janus, meeting)
        members = await conversations.member_ids(uow.session, meeting.conversation_id)
        _announce(uow, platform, members, {"type": "meeting.ended", "meeting_id": meeting.id})
    return meeting


async def close_meeting(uow: UnitOfWork, settings: PlatformSettings, janus: JanusController, meeting: Meeting) -> None:
    """End the meeting: everyone leaves, their tokens are revoked, the room is destroyed."""
    active = await repository.participants(uow.session, meeting.id)
    now = utcnow()
    for participant in active:
        participant.state, participant.left_at = ParticipantState.left, now
    meeting.status, meeting.ended_at = MeetingStatus.ended, now
    tokens = [p.token for p in active]
    try:
        await janus.destroy_room(meeting.room_id, secret=room_secret(settings, meeting.room_id))
        await janus.revoke_tokens(tokens)
        await janus.disconnect(tokens)
    except MeetingServerUnavailable:
        # ended here either way; a Janus that comes back has forgotten the room and the tokens
        log.warning("meeting %s ended while Janus was unreachable", meeting.id)


# ---- joining -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinResult:
    body: JoinOut
    waiting: bool


async def join(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int, password: str | None) -> JoinResult:
    janus = controller(platform)
    settings = platform.settings
    meeting = await visible(uow, user, meeting_id, lock=True)
    if meeting.status is MeetingStatus.ended:
        raise Gone("the meeting has ended")
    moderator = await repository.is_moderator(uow.session, meeting.id, user.id)
    participant = await repository.latest_participation(uow.session, meeting.id, user.id)
    if participant is not None and participant.state is ParticipantState.denied and not moderator:
        raise Forbidden("a moderator declined your request to join")
    if participant is None or participant.state not in (ParticipantState.waiting, ParticipantState.admitted):
        if (
            meeting.password_hash is not None
            and not moderator
            and not verify_password(meeting.password_hash, password or "")
        ):
            raise Forbidden("wrong or missing meeting password")
        waiting = meeting.lobby and not moderator
        if not waiting:
            await _check_limits(uow, settings, meeting)
        participant = await repository.add_participant(
            uow.session,
            Participant(
                meeting_id=meeting.id, user_id=user.id, token=secrets.token_urlsafe(32), created_at=utcnow(),
                state=ParticipantState.waiting if waiting else ParticipantState.admitted,
                admitted_at=None if waiting else utcnow(),
            ),
        )  # fmt: skip
        members = await conversations.member_ids(uow.session, meeting.conversation_id)
        if waiting:
            moderators = await repository.moderator_ids(uow.session, meeting.id)
            event = {"type": "meeting.lobby_waiting", "meeting_id": meeting.id, "participant_id": participant.id,
                     "user_id": user.id}  # fmt: skip
            _announce(uow, platform, moderators, event)
        else:
            _announce(uow, platform, members, _participant_event("meeting.participant_joined", meeting, participant))
    if participant.state is ParticipantState.waiting:
        body = JoinOut(status="waiting", meeting_id=meeting.id, participant_id=participant.id, moderator=moderator)
        return JoinResult(body, waiting=True)
    await _open_room(uow, settings, janus, meeting, participant)
    return JoinResult(_access(settings, meeting, participant, moderator), waiting=False)


def _password_ok(meeting: Meeting, password: str | None) -> bool:
    return meeting.password_hash is None or verify_password(meeting.password_hash, password or "")


async def _check_limits(uow: UnitOfWork, settings: PlatformSettings, meeting: Meeting) -> None:
    """The tenant's caps: participants admitted in this meeting, and meetings live at once."""
    admitted = await repository.count_in_state(uow.session, meeting.id, ParticipantState.admitted)
    if admitted >= settings.meetings_max_participants:
        raise MeetingFull(f"the meeting is full ({settings.meetings_max_participants} participants)")
    limit = settings.meetings_max_concurrent_meetings
    if meeting.status is not MeetingStatus.live and await repository.count_live(uow.session) >= limit:
        raise TooManyMeetings(f"this tenant already has {limit} meetings running; try later")


async def _open_room(
    uow: UnitOfWork, settings: PlatformSettings, janus: JanusController, meeting: Meeting, participant: Participant
) -> None:
    """Make the room exist (again, after a Janus restart) and let this participant's token in."""
    now = utcnow()
    if meeting.status is not MeetingStatus.live:
        meeting.status, meeting.started_at = MeetingStatus.live, meeting.started_at or now
    meeting.last_activity_at = now
    await sync_room(uow, settings, janus, meeting, extra_tokens=[participant.token])


async def sync_room(
    uow: UnitOfWork, settings: PlatformSettings, janus: JanusController, meeting: Meeting, extra_tokens: Sequence[str]
) -> bool:
    """Ensure the room exists; when it had to be created, every admitted participant's token goes back on its
    list (Janus forgot them all). True if the room was (re)created."""
    secret = room_secret(settings, meeting.room_id)
    created = await janus.ensure_room(
        meeting.room_id, secret=secret, pin=room_pin(settings, meeting.room_id),
        max_publishers=settings.meetings_max_participants, description=meeting.title,
    )  # fmt: skip
    tokens = set(extra_tokens)
    if created:
        admitted = await repository.participants(uow.session, meeting.id, [ParticipantState.admitted])
        tokens |= {p.token for p in admitted}
    await janus.allow_tokens(meeting.room_id, secret=secret, tokens=sorted(tokens))
    return created


def _access(settings: PlatformSettings, meeting: Meeting, participant: Participant, moderator: bool) -> JoinOut:
    janus = JanusAccess(
        url=settings.janus_public_url or settings.janus_url, room=meeting.room_id, token=participant.token,
        pin=room_pin(settings, meeting.room_id),
    )  # fmt: skip
    servers = [IceServer(**server) for server in ice_servers(settings, f"{settings.tenant}-{participant.user_id}")]
    return JoinOut(
        status="joined", meeting_id=meeting.id, participant_id=participant.id, moderator=moderator, janus=janus,
        ice_servers=servers,
    )  # fmt: skip


def _participant_event(kind: str, meeting: Meeting, participant: Participant) -> dict[str, Any]:
    return {"type": kind, "meeting_id": meeting.id, "participant_id": participant.id, "user_id": participant.user_id}


async def leave(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int) -> None:
    janus = controller(platform)
    meeting = await visible(uow, user, meeting_id, lock=True)
    participant = await repository.latest_participation(uow.session, meeting.id, user.id)
    if participant is None or participant.state not in (ParticipantState.waiting, ParticipantState.admitted):
        return  # leaving twice is harmless
    try:
        await _drop(uow, platform, janus, meeting, participant, ParticipantState.left, "meeting.participant_left")
    except MeetingServerUnavailable:
        # leaving never fails: a Janus that comes back has forgotten the token, and the reconcile restores
        # only admitted participants' tokens
        log.warning("participant %s left meeting %s while Janus was unreachable", participant.id, meeting.id)


async def _drop(
    uow: UnitOfWork,
    platform: Platform,
    janus: JanusController,
    meeting: Meeting,
    participant: Participant,
    state: ParticipantState,
    event: str,
) -> None:
    was_admitted = participant.state is ParticipantState.admitted
    participant.state, participant.left_at = state, utcnow()
    meeting.last_activity_at = utcnow()
    members = await conversations.member_ids(uow.session, meeting.conversation_id)
    _announce(uow, platform, [*members, participant.user_id], _participant_event(event, meeting, participant))
    if was_admitted and meeting.status is MeetingStatus.live:
        secret = room_secret(platform.settings, meeting.room_id)
        await janus.allow_tokens(meeting.room_id, secret=secret, tokens=[participant.token], add=False)
        await janus.disconnect([participant.token])


# ---- moderation --------------------------------------------------------------------------------


async def admit(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int, participant_id: int) -> None:
    janus = controller(platform)
    meeting = await _moderating(uow, user, meeting_id)
    participant = await _waiting(uow, meeting, participant_id)
    await _check_limits(uow, platform.settings, meeting)
    participant.state, participant.admitted_at = ParticipantState.admitted, utcnow()
    await _open_room(uow, platform.settings, janus, meeting, participant)
    members = await conversations.member_ids(uow.session, meeting.conversation_id)
    _announce(uow, platform, [participant.user_id], _participant_event("meeting.lobby_admitted", meeting, participant))
    _announce(uow, platform, members, _participant_event("meeting.participant_joined", meeting, participant))


async def deny(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int, participant_id: int) -> None:
    controller(platform)
    meeting = await _moderating(uow, user, meeting_id)
    participant = await _waiting(uow, meeting, participant_id)
    participant.state, participant.left_at = ParticipantState.denied, utcnow()
    _announce(uow, platform, [participant.user_id], _participant_event("meeting.lobby_denied", meeting, participant))


async def _waiting(uow: UnitOfWork, meeting: Meeting, participant_id: int) -> Participant:
    if meeting.status is MeetingStatus.ended:
        raise Gone("the meeting has ended")
    participant = await repository.get_participant(uow.session, meeting.id, participant_id)
    if participant is None:
        raise NotFound("no such participant")
    if participant.state is not ParticipantState.waiting:
        raise Conflict(f"the participant is not in the lobby (they are {participant.state.value})")
    return participant


async def remove(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int, participant_id: int) -> None:
    """Kick: the participant's token is revoked and their Janus sessions destroyed; they may not rejoin."""
    janus = controller(platform)
    meeting = await _moderating(uow, user, meeting_id)
    participant = await repository.get_participant(uow.session, meeting.id, participant_id)
    if participant is None:
        raise NotFound("no such participant")
    if participant.state not in (ParticipantState.waiting, ParticipantState.admitted):
        return  # already gone
    await _drop(uow, platform, janus, meeting, participant, ParticipantState.removed, "meeting.participant_removed")


async def mute(
    uow: UnitOfWork, platform: Platform, user: User, meeting_id: int, participant_id: int, kind: str, muted: bool
) -> int:
    """Stop (or resume) relaying a participant's audio or video; returns how many streams changed."""
    janus = controller(platform)
    meeting = await _moderating(uow, user, meeting_id)
    participant = await repository.get_participant(uow.session, meeting.id, participant_id)
    if participant is None or participant.state is not ParticipantState.admitted:
        raise NotFound("no such participant in the meeting")
    secret = room_secret(platform.settings, meeting.room_id)
    changed = await janus.mute_token(meeting.room_id, secret=secret, token=participant.token, kind=kind, mute=muted)
    event = {**_participant_event("meeting.participant_muted", meeting, participant), "kind": kind, "muted": muted}
    members = await conversations.member_ids(uow.session, meeting.conversation_id)
    _announce(uow, platform, members, event)
    return changed


async def grant_moderator(uow: UnitOfWork, platform: Platform, user: User, meeting_id: int, user_id: int) -> None:
    controller(platform)
    meeting = await _moderating(uow, user, meeting_id)
    if await conversations.get_membership(uow.session, meeting.conversation_id, user_id) is None:
        raise InvalidRequest("only someone who may join the meeting can moderate it")
    if await repository.add_moderator(uow.session, meeting.id, user_id, user.id):
        members = await conversations.member_ids(uow.session, meeting.conversation_id)
        event = {"type": "meeting.moderator_granted", "meeting_id": meeting.id, "user_id": user_id}
        _announce(uow, platform, members, event)


async def participants_for(uow: UnitOfWork, user: User, meeting_id: int) -> Sequence[Participant]:
    """Admitted participants; moderators also see the lobby."""
    meeting = await visible(uow, user, meeting_id)
    if await repository.is_moderator(uow.session, meeting.id, user.id):
        return await repository.participants(uow.session, meeting.id)
    return await repository.participants(uow.session, meeting.id, [ParticipantState.admitted])


# ---- maintenance (Celery) ----------------------------------------------------------------------


@dataclass
class MaintenanceResult:
    recreated: int = 0
    closed: int = 0
    unreachable: bool = False


async def maintain_rooms(
    uow: UnitOfWork, settings: PlatformSettings, janus: JanusController, now: datetime | None = None
) -> MaintenanceResult:
    """Close live meetings whose room has been empty longer than the idle limit, and recreate the rooms of the
    others that Janus lost (a restart), with their admitted participants' tokens."""
    now = now or utcnow()
    result = MaintenanceResult()
    try:
        for meeting in await repository.live_meetings(uow.session):
            exists = await janus.room_exists(meeting.room_id)
            present = await janus.list_participants(meeting.room_id) if exists else []
            if present:
                meeting.last_activity_at = now
                continue
            waiting = await repository.count_in_state(uow.session, meeting.id, ParticipantState.waiting)
            idle = (now - meeting.last_activity_at).total_seconds()
            if not waiting and idle >= settings.meetings_idle_close_seconds:
                await close_meeting(uow, settings, janus, meeting)
                result.closed += 1
            elif not exists:
                await sync_room(uow, settings, janus, meeting, extra_tokens=[])
                result.recreated += 1
    except MeetingServerUnavailable:
        result.unreachable = True  # next run; what was done so far is committed
    return result
