"""What a meeting client does through the public API, for the tests: create, join, read its events."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from soa_platform.events import Envelope
from tests.platform.harness import Tenant, User
from tests.support.webrtc_peer import JanusSession, Publisher, Subscriber


async def create_meeting(tenant: Tenant, creator: User, **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Weekly sync")
    response = await tenant.client.post("/v1/meetings", json=body, headers=creator.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def join(tenant: Tenant, user: User, meeting_id: int, **body: Any) -> dict[str, Any]:
    response = await tenant.client.post(f"/v1/meetings/{meeting_id}/join", json=body or None, headers=user.headers)
    assert response.status_code == 200, response.text
    joined = dict(response.json())
    assert joined["status"] == "joined"
    return joined


async def events_of(tenant: Tenant, user_id: int, wait: float = 0.3) -> list[dict[str, Any]]:
    """Every event in the user's stream so far."""
    found: list[dict[str, Any]] = []
    async with tenant.platform.events.subscribe(user_id, last_seq=0) as subscription:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                async for item in subscription:
                    if isinstance(item, Envelope):
                        found.append(item.event)
    return found


class Peers:
    """aiortc peers that use what a join answered, like the web client; close() hangs them all up."""

    def __init__(self) -> None:
        self._closing: list[Any] = []

    async def publish(self, joined: dict[str, Any], *, audio: bool = False, relay: bool = False) -> Publisher:
        access = joined["janus"]
        session = await self._session(access)
        publisher = Publisher(
            session, access["room"], access["token"], display=str(joined["participant_id"]), pin=access["pin"],
            audio=audio, turn=_turn(joined) if relay else None,
        )  # fmt: skip
        self._closing.append(publisher)
        return await publisher.join_and_publish()

    async def subscribe(self, joined: dict[str, Any], feeds: list[int], *, relay: bool = False) -> Subscriber:
        access = joined["janus"]
        session = await self._session(access)
        subscriber = Subscriber(
            session, access["room"], access["token"], pin=access["pin"], turn=_turn(joined) if relay else None
        )
        self._closing.append(subscriber)
        return await subscriber.subscribe(feeds)

    async def _session(self, access: dict[str, Any]) -> JanusSession:
        session = await JanusSession(access["url"], access["token"]).open()
        self._closing.append(session)
        return session

    async def close(self) -> None:
        for peer in reversed(self._closing):
            with contextlib.suppress(Exception):
                await peer.close()


def _turn(joined: dict[str, Any]) -> dict[str, Any]:
    [server] = joined["ice_servers"]
    return {"urls": server["urls"][0], "username": server["username"], "credential": server["credential"]}
