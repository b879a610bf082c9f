"""What both event buses promise (each test runs on MemoryEventBus and on RedisEventBus with real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from soa_platform.events import Envelope, EventStream, ResyncRequired, SubscriptionLagged
from tests.platform.events.conftest import BusFactory
from tests.platform.events.reading import event, nothing_more, seqs, take


async def test_each_user_gets_only_their_own_events_in_order(bus: EventStream) -> None:
    async with bus.subscribe(1) as alice, bus.subscribe(2) as bob:
        await bus.publish([1, 2], event(1))
        await bus.publish([2], event(2))
        await bus.publish([1, 3], event(3))
        await bus.publish([2, 1], event(4))

        assert await take(alice, 3) == [Envelope(1, event(1)), Envelope(2, event(3)), Envelope(3, event(4))]
        assert await take(bob, 3) == [Envelope(1, event(1)), Envelope(2, event(2)), Envelope(3, event(4))]
        await nothing_more(alice)
        await nothing_more(bob, wait=0)


async def test_a_repeated_recipient_gets_the_event_once(bus: EventStream) -> None:
    async with bus.subscribe(1) as alice:
        await bus.publish([1, 1], event(1))
        assert seqs(await take(alice, 1)) == [1]
        await nothing_more(alice)


async def test_without_last_seq_only_later_events_arrive(bus: EventStream) -> None:
    for n in range(3):
        await bus.publish([1], event(n))
    async with bus.subscribe(1, last_seq=None) as alice:
        assert alice.latest_seq == 3
        await bus.publish([1], event(3))
        assert await take(alice, 1) == [Envelope(4, event(3))]


async def test_resuming_yields_exactly_the_missed_events_then_live_ones(bus: EventStream) -> None:
    for n in range(1, 6):
        await bus.publish([1], event(n))
    async with bus.subscribe(1, last_seq=2) as alice:
        assert alice.latest_seq == 5
        assert await take(alice, 3) == [Envelope(n, event(n)) for n in (3, 4, 5)]
        await bus.publish([1], event(6))
        assert await take(alice, 1) == [Envelope(6, event(6))]
        await nothing_more(alice)


async def test_resuming_while_events_are_published_has_no_gap_or_duplicate(bus: EventStream) -> None:
    for n in range(1, 51):
        await bus.publish([1], event(n))

    async def publish_more() -> None:
        for n in range(51, 201):
            await bus.publish([1], event(n))
            await asyncio.sleep(0)

    publisher = asyncio.create_task(publish_more())
    async with bus.subscribe(1, last_seq=10) as alice:
        received = await take(alice, 190)
        await publisher
        assert seqs(received) == list(range(11, 201))
        assert [item.event["n"] for item in received if isinstance(item, Envelope)] == list(range(11, 201))
        await nothing_more(alice)


async def test_a_trimmed_last_seq_gives_resync_required_then_live_events(make_bus: BusFactory) -> None:
    bus = await make_bus(stream_length=10)
    # Redis trims whole stream nodes (100 entries) at a time: publish enough that the first ones go
    for n in range(1, 301):
        await bus.publish([1], event(n))
    async with bus.subscribe(1, last_seq=1) as alice:
        assert await take(alice, 1) == [ResyncRequired(300)]
        await bus.publish([1], event(301))
        assert await take(alice, 1) == [Envelope(301, event(301))]
        await nothing_more(alice)


async def test_a_last_seq_the_stream_never_reached_gives_resync_required(bus: EventStream) -> None:
    await bus.publish([1], event(1))
    async with bus.subscribe(1, last_seq=99) as alice:
        assert await take(alice, 1) == [ResyncRequired(1)]
        await bus.publish([1], event(2))
        assert await take(alice, 1) == [Envelope(2, event(2))]


async def test_a_slow_subscriber_lags_without_holding_back_others(make_bus: BusFactory) -> None:
    bus = await make_bus(queue_size=4)
    async with bus.subscribe(1) as slow, bus.subscribe(1) as fast:
        for n in range(1, 11):
            await bus.publish([1], event(n))
            assert seqs(await take(fast, 1)) == [n]
        assert slow.lagged.is_set()
        with pytest.raises(SubscriptionLagged):
            await anext(slow)


async def test_the_published_event_is_detached_from_the_callers_dict(bus: EventStream) -> None:
    published = event(1, tags=["a"])
    async with bus.subscribe(1) as alice:
        await bus.publish([1], published)
        published["tags"].append("changed later")
        assert await take(alice, 1) == [Envelope(1, event(1, tags=["a"]))]


async def test_stopping_the_bus_ends_its_subscriptions(bus: EventStream) -> None:
    async with bus.subscribe(1) as alice:
        waiting = asyncio.create_task(take(alice, 1))
        await asyncio.sleep(0.05)
        await bus.stop()
        with pytest.raises(StopAsyncIteration):
            await waiting
