"""Media through the real Janus and coturn with aiortc peers: decoding, relay-only ICE, refusals."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from soa_platform.meetings.janus import JanusController
from soa_platform.meetings.turn import turn_credentials
from tests.support.janus_server import CoturnServer, JanusServer
from tests.support.webrtc_peer import JanusSession, Publisher, Subscriber


async def room_with_token(controller: JanusController, token: str) -> int:
    room = secrets.randbits(40) + 1
    await controller.ensure_room(room, secret="s", max_publishers=4, description="media")
    await controller.allow_tokens(room, secret="s", tokens=[token])
    return room


async def test_one_publisher_and_three_subscribers_decode_video(
    controller: JanusController, janus: JanusServer
) -> None:
    room = await room_with_token(controller, "tok-media")
    sessions = [await JanusSession(janus.ws_url, "tok-media").open() for _ in range(4)]
    publisher = await Publisher(sessions[0], room, "tok-media").join_and_publish()
    subscribers = [await Subscriber(s, room, "tok-media").subscribe([publisher.participant_id]) for s in sessions[1:]]
    try:
        counts = await asyncio.gather(*(s.wait_for_frames(20) for s in subscribers))
        assert all(count >= 20 for count in counts)
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        await publisher.close()
        for session in sessions:
            await session.close()


async def test_relay_only_ice_through_coturn_carries_video(
    controller: JanusController, janus: JanusServer, coturn: CoturnServer
) -> None:
    username, password = turn_credentials(coturn.shared_secret, "user-1", 600)
    turn = {"urls": coturn.uri, "username": username, "credential": password}
    room = await room_with_token(controller, "tok-relay")
    pub_session = await JanusSession(janus.ws_url, "tok-relay").open()
    sub_session = await JanusSession(janus.ws_url, "tok-relay").open()
    publisher = await Publisher(pub_session, room, "tok-relay", turn=turn).join_and_publish()
    subscriber = await Subscriber(sub_session, room, "tok-relay", turn=turn).subscribe([publisher.participant_id])
    try:
        assert await subscriber.wait_for_frames(10) >= 10
        for pc in (publisher.pc, subscriber.pc):
            assert pc is not None
            local = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer.getLocalCandidates()
            assert local
            assert all(c.type == "relay" for c in local)  # only coturn's relayed addresses
    finally:
        await subscriber.close()
        await publisher.close()
        await pub_session.close()
        await sub_session.close()


class _Sink(asyncio.DatagramProtocol):
    pass


async def test_coturn_allocates_with_fresh_credentials(coturn: CoturnServer) -> None:
    username, password = turn_credentials(coturn.shared_secret, "fresh", 600)
    transport, _ = await create_turn_endpoint(_Sink, (coturn.host, coturn.port), username, password)
    try:
        assert transport.get_extra_info("sockname")[0] == coturn.host  # the relayed address
    finally:
        transport.close()


async def test_coturn_refuses_an_expired_credential(coturn: CoturnServer) -> None:
    username, password = turn_credentials(coturn.shared_secret, "late", 60, now=time.time() - 3600)
    with pytest.raises(TransactionFailed) as refused:
        await create_turn_endpoint(_Sink, (coturn.host, coturn.port), username, password)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_coturn_refuses_a_credential_signed_with_another_secret(coturn: CoturnServer) -> None:
    username, password = turn_credentials("not-the-tenants-secret", "forger", 600)
    with pytest.raises(TransactionFailed) as refused:
        await create_turn_endpoint(_Sink, (coturn.host, coturn.port), username, password)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
