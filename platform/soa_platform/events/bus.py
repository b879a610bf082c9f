"""The event bus: what services publish to and what the WebSocket endpoint subscribes to.

`RedisEventBus` when the tenant has Redis (every api replica shares the streams), `MemoryEventBus` in
the embedded default. Both keep each user's events in a stream numbered 1, 2, 3..., trimmed to the
last `stream_length`, so a client that reconnects with the last seq it saw gets exactly what it missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from soa_platform.events.memory import MemoryEventBus
from soa_platform.events.redis_bus import RedisEventBus
from soa_platform.events.subscription import Envelope, Item, ResyncRequired, Subscription, SubscriptionLagged

__all__ = [
    "Envelope",
    "EventStream",
    "Item",
    "MemoryEventBus",
    "RedisEventBus",
    "ResyncRequired",
    "Subscription",
    "SubscriptionLagged",
]


@runtime_checkable
class EventStream(Protocol):
    """An event bus: publish (the `EventPublisher` of `Platform`), subscribe, and its process lifecycle."""

    async def start(self) -> None:
        """Connect and begin live delivery (once per process, before any subscribe)."""

    async def stop(self) -> None:
        """End every subscription and disconnect."""

    async def publish(self, user_ids: Iterable[int], event: dict[str, Any]) -> None:
        """Append `event` to each user's stream and deliver it to their open connections."""

    def subscribe(self, user_id: int, last_seq: int | None = None) -> AbstractAsyncContextManager[Subscription]:
        """A user's events after `last_seq` (None: live ones from now), then live ones, in seq order."""
