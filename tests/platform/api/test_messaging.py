"""Messaging: conversations, membership, messages, threads, reactions, read state, search."""

from __future__ import annotations

import asyncio
from typing import Any

from soa_platform.identity.models import Role
from tests.platform.harness import Tenant, User


async def channel(
    tenant: Tenant, owner: User, name: str, kind: str = "public", members: list[int] | None = None
) -> int:
    body = {"kind": kind, "name": name, "member_ids": members or []}
    response = await tenant.client.post("/v1/conversations", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def send(tenant: Tenant, user: User, conversation_id: int, body: str, key: str, **extra: Any) -> dict[str, Any]:
    response = await tenant.client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"body": body, "idempotency_key": key, **extra},
        headers=user.headers,
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def test_a_retry_with_the_same_idempotency_key_creates_nothing_new(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    cid = await channel(tenant, amina, "general")
    url = f"/v1/conversations/{cid}/messages"
    body = {"body": "salaam", "idempotency_key": "k-1"}
    first = await tenant.client.post(url, json=body, headers=amina.headers)
    second = await tenant.client.post(url, json=body, headers=amina.headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    page = (await tenant.client.get(url, headers=amina.headers)).json()
    assert [m["body"] for m in page["items"]] == ["salaam"]


async def test_concurrent_retries_store_one_message(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    cid = await channel(tenant, amina, "general")
    url = f"/v1/conversations/{cid}/messages"
    body = {"body": "once", "idempotency_key": "race"}
    responses = await asyncio.gather(*(tenant.client.post(url, json=body, headers=amina.headers) for _ in range(8)))
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert sorted(r.status_code for r in responses).count(201) == 1


async def test_reusing_a_key_for_a_different_message_is_a_conflict(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    cid = await channel(tenant, amina, "general")
    await send(tenant, amina, cid, "one", "k")
    response = await tenant.client.post(
        f"/v1/conversations/{cid}/messages", json={"body": "two", "idempotency_key": "k"}, headers=amina.headers
    )
    assert response.status_code == 409


async def test_a_user_never_sees_a_conversation_they_are_not_in(tenant: Tenant) -> None:
    amina, bilal, chen = await tenant.user("amina"), await tenant.user("bilal"), await tenant.user("chen")
    private = await channel(tenant, amina, "secret-plans", kind="private", members=[bilal.id])
    await send(tenant, amina, private, "for bilal only", "p1")
    dm = (
        await tenant.client.post(
            "/v1/conversations", json={"kind": "direct", "member_ids": [bilal.id]}, headers=amina.headers
        )
    ).json()["id"]
    await send(tenant, amina, dm, "dm text", "d1")
    for url in (
        f"/v1/conversations/{private}",
        f"/v1/conversations/{private}/messages",
        f"/v1/conversations/{dm}",
        f"/v1/conversations/{dm}/messages",
        f"/v1/conversations/{private}/members",
    ):
        assert (await tenant.client.get(url, headers=chen.headers)).status_code == 404
    assert (await tenant.client.post(f"/v1/conversations/{private}/join", headers=chen.headers)).status_code == 404
    listed = (await tenant.client.get("/v1/conversations", headers=chen.headers)).json()["items"]
    assert listed == []
    directory = (await tenant.client.get("/v1/channels", headers=chen.headers)).json()["items"]
    assert private not in [c["id"] for c in directory]
    found = (await tenant.client.get("/v1/search", params={"q": "bilal"}, headers=chen.headers)).json()["items"]
    assert found == []
    response = await tenant.client.post(
        f"/v1/conversations/{private}/messages", json={"body": "x", "idempotency_key": "c"}, headers=chen.headers
    )
    assert response.status_code == 404


async def test_public_channels_are_joinable_and_direct_conversations_are_unique(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    cid = await channel(tenant, amina, "announcements")
    assert (await tenant.client.post(f"/v1/conversations/{cid}/join", headers=bilal.headers)).status_code == 200
    assert (await tenant.client.post(f"/v1/conversations/{cid}/join", headers=bilal.headers)).status_code == 200
    members = (await tenant.client.get(f"/v1/conversations/{cid}/members", headers=bilal.headers)).json()
    assert members == {"user_ids": sorted([amina.id, bilal.id])}
    first = await tenant.client.post(
        "/v1/conversations", json={"kind": "direct", "member_ids": [bilal.id]}, headers=amina.headers
    )
    second = await tenant.client.post(
        "/v1/conversations", json={"kind": "direct", "member_ids": [amina.id]}, headers=bilal.headers
    )
    assert first.json()["id"] == second.json()["id"]


async def test_guests_see_only_what_they_are_invited_to(tenant: Tenant) -> None:
    amina, guest = await tenant.user("amina"), await tenant.user("visitor", Role.guest)
    open_channel = await channel(tenant, amina, "lobby")
    invited = await channel(tenant, amina, "project-x", kind="private", members=[guest.id])
    assert (await tenant.client.get("/v1/channels", headers=guest.headers)).json()["items"] == []
    assert (
        await tenant.client.post(f"/v1/conversations/{open_channel}/join", headers=guest.headers)
    ).status_code == 403
    create = await tenant.client.post(
        "/v1/conversations", json={"kind": "public", "name": "mine"}, headers=guest.headers
    )
    assert create.status_code == 403
    assert (await tenant.client.get("/v1/users", headers=guest.headers)).status_code == 403
    await send(tenant, guest, invited, "hello from the guest", "g1")
    listed = (await tenant.client.get("/v1/conversations", headers=guest.headers)).json()["items"]
    assert [c["id"] for c in listed] == [invited]


async def test_cursor_pagination_both_ways_has_no_gap_or_overlap(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    cid = await channel(tenant, amina, "general")
    ids = [(await send(tenant, amina, cid, f"m{i}", f"k{i}"))["id"] for i in range(25)]
    url = f"/v1/conversations/{cid}/messages"
    seen: list[int] = []
    page = (await tenant.client.get(url, params={"limit": 10}, headers=amina.headers)).json()
    seen = [m["id"] for m in page["items"]] + seen
    while page["has_more"]:
        page = (await tenant.client.get(url, params={"limit": 10, "before": seen[0]}, headers=amina.headers)).json()
        seen = [m["id"] for m in page["items"]] + seen
    assert seen == ids
    forward: list[int] = []
    cursor = 0
    while True:
        page = (await tenant.client.get(url, params={"limit": 7, "after": cursor}, headers=amina.headers)).json()
        forward += [m["id"] for m in page["items"]]
        if not page["has_more"]:
            break
        cursor = forward[-1]
    assert forward == ids
    both = await tenant.client.get(url, params={"before": 5, "after": 1}, headers=amina.headers)
    assert both.status_code == 400


async def test_threads_reactions_edit_and_soft_delete(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    cid = await channel(tenant, amina, "general", members=[bilal.id])
    root = await send(tenant, amina, cid, "proposal", "r")
    reply = await send(tenant, bilal, cid, "agreed", "a", thread_root_id=root["id"])
    timeline = (await tenant.client.get(f"/v1/conversations/{cid}/messages", headers=bilal.headers)).json()
    assert [m["id"] for m in timeline["items"]] == [root["id"]]
    assert timeline["items"][0]["reply_count"] == 1
    thread = (await tenant.client.get(f"/v1/messages/{root['id']}/thread", headers=amina.headers)).json()
    assert [m["id"] for m in thread["items"]] == [reply["id"]]
    nested = await tenant.client.post(
        f"/v1/conversations/{cid}/messages",
        headers=amina.headers,
        json={"body": "x", "idempotency_key": "n", "thread_root_id": reply["id"]},
    )
    assert nested.status_code == 400

    url = f"/v1/messages/{root['id']}/reactions/thumbsup"
    assert (await tenant.client.put(url, headers=bilal.headers)).status_code == 204
    assert (await tenant.client.put(url, headers=bilal.headers)).status_code == 204
    got = (await tenant.client.get(f"/v1/messages/{root['id']}", headers=amina.headers)).json()
    assert got["reactions"] == {"thumbsup": [bilal.id]}
    assert (
        await tenant.client.put(f"/v1/messages/{root['id']}/reactions/Bad%20Emoji", headers=bilal.headers)
    ).status_code == 422

    assert (
        await tenant.client.patch(f"/v1/messages/{root['id']}", json={"body": "x"}, headers=bilal.headers)
    ).status_code == 403
    edited = await tenant.client.patch(
        f"/v1/messages/{root['id']}", json={"body": "proposal v2"}, headers=amina.headers
    )
    assert edited.json()["body"] == "proposal v2"
    assert edited.json()["edited_at"] is not None

    assert (await tenant.client.delete(f"/v1/messages/{root['id']}", headers=bilal.headers)).status_code == 403
    assert (await tenant.client.delete(f"/v1/messages/{root['id']}", headers=amina.headers)).status_code == 204
    assert (await tenant.client.delete(f"/v1/messages/{root['id']}", headers=amina.headers)).status_code == 204
    gone = (await tenant.client.get(f"/v1/messages/{root['id']}", headers=bilal.headers)).json()
    assert (gone["deleted"], gone["body"], gone["reactions"]) == (True, None, {})
    admin = await tenant.user("root", Role.admin)
    audit = (await tenant.client.get("/v1/admin/audit?action=message.deleted", headers=admin.headers)).json()
    assert [(e["actor_id"], e["target_id"]) for e in audit["items"]] == [(amina.id, str(root["id"]))]
    assert "proposal" not in str(audit)


async def test_unread_and_mention_counts_follow_read_state(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    cid = await channel(tenant, amina, "general", members=[bilal.id])
    await send(tenant, amina, cid, "hello all", "1")
    last = await send(tenant, amina, cid, f"<@{bilal.id}> please review", "2")
    assert last["mentions"] == [bilal.id]
    summary = (await tenant.client.get("/v1/conversations", headers=bilal.headers)).json()["items"][0]
    assert (summary["unread_count"], summary["mention_count"]) == (2, 1)
    mine = (await tenant.client.get("/v1/conversations", headers=amina.headers)).json()["items"][0]
    assert (mine["unread_count"], mine["mention_count"]) == (0, 0)
    read = await tenant.client.post(
        f"/v1/conversations/{cid}/read", json={"message_id": last["id"]}, headers=bilal.headers
    )
    assert read.status_code == 204
    summary = (await tenant.client.get("/v1/conversations", headers=bilal.headers)).json()["items"][0]
    assert (summary["unread_count"], summary["mention_count"], summary["last_read_message_id"]) == (0, 0, last["id"])


async def test_full_text_search_finds_words_only_in_my_conversations(tenant: Tenant) -> None:
    amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
    shared = await channel(tenant, amina, "budget", members=[bilal.id])
    mine = await channel(tenant, amina, "amina-notes", kind="private")
    await send(tenant, amina, shared, "The quarterly budget review is on Monday", "1")
    await send(tenant, amina, mine, "budget draft with secret numbers", "2")
    await send(tenant, amina, shared, "lunch plans", "3")
    found = (await tenant.client.get("/v1/search", params={"q": "budget"}, headers=bilal.headers)).json()["items"]
    assert [m["body"] for m in found] == ["The quarterly budget review is on Monday"]
    found = (await tenant.client.get("/v1/search", params={"q": "budget"}, headers=amina.headers)).json()["items"]
    assert len(found) == 2
    odd = await tenant.client.get("/v1/search", params={"q": 'budget" OR (x'}, headers=amina.headers)
    assert odd.status_code == 200


async def test_bad_input_gets_precise_errors(tenant: Tenant) -> None:
    amina = await tenant.user("amina")
    cid = await channel(tenant, amina, "general")
    url = f"/v1/conversations/{cid}/messages"
    too_big = "x" * (tenant.settings.messaging_max_message_bytes + 1)
    cases = [
        ({"body": too_big, "idempotency_key": "a"}, 413),
        ({"body": "   ", "idempotency_key": "b"}, 400),
        ({"body": "", "idempotency_key": "c"}, 422),
        ({"body": "x", "idempotency_key": "has spaces"}, 422),
        ({"body": "x"}, 422),
        ({"body": "x", "idempotency_key": "d", "extra": 1}, 422),
        ({"body": "x", "idempotency_key": "e", "thread_root_id": 999999}, 400),
    ]
    for body, status in cases:
        response = await tenant.client.post(url, json=body, headers=amina.headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"]
    dupe = await tenant.client.post(
        "/v1/conversations", json={"kind": "public", "name": "general"}, headers=amina.headers
    )
    assert dupe.status_code == 409
    nameless = await tenant.client.post("/v1/conversations", json={"kind": "public"}, headers=amina.headers)
    assert nameless.status_code == 400
    bad_name = await tenant.client.post(
        "/v1/conversations", json={"kind": "public", "name": "Bad Name"}, headers=amina.headers
    )
    assert bad_name.status_code == 422
    assert (await tenant.client.get("/v1/conversations/0", headers=amina.headers)).status_code == 422


async def test_per_user_rate_limit_answers_429_with_retry_after(postgres_url: str, redis_url: str) -> None:
    from tests.platform.harness import running_tenant, tenant_settings

    async with running_tenant(tenant_settings("alpha", postgres_url, redis_url, rate_limit="5/minute")) as tenant:
        amina, bilal = await tenant.user("amina"), await tenant.user("bilal")
        cid = await channel(tenant, amina, "general", members=[bilal.id])  # 1 of amina's 5
        statuses = [
            (
                await tenant.client.post(
                    f"/v1/conversations/{cid}/messages",
                    headers=amina.headers,
                    json={"body": "x", "idempotency_key": f"k{i}"},
                )
            ).status_code
            for i in range(6)
        ]
        assert statuses == [201, 201, 201, 201, 429, 429]
        limited = await tenant.client.post(
            f"/v1/conversations/{cid}/messages", headers=amina.headers, json={"body": "x", "idempotency_key": "z"}
        )
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        ok = await tenant.client.post(
            f"/v1/conversations/{cid}/messages", headers=bilal.headers, json={"body": "y", "idempotency_key": "b"}
        )
        assert ok.status_code == 201
