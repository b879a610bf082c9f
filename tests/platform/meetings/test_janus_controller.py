"""The Janus controller against a real Janus: rooms, tokens, participants, kick, and a Janus restart."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from soa_platform.meetings.janus import JanusController, MeetingServerError, MeetingServerUnavailable
from tests.support.janus_server import JanusServer
from tests.support.webrtc_peer import JanusRefused, JanusSession, Publisher


def new_room() -> int:
    return secrets.randbits(40) + 1


async def test_ensure_room_creates_once_and_destroy_removes_it(controller: JanusController) -> None:
    room = new_room()
    assert await controller.ensure_room(room, secret="s3cret", max_publishers=4, description="standup") is True
    assert await controller.ensure_room(room, secret="s3cret", max_publishers=4, description="standup") is False
    listed = {r.room_id: r for r in await controller.list_rooms()}
    assert listed[room].max_publishers == 4
    assert listed[room].description == "standup"
    assert await controller.destroy_room(room, secret="s3cret") is True
    assert await controller.room_exists(room) is False
    assert await controller.destroy_room(room, secret="s3cret") is False


async def test_a_room_secret_is_needed_to_destroy_it(controller: JanusController) -> None:
    room = new_room()
    await controller.ensure_room(room, secret="right", max_publishers=2, description="x")
    with pytest.raises(MeetingServerError) as refused:
        await controller.destroy_room(room, secret="wrong")
    assert refused.value.status_code == 502
    assert "right" not in refused.value.message
    assert await controller.room_exists(room)


async def test_tokens_allow_a_publisher_in_and_removing_them_shuts_the_door(
    controller: JanusController, janus: JanusServer
) -> None:
    room = new_room()
    await controller.ensure_room(room, secret="s", max_publishers=3, description="x", pin="pin-1")
    await controller.allow_tokens(room, secret="s", tokens=["tok-in"])
    session = await JanusSession(janus.ws_url, "tok-in").open()
    try:
        handle = await session.attach()
        reply = await session.message(
            handle, {"request": "join", "ptype": "publisher", "room": room, "pin": "pin-1", "token": "tok-in"}
        )
        assert reply["plugindata"]["data"]["videoroom"] == "joined"
        assert [p.id for p in await controller.list_participants(room)] == [reply["plugindata"]["data"]["id"]]
    finally:
        await session.close()
    await controller.allow_tokens(room, secret="s", tokens=["tok-in"], add=False)
    with pytest.raises(JanusRefused) as refused:
        await JanusSession(janus.ws_url, "tok-in").open()
    assert refused.value.code == 403  # the stored token is gone: no Janus API at all


async def test_a_token_not_on_the_rooms_list_is_refused(controller: JanusController, janus: JanusServer) -> None:
    room, other = new_room(), new_room()
    await controller.ensure_room(room, secret="s", max_publishers=3, description="x")
    await controller.ensure_room(other, secret="s", max_publishers=3, description="y")
    await controller.allow_tokens(other, secret="s", tokens=["tok-other"])
    session = await JanusSession(janus.ws_url, "tok-other").open()
    try:
        handle = await session.attach()
        with pytest.raises(JanusRefused) as refused:
            await session.message(handle, {"request": "join", "ptype": "publisher", "room": room, "token": "tok-other"})
        assert refused.value.code == 433  # JANUS_VIDEOROOM_ERROR_UNAUTHORIZED: not in the allowed list
    finally:
        await session.close()


async def test_a_subscriber_with_a_wrong_room_pin_is_refused(controller: JanusController, janus: JanusServer) -> None:
    room = new_room()
    await controller.ensure_room(room, secret="s", max_publishers=3, description="x", pin="the-pin")
    await controller.allow_tokens(room, secret="s", tokens=["tok-sub"])
    session = await JanusSession(janus.ws_url, "tok-sub").open()
    try:
        handle = await session.attach()
        with pytest.raises(JanusRefused) as refused:
            await session.message(
                handle,
                {"request": "join", "ptype": "subscriber", "room": room, "pin": "guess", "streams": [{"feed": 1}]},
            )
        assert refused.value.code == 433  # unauthorized: the allowed list guards publishers, the pin everyone
    finally:
        await session.close()


async def test_kick_disconnects_a_publisher(controller: JanusController, janus: JanusServer) -> None:
    room = new_room()
    await controller.ensure_room(room, secret="s", max_publishers=3, description="x")
    await controller.allow_tokens(room, secret="s", tokens=["tok-k"])
    session = await JanusSession(janus.ws_url, "tok-k").open()
    publisher = await Publisher(session, room, "tok-k", audio=True).join_and_publish()
    try:
        streams = await controller.published_streams(room, publisher.participant_id)
        assert sorted(s["type"] for s in streams) == ["audio", "video"]
        audio_mid = next(s["mid"] for s in streams if s["type"] == "audio")
        await controller.moderate(room, secret="s", participant_id=publisher.participant_id, mid=audio_mid, mute=True)
        assert await controller.kick(room, secret="s", participant_id=publisher.participant_id) is True
        await asyncio.wait_for(publisher.kicked.wait(), 5)
        assert await controller.list_participants(room) == []
        assert await controller.kick(room, secret="s", participant_id=publisher.participant_id) is False
    finally:
        await publisher.close()
        await session.close()


async def test_the_controller_recovers_after_janus_is_killed_and_restarted(
    controller: JanusController, janus: JanusServer
) -> None:
    room = new_room()
    await controller.ensure_room(room, secret="s", max_publishers=3, description="x")
    janus.kill()
    with pytest.raises(MeetingServerUnavailable) as down:
        await controller.room_exists(room)
    assert down.value.status_code == 503
    janus.start()
    assert await controller.room_exists(room) is False  # a new session; the room died with Janus
    assert await controller.ensure_room(room, secret="s", max_publishers=3, description="x") is True
    assert await controller.room_exists(room) is True


async def test_a_session_lost_without_a_connection_error_is_reopened(
    controller: JanusController, janus: JanusServer
) -> None:
    await controller.room_exists(1)
    janus.kill()
    janus.start()  # between two calls: the controller only learns of it from "no such session"
    room = new_room()
    assert await controller.ensure_room(room, secret="s", max_publishers=2, description="x") is True


async def test_disconnect_destroys_the_sessions_opened_with_a_token(
    controller: JanusController, janus: JanusServer
) -> None:
    room = new_room()
    await controller.ensure_room(room, secret="s", max_publishers=3, description="x")
    await controller.allow_tokens(room, secret="s", tokens=["tok-gone", "tok-stays"])
    gone = await JanusSession(janus.ws_url, "tok-gone").open()
    stays = await JanusSession(janus.ws_url, "tok-stays").open()
    publisher = await Publisher(gone, room, "tok-gone", audio=True).join_and_publish()
    try:
        assert await controller.mute_token(room, secret="s", token="tok-gone", kind="audio", mute=True) == 1
        assert await controller.disconnect(["tok-gone"]) == 1
        with pytest.raises(JanusRefused) as refused:
            await gone.attach()
        assert refused.value.code == 458  # no such session
        assert await controller.list_participants(room) == []
        await stays.attach()  # the other participant's session is untouched
    finally:
        await publisher.close()
        await gone.close()
        await stays.close()
