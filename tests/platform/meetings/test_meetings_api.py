"""Meetings through the public API: create, list, end, who may join, caps, lobby and moderators — on
PostgreSQL and on SQLite (the embedded default)."""

from __future__ import annotations

import time

import pytest

from soa_platform.identity.models import Role
from soa_platform.identity.tokens import TokenService
from tests.platform.harness import Tenant, tenant_settings
from tests.platform.meetings.meeting_client import create_meeting, events_of, join


@pytest.fixture
def tenant(any_tenant: Tenant) -> Tenant:
    return any_tenant


async def test_an_instant_meeting_gets_a_private_chat_with_its_invitees_and_is_announced_there(tenant: Tenant) -> None:
    amina, bilal, outsider = await tenant.user("amina"), await tenant.user("bilal"), await tenant.user("outsider")
    meeting = await create_meeting(tenant, amina, title="Budget review", invitee_ids=[bilal.id])
    assert (meeting["status"], meeting["moderator_ids"], meeting["starts_at"]) == ("scheduled", [amina.id], None)
    cid = meeting["conversation_id"]
    members = (await tenant.client.get(f"/v1/conversations/{cid}/members", headers=bilal.headers)).json()
    assert members["user_ids"] == sorted([amina.id, bilal.id])
    page = (await tenant.client.get(f"/v1/conversations/{cid}/messages", headers=bilal.headers)).json()
    assert "Budget review" in page["items"][0]["body"]
    assert f"/meetings/{meeting['id']}" in page["items"][0]["body"]
    listed = (await tenant.client.get("/v1/meetings", headers=bilal.headers)).json()["items"]
    assert [m["id"] for m in listed] == [meeting["id"]]
    assert (await tenant.client.get("/v1/meetings", headers=outsider.headers)).json()["items"] == []
    assert {"type": "meeting.created", "meeting_id": meeting["id"]} in await events_of(tenant, bilal.id)


