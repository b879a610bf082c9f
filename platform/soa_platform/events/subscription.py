"""One connection's view of a user's event stream: the stored events it missed, then live ones, in
sequence order, with no gap and no duplicate.

Both buses keep, per user, a stream of numbered events (`StoredStreams`) and deliver each event live to
the subscriptions of this process (`SubscriberRegistry`). A subscription is registered for live events
*before* it reads the stored stream, so nothing published in between is missed; live events it already
read from the stream are dropped by sequence number, and a gap in the live ones (a pub/sub message lost
while Redis was away) is filled from the stream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

DEFAULT_QUEUE_SIZE = 256
PAGE_SIZE = 200  # stored events read per round trip


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event of a user's stream and its sequence number in that stream (1, 2, 3...)."""

    seq: int
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResyncRequired:
    """Events the client has not seen are gone (trimmed, or the store was reset): it must reload its
    state; events continue after `latest_seq`."""

    latest_seq: int


Item: TypeAlias = Envelope | ResyncRequired


class SubscriptionLagged(Exception):
    """The connection fell a whole queue behind the live events; it should reconnect with its last seq."""


class StoredStreams(Protocol):
    """Read side of the per-user streams a bus keeps."""

    async def latest_seq(self, user_id: int) -> int:
        """The last sequence number given out in the user's stream (0 if none)."""

    async def read_after(self, user_id: int, after_seq: int, limit: int) -> list[Envelope]:
        """Up to `limit` retained events with seq > `after_seq`, oldest first."""


class _CheckStored:
    """Queue marker: events may have been published that never arrived live; re-read the stream."""


class _Closed:
    """Queue marker: the bus is stopping; end the iteration."""


_CHECK_STORED = _CheckStored()
_CLOSED = _Closed()


class Subscription:
    """Async iterator of `Envelope` and `ResyncRequired` items for one user; use `bus.subscribe()`.

    `latest_seq` is the stream's last seq when the subscription opened (the client's `hello`).
    Iteration raises `SubscriptionLagged` once the live queue overflowed (see `lagged`) and ends when
    the bus stops.
    """

    def __init__(self, streams: StoredStreams, user_id: int, last_seq: int | None, queue_size: int) -> None:
        self.user_id = user_id
        self.latest_seq = 0
        self.lagged = asyncio.Event()
        self._streams = streams
        self._requested = last_seq
        self._queue: asyncio.Queue[Envelope | _CheckStored | _Closed] = asyncio.Queue(queue_size)
        self._ready: deque[Item] = deque()
        self._last = 0  # highest seq handed out (or skipped by a resync)
        self._target = 0  # stored events up to this seq are read before any later live one
        self._held: Envelope | None = None  # the live event that revealed a gap, kept until it is filled
        self._must_check = False  # compare with the stored stream before the next live event
        self._closed = False

    async def open(self) -> None:
        """Find where the client stands; call once live events already reach this subscription."""
        latest = await self._streams.latest_seq(self.user_id)
        self.latest_seq = latest
        if self._requested is None:
            self._last = self._target = latest
        elif self._requested > latest:
            self._resync(latest)  # a seq this stream never reached: the store was reset
        else:
            self._last, self._target = self._requested, latest

    def deliver(self, envelope: Envelope) -> None:
        """Offer a live event (never blocks: a full queue marks the subscription as lagged)."""
        self._offer(envelope)

    def check_stored(self) -> None:
        """Live events may have been lost (the bus reconnected): catch up from the stored stream."""
        self._offer(_CHECK_STORED)

    def close(self) -> None:
        self._closed = True
        if not self._queue.full():
            self._queue.put_nowait(_CLOSED)  # wakes an iteration waiting for the next live event

    def _offer(self, item: Envelope | _CheckStored) -> None:
        if self._closed or self.lagged.is_set():
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lagged.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self.lagged.is_set():
                raise SubscriptionLagged(f"more than {self._queue.maxsize} events behind")
            if self._ready:
                return self._ready.popleft()
            if self._must_check:
                latest = await self._streams.latest_seq(self.user_id)
                self._must_check = False  # only once read: a cancelled read is retried
                if latest < self._last:
                    self._resync(latest)  # the store lost its data and numbering restarted
                else:
                    self._target = max(self._target, latest)
            elif self._last < self._target:
                await self._read_stored()
            elif self._held is not None:
                held, self._held = self._held, None
                self._accept_live(held)
            else:
                item = await self._queue.get()
                if isinstance(item, Envelope):
                    self._accept_live(item)
                elif isinstance(item, _CheckStored):
                    self._must_check = True

    def _accept_live(self, envelope: Envelope) -> None:
        if envelope.seq <= self._last:
            return  # already handed out from the stored stream
        if envelope.seq > self._last + 1:
            self._held, self._target = envelope, envelope.seq - 1
            return
        self._last = envelope.seq
        self._ready.append(envelope)

    async def _read_stored(self) -> None:
        entries = await self._streams.read_after(self.user_id, self._last, PAGE_SIZE)
        if not entries or entries[0].seq != self._last + 1:
            self._resync(await self._streams.latest_seq(self.user_id))
            return
        self._ready.extend(entries)
        self._last = entries[-1].seq

    def _resync(self, latest: int) -> None:
        self._ready.append(ResyncRequired(latest))
        self._last = self._target = latest


class SubscriberRegistry:
    """This process's open subscriptions by user, which a bus delivers its live events to."""

    def __init__(self, streams: StoredStreams, queue_size: int) -> None:
        self._streams = streams
        self._queue_size = queue_size
        self._by_user: dict[int, set[Subscription]] = {}

    @asynccontextmanager
    async def subscribe(self, user_id: int, last_seq: int | None) -> AsyncIterator[Subscription]:
        subscription = Subscription(self._streams, user_id, last_seq, self._queue_size)
        self._by_user.setdefault(user_id, set()).add(subscription)
        try:
            await subscription.open()
            yield subscription
        finally:
            subscription.close()
            subscribers = self._by_user.get(user_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_user[user_id]

    def has_subscribers(self, user_id: int) -> bool:
        return user_id in self._by_user

    def deliver(self, user_id: int, envelope: Envelope) -> None:
        for subscription in self._by_user.get(user_id, ()):
            subscription.deliver(envelope)

    def check_stored_all(self) -> None:
        for subscriptions in self._by_user.values():
            for subscription in subscriptions:
                subscription.check_stored()

    def close_all(self) -> None:
        for subscriptions in self._by_user.values():
            for subscription in subscriptions:
                subscription.close()

    def __len__(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._by_user.values())
