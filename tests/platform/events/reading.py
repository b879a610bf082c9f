"""Reading what a subscription yields, with deadlines, in tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from soa_platform.events import Envelope, Item, Subscription


async def take(subscription: Subscription, count: int, within: float = 5.0) -> list[Item]:
    """The next `count` items, failing if they do not all arrive within `within` seconds."""
    items: list[Item] = []
    async with asyncio.timeout(within):
        while len(items) < count:
            items.append(await anext(subscription))
    return items


async def nothing_more(subscription: Subscription, wait: float = 0.3) -> None:
    """Fail if the subscription yields anything within `wait` seconds."""
    try:
        async with asyncio.timeout(wait):
            item = await anext(subscription)
    except TimeoutError:
        return
    pytest.fail(f"unexpected {item!r}")


def seqs(items: list[Item]) -> list[int]:
    """The seqs of the items, which must all be events."""
    assert all(isinstance(item, Envelope) for item in items), items
    return [item.seq for item in items if isinstance(item, Envelope)]


def event(n: int, **extra: Any) -> dict[str, Any]:
    """A test event numbered `n`."""
    return {"type": "test.event", "n": n, **extra}
