"""A messaging client as an app would be: it retries with the same idempotency key until acknowledged."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.platform.system.conftest import Member

ACKNOWLEDGED = (200, 201)
RETRY_DELAY = 0.05  # between attempts while the platform is partly down


@dataclass
class Acknowledged:
    key: str
    body: str
    message_id: int


@dataclass
class Poster:
    """Posts messages one after another as `author`; each is retried with its key until it is acknowledged."""

    client: httpx.AsyncClient
    author: Member
    conversation_id: int
    name: str
    mention: Member | None = None
    mention_every: int = 1
    acknowledged: list[Acknowledged] = field(default_factory=list)
    failed_attempts: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    async def post_until_stopped(self, stop: asyncio.Event) -> None:
        for number in itertools.count():
            if stop.is_set():
                return
            key = f"{self.name}-{number}"
            body = f"message {key}"
            if self.mention is not None and number % self.mention_every == 0:
                body += f" for <@{self.mention.id}>"
            self.acknowledged.append(Acknowledged(key, body, await self.post(key, body)))

    async def post(self, key: str, body: str) -> int:
        """The id of the message, once the platform acknowledged it (a first answer or a retry's)."""
        url = f"/v1/conversations/{self.conversation_id}/messages"
        while True:
            try:
                response = await self.client.post(
                    url, json={"body": body, "idempotency_key": key}, headers=self.author.headers
                )
            except httpx.TransportError:
                self.failed_attempts += 1
            else:
                self.statuses[response.status_code] += 1
                if response.status_code in ACKNOWLEDGED:
                    return int(response.json()["id"])
                # a refusal other than "unavailable" would mean the retry itself is wrong (e.g. a 409)
                assert response.status_code >= 500 or response.status_code == 429, response.text
                self.failed_attempts += 1
            await asyncio.sleep(RETRY_DELAY)


async def read_conversation(client: httpx.AsyncClient, reader: Member, conversation_id: int) -> list[dict[str, Any]]:
    """Every message of the conversation, oldest first, paging back from the latest."""
    url = f"/v1/conversations/{conversation_id}/messages"
    messages: list[dict[str, Any]] = []
    params: dict[str, int] = {"limit": 200}
    while True:
        response = await client.get(url, params=params, headers=reader.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        messages = page["items"] + messages
        if not page["has_more"]:
            return messages
        params["before"] = page["items"][0]["id"]
