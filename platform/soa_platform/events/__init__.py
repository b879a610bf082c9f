"""Real-time events: per-user numbered streams, fanned out to WebSockets (`/v1/events`)."""

from soa_platform.events.bus import (
    Envelope,
    EventStream,
    Item,
    MemoryEventBus,
    RedisEventBus,
    ResyncRequired,
    Subscription,
    SubscriptionLagged,
)

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
