"""The event bus of the embedded default: per-user streams and fan-out inside one process."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson

from soa_platform.events.subscription import DEFAULT_QUEUE_SIZE, Envelope, SubscriberRegistry, Subscription


class MemoryEventBus:
    """Same semantics as `RedisEventBus`, for a single process (no Redis); nothing survives a restart."""

    def __init__(self, stream_length: int, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.stream_length = stream_length
        self._streams: dict[int, deque[Envelope]] = {}
        self._latest: dict[int, int] = {}
        self._subscribers = SubscriberRegistry(self, queue_size)

    async def start(self) -> None:
        """Nothing to connect to; present so both buses start and stop alike."""

    async def stop(self) -> None:
        """End every open subscription."""
        self._subscribers.close_all()

    async def publish(self, user_ids: Iterable[int], event: dict[str, Any]) -> None:
        # a JSON round trip, as through Redis: refuses what cannot be sent and detaches from the caller's dict
        stored = orjson.loads(orjson.dumps(event))
        for user_id in dict.fromkeys(user_ids):
            seq = self._latest.get(user_id, 0) + 1
            self._latest[user_id] = seq
            envelope = Envelope(seq, stored)
            self._streams.setdefault(user_id, deque(maxlen=self.stream_length)).append(envelope)
            self._subscribers.deliver(user_id, envelope)

    def subscribe(self, user_id: int, last_seq: int | None = None) -> AbstractAsyncContextManager[Subscription]:
        return self._subscribers.subscribe(user_id, last_seq)

    async def latest_seq(self, user_id: int) -> int:
        return self._latest.get(user_id, 0)

    async def read_after(self, user_id: int, after_seq: int, limit: int) -> list[Envelope]:
        stream = self._streams.get(user_id)
        if not stream:
            return []
        start = max(after_seq + 1 - stream[0].seq, 0)  # seqs in a stream are consecutive
        return list(itertools.islice(stream, start, start + limit))
