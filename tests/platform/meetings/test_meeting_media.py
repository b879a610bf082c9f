"""Meetings end to end: joins through the public API, media through the real Janus and coturn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from soa_platform.db import utcnow
from soa_platform.meetings.service import maintain_rooms
from soa_platform.meetings.tasks import run_maintenance
from soa_platform.meetings.turn import ice_servers
from tests.platform.harness import Tenant
from tests.platform.meetings.meeting_client import Peers, create_meeting, join
from tests.support.janus_server import CoturnServer, JanusServer
from tests.support.webrtc_peer import JanusRefused, JanusSession, Subscriber


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    peers = Peers()
    try:
        yield peers
    finally:
        await peers.close()


async def frames_flow(subscriber: Subscriber) -> bool:
    """True if the subscriber decodes new frames within half a second."""
    before = subscriber.frames
    await asyncio.sleep(0.5)
    return subscriber.frames > before


async def frames_stall(subscriber: Subscriber, within: float = 3.0) -> bool:
    """True once the subscriber decodes no new frame for half a second (within ``within`` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = subscriber.frames
        await asyncio.sleep(0.5)
        if subscriber.frames == before:
            return True
    return False


async def test_a_member_publishes_and_three_others_decode_the_video(tenant: Tenant, peers: Peers) -> None:
    host = await tenant.user("host")
    guests = [await tenant.user(f"guest{i}") for i in range(3)]
    meeting = await create_meeting(tenant, host, invitee_ids=[g.id for g in guests])
    publisher = await peers.publish(await join(tenant, host, meeting["id"]))
    subscribers = [
        await peers.subscribe(await join(tenant, g, meeting["id"]), [publisher.participant_id]) for g in guests
    ]
    counts = await asyncio.gather(*(s.wait_for_frames(20) for s in subscribers))
    assert min(counts) >= 20
    joined = await join(tenant, host, meeting["id"])  # a rejoin answers the same access
    room = joined["janus"]["room"]
    assert [p.id for p in await tenant.platform.meetings.list_participants(room)] == [publisher.participant_id]  # type: ignore[union-attr]


async def test_relay_only_ice_through_coturn_with_the_join_credentials(tenant: Tenant, peers: Peers) -> None:
    host, guest = await tenant.user("host"), await tenant.user("guest")
    meeting = await create_meeting(tenant, host, invitee_ids=[guest.id])
    publisher = await peers.publish(await join(tenant, host, meeting["id"]), relay=True)
    subscriber = await peers.subscribe(await join(tenant, guest, meeting["id"]), [publisher.participant_id], relay=True)
    assert await subscriber.wait_for_frames(10) >= 10
    assert subscriber.pc is not None
    local = subscriber.pc.getTransceivers()[0].receiver.transport.transport.iceGatherer.getLocalCandidates()
    assert {c.type for c in local} == {"relay"}


async def test_an_expired_turn_credential_is_refused_by_coturn(tenant: Tenant, coturn: CoturnServer) -> None:
    [server] = ice_servers(tenant.settings, "alpha-1", now=time.time() - 2 * tenant.settings.turn_credential_seconds)

    class Sink(asyncio.DatagramProtocol):
        pass

    with pytest.raises(TransactionFailed) as refused:
        await create_turn_endpoint(Sink, (coturn.host, coturn.port), server["username"], server["credential"])
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_a_token_of_another_meeting_or_a_made_up_one_is_refused_by_janus(tenant: Tenant, peers: Peers) -> None:
    host = await tenant.user("host")
    first = await join(tenant, host, (await create_meeting(tenant, host, title="one"))["id"])
    second = await join(tenant, host, (await create_meeting(tenant, host, title="two"))["id"])
    with pytest.raises(JanusRefused) as made_up:
        await JanusSession(first["janus"]["url"], "made-up-token").open()
    assert made_up.value.code == 403
    crossed = {**first, "janus": {**first["janus"], "token": second["janus"]["token"]}}
    with pytest.raises(JanusRefused) as wrong_room:
        await peers.publish(crossed)
    assert wrong_room.value.code == 433  # not on this room's allowed list


async def test_a_kicked_participant_loses_media_and_cannot_come_back(tenant: Tenant, peers: Peers) -> None:
    host, speaker = await tenant.user("host"), await tenant.user("speaker")
    meeting = await create_meeting(tenant, host, invitee_ids=[speaker.id])
    speaker_join = await join(tenant, speaker, meeting["id"])
    publisher = await peers.publish(speaker_join)
    subscriber = await peers.subscribe(await join(tenant, host, meeting["id"]), [publisher.participant_id])
    await subscriber.wait_for_frames(10)
    assert await frames_flow(subscriber)
    url = f"/v1/meetings/{meeting['id']}"
    kicked = await tenant.client.delete(f"{url}/participants/{speaker_join['participant_id']}", headers=host.headers)
    assert kicked.status_code == 204
    assert await frames_stall(subscriber)
    with pytest.raises(JanusRefused) as refused:
        await JanusSession(speaker_join["janus"]["url"], speaker_join["janus"]["token"]).open()
    assert refused.value.code == 403  # the token was revoked
    again = await tenant.client.post(f"{url}/join", headers=speaker.headers)
    assert again.status_code == 200  # removal is not a ban: a fresh join gets a fresh token
    assert again.json()["janus"]["token"] != speaker_join["janus"]["token"]


async def test_a_moderator_mutes_a_participants_video(tenant: Tenant, peers: Peers) -> None:
    host, speaker = await tenant.user("host"), await tenant.user("speaker")
    meeting = await create_meeting(tenant, host, invitee_ids=[speaker.id])
    speaker_join = await join(tenant, speaker, meeting["id"])
    publisher = await peers.publish(speaker_join)
    subscriber = await peers.subscribe(await join(tenant, host, meeting["id"]), [publisher.participant_id])
    await subscriber.wait_for_frames(10)
    assert await frames_flow(subscriber)
    response = await tenant.client.post(
        f"/v1/meetings/{meeting['id']}/participants/{speaker_join['participant_id']}/mute",
        json={"kind": "video", "mute": True},
        headers=host.headers,
    )
    assert response.status_code == 204
    assert await frames_stall(subscriber)


async def test_rooms_come_back_after_janus_restarts_and_clients_rejoin(
    tenant: Tenant, janus: JanusServer, peers: Peers
) -> None:
    host, guest = await tenant.user("host"), await tenant.user("guest")
    meeting = await create_meeting(tenant, host, invitee_ids=[guest.id])
    host_join = await join(tenant, host, meeting["id"])
    guest_join = await join(tenant, guest, meeting["id"])
    room = host_join["janus"]["room"]
    janus.kill()
    janus.start()
    result = await run_maintenance(tenant.platform.db, tenant.settings)  # what the beat-scheduled task runs
    assert (result.recreated, result.closed) == (1, 0)
    assert await tenant.platform.meetings.room_exists(room)  # type: ignore[union-attr]
    # the clients reconnect with the tokens they hold (put back on the new room's list)
    publisher = await peers.publish(host_join)
    subscriber = await peers.subscribe(guest_join, [publisher.participant_id])
    assert await subscriber.wait_for_frames(10) >= 10


async def test_a_join_after_janus_restarts_recreates_the_room_at_once(
    tenant: Tenant, janus: JanusServer, peers: Peers
) -> None:
    host, guest = await tenant.user("host"), await tenant.user("guest")
    meeting = await create_meeting(tenant, host, invitee_ids=[guest.id])
    host_join = await join(tenant, host, meeting["id"])
    janus.kill()
    down = await tenant.client.post(f"/v1/meetings/{meeting['id']}/join", headers=guest.headers)
    assert down.status_code == 503
    assert down.json()["error"] == "meeting_server_unavailable"
    janus.start()
    guest_join = await join(tenant, guest, meeting["id"])
    publisher = await peers.publish(host_join)  # the host's token was restored with the room
    subscriber = await peers.subscribe(guest_join, [publisher.participant_id])
    assert await subscriber.wait_for_frames(10) >= 10


async def test_an_idle_room_is_closed_and_its_meeting_ended(tenant: Tenant) -> None:
    host = await tenant.user("host")
    meeting = await create_meeting(tenant, host)
    joined = await join(tenant, host, meeting["id"])  # joined the API, never connected to Janus
    controller = tenant.platform.meetings
    assert controller is not None
    async with tenant.platform.db.unit_of_work() as uow:
        soon = await maintain_rooms(uow, tenant.settings, controller)
    assert (soon.closed, soon.recreated) == (0, 0)
    later = utcnow() + timedelta(seconds=tenant.settings.meetings_idle_close_seconds + 1)
    async with tenant.platform.db.unit_of_work() as uow:
        idle = await maintain_rooms(uow, tenant.settings, controller, now=later)
    assert idle.closed == 1
    got = (await tenant.client.get(f"/v1/meetings/{meeting['id']}", headers=host.headers)).json()
    assert (got["status"], got["participant_count"]) == ("ended", 0)
    assert not await controller.room_exists(joined["janus"]["room"])