async def test_a_scheduled_meeting_in_a_channel_is_open_to_the_channels_members(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    channel = await tenant.client.post(
        "/v1/conversations", json={"kind": "public", "name": "ops", "member_ids": [bilal.id]}, headers=amina.headers
    )
    cid = channel.json()["id"]
    meeting = await create_meeting(tenant, amina, title="Ops", channel_id=cid, starts_at="2030-01-02T09:00:00Z")
    assert meeting["conversation_id"] == cid
    assert meeting["starts_at"].startswith("2030-01-02T09:00")
    joined = await join(tenant, bilal, meeting["id"])
    assert joined["moderator"] is False
    got = (await tenant.client.get(f"/v1/meetings/{meeting['id']}", headers=bilal.headers)).json()
    assert (got["status"], got["participant_count"]) == ("live", 1)
    joined_event = {"type": "meeting.participant_joined", "meeting_id": meeting["id"],
                    "participant_id": joined["participant_id"], "user_id": bilal.id}  # fmt: skip
    assert joined_event in await events_of(tenant, amina.id)  # every member of the channel hears it
    assert (await tenant.client.post(f"/v1/meetings/{meeting['id']}/leave", headers=bilal.headers)).status_code == 204
    assert "meeting.participant_left" in {e["type"] for e in await events_of(tenant, amina.id)}


async def test_the_join_answer_holds_janus_access_and_fresh_turn_credentials(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    meeting = await create_meeting(tenant, amina)
    joined = await join(tenant, amina, meeting["id"])
    settings = tenant.settings
    assert joined["janus"]["url"] == settings.janus_public_url
    assert joined["janus"]["token"]
    assert joined["janus"]["pin"]
    assert settings.janus_api_secret.get_secret_value() not in str(joined)
    [ice] = joined["ice_servers"]
    assert ice["urls"] == settings.turn_uris
    expiry, ref = ice["username"].split(":", 1)
    assert ref == f"alpha-{amina.id}"
    assert 0 < int(expiry) - time.time() <= settings.turn_credential_seconds
    tokens = await tenant.platform.meetings._admin({"janus": "list_tokens"})  # type: ignore[union-attr]
    assert joined["janus"]["token"] in {t["token"] for t in tokens["data"]["tokens"]}


async def test_someone_outside_the_meetings_chat_cannot_see_or_join_it(tenant: Tenant) -> None:
    amina, outsider = await tenant.user("amina"), await tenant.user("outsider")
    meeting = await create_meeting(tenant, amina)
    for response in (
        await tenant.client.get(f"/v1/meetings/{meeting['id']}", headers=outsider.headers),
        await tenant.client.post(f"/v1/meetings/{meeting['id']}/join", headers=outsider.headers),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


async def test_a_token_of_another_tenant_is_refused(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    meeting = await create_meeting(tenant, amina)
    other = tenant_settings("beta", tenant.settings.sqlalchemy_url, None)  # same signing key, even
    foreign, _ = TokenService(other).issue(amina.id)
    response = await tenant.client.post(
        f"/v1/meetings/{meeting['id']}/join", headers={"Authorization": f"Bearer {foreign}"}
    )
    assert response.status_code == 401


async def test_a_meeting_password_is_asked_of_everyone_but_moderators(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    meeting = await create_meeting(tenant, amina, invitee_ids=[bilal.id], password="open sesame")
    assert meeting["has_password"] is True
    url = f"/v1/meetings/{meeting['id']}/join"
    missing = await tenant.client.post(url, headers=bilal.headers)
    wrong = await tenant.client.post(url, json={"password": "guess"}, headers=bilal.headers)
    assert (missing.status_code, wrong.status_code) == (403, 403)
    await join(tenant, bilal, meeting["id"], password="open sesame")
    await join(tenant, amina, meeting["id"])


async def test_the_participant_cap_holds(tenant: Tenant) -> None:
    owner = await tenant.user("owner")
    people = [await tenant.user(f"p{i}") for i in range(4)]
    meeting = await create_meeting(tenant, owner, invitee_ids=[p.id for p in people])
    for person in [owner, *people[:3]]:  # the cap is 4
        await join(tenant, person, meeting["id"])
    full = await tenant.client.post(f"/v1/meetings/{meeting['id']}/join", headers=people[3].headers)
    assert full.status_code == 409
    assert full.json()["error"] == "meeting_full"
    await join(tenant, people[0], meeting["id"])  # a rejoin takes no new seat
    leave = await tenant.client.post(f"/v1/meetings/{meeting['id']}/leave", headers=people[0].headers)
    assert leave.status_code == 204
    await join(tenant, people[3], meeting["id"])


async def test_the_concurrent_meetings_cap_holds(tenant: Tenant) -> None:
    owner = await tenant.user("owner")
    meetings = [await create_meeting(tenant, owner, title=f"m{i}") for i in range(4)]
    for meeting in meetings[:3]:  # the cap is 3
        await join(tenant, owner, meeting["id"])
    refused = await tenant.client.post(f"/v1/meetings/{meetings[3]['id']}/join", headers=owner.headers)
    assert refused.status_code == 409
    assert refused.json()["error"] == "too_many_meetings"
    ended = await tenant.client.post(f"/v1/meetings/{meetings[0]['id']}/end", headers=owner.headers)
    assert ended.json()["status"] == "ended"
    await join(tenant, owner, meetings[3]["id"])


async def test_the_lobby_holds_people_until_a_moderator_admits_them(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    meeting = await create_meeting(tenant, amina, invitee_ids=[bilal.id], lobby=True)
    url = f"/v1/meetings/{meeting['id']}"
    await join(tenant, amina, meeting["id"])  # moderators skip the lobby
    waiting = await tenant.client.post(f"{url}/join", headers=bilal.headers)
    assert waiting.status_code == 202
    assert (waiting.json()["status"], waiting.json()["janus"]) == ("waiting", None)
    pid = waiting.json()["participant_id"]
    lobby_event = {"type": "meeting.lobby_waiting", "meeting_id": meeting["id"], "participant_id": pid,
                   "user_id": bilal.id}  # fmt: skip
    assert lobby_event in await events_of(tenant, amina.id)
    seen_by_bilal = (await tenant.client.get(f"{url}/participants", headers=bilal.headers)).json()["items"]
    assert [p["user_id"] for p in seen_by_bilal] == [amina.id]  # the lobby is for moderators' eyes
    refused = await tenant.client.post(f"{url}/participants/{pid}/admit", headers=bilal.headers)
    assert refused.status_code == 403
    admitted = await tenant.client.post(f"{url}/participants/{pid}/admit", headers=amina.headers)
    assert admitted.status_code == 204
    assert "meeting.lobby_admitted" in {e["type"] for e in await events_of(tenant, bilal.id)}
    joined = await join(tenant, bilal, meeting["id"])
    assert joined["participant_id"] == pid


async def test_someone_denied_in_the_lobby_cannot_ask_again(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    meeting = await create_meeting(tenant, amina, invitee_ids=[bilal.id], lobby=True)
    url = f"/v1/meetings/{meeting['id']}"
    pid = (await tenant.client.post(f"{url}/join", headers=bilal.headers)).json()["participant_id"]
    assert (await tenant.client.post(f"{url}/participants/{pid}/deny", headers=amina.headers)).status_code == 204
    assert "meeting.lobby_denied" in {e["type"] for e in await events_of(tenant, bilal.id)}
    again = await tenant.client.post(f"{url}/join", headers=bilal.headers)
    assert again.status_code == 403
    twice = await tenant.client.post(f"{url}/participants/{pid}/admit", headers=amina.headers)
    assert twice.status_code == 409


async def test_a_granted_moderator_can_moderate_and_others_cannot(tenant: Tenant) -> None:
    amina, bilal, chand = await tenant.user("amina"), await tenant.user("bilal"), await tenant.user("chand")
    meeting = await create_meeting(tenant, amina, invitee_ids=[bilal.id, chand.id])
    url = f"/v1/meetings/{meeting['id']}"
    chand_pid = (await join(tenant, chand, meeting["id"]))["participant_id"]
    assert (await tenant.client.delete(f"{url}/participants/{chand_pid}", headers=bilal.headers)).status_code == 403
    assert (await tenant.client.post(f"{url}/end", headers=bilal.headers)).status_code == 403
    assert (await tenant.client.put(f"{url}/moderators/{bilal.id}", headers=amina.headers)).status_code == 204
    assert (await tenant.client.delete(f"{url}/participants/{chand_pid}", headers=bilal.headers)).status_code == 204
    removed = (await tenant.client.get(f"{url}/participants", headers=amina.headers)).json()["items"]
    assert removed == []
    assert "meeting.participant_removed" in {e["type"] for e in await events_of(tenant, chand.id)}
    ended = await tenant.client.post(f"{url}/end", headers=bilal.headers)
    assert ended.json()["status"] == "ended"
    assert (await tenant.client.post(f"{url}/join", headers=chand.headers)).status_code == 410


async def test_guests_cannot_create_meetings(tenant: Tenant) -> None:
    guest = await tenant.user("guest", role=Role.guest)
    response = await tenant.client.post("/v1/meetings", json={"title": "x"}, headers=guest.headers)
    assert response.status_code == 403


async def test_bad_input_gets_a_precise_4xx(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    post = tenant.client.post
    cases = [
        ({"title": ""}, 422),
        ({"title": "x", "starts_at": "2030-01-01T10:00:00"}, 422),  # no time zone
        ({"title": "x", "invitee_ids": [2], "channel_id": 1}, 422),
        ({"title": "x", "password": "abc"}, 422),
        ({"title": "x", "surprise": 1}, 422),
        ({"title": "x", "invitee_ids": [999_999]}, 400),
        ({"title": "x", "channel_id": 999_999}, 404),
    ]
    for body, expected in cases:
        response = await post("/v1/meetings", json=body, headers=amina.headers)
        assert response.status_code == expected, (body, response.text)
    meeting = await create_meeting(tenant, amina)
    mute = await post(
        f"/v1/meetings/{meeting['id']}/participants/1/mute", json={"kind": "smell"}, headers=amina.headers
    )
    assert mute.status_code == 422
    assert (await tenant.client.get("/v1/meetings/0", headers=amina.headers)).status_code == 422
    assert (await post("/v1/meetings/999999/join", headers=amina.headers)).status_code == 404
    assert (await post("/v1/meetings", json={"title": "x"})).status_code == 401
