"""RedisEventBus across api replicas, tenants and Redis restarts (real redis-server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio

from soa_platform.events import Envelope, RedisEventBus, ResyncRequired
from tests.platform.events.reading import event, nothing_more, take
from tests.platform.events.tcp_proxy import CuttableProxy
from tests.support.servers import RedisServer

RedisBusFactory = Callable[..., Awaitable[RedisEventBus]]


@pytest.fixture
async def make_redis_bus(redis_url: str) -> AsyncIterator[RedisBusFactory]:
    started: list[RedisEventBus] = []

    async def make(tenant: str = "t1", stream_length: int = 1000, url: str = redis_url) -> RedisEventBus:
        bus = RedisEventBus(url, stream_length, tenant)
        await bus.start()
        started.append(bus)
        return bus

    yield make
    for bus in started:
        await bus.stop()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_an_event_published_on_one_replica_reaches_a_socket_on_another(make_redis_bus: RedisBusFactory) -> None:
    replica_a, replica_b = await make_redis_bus(), await make_redis_bus()
    async with replica_b.subscribe(1) as alice, replica_a.subscribe(1) as alice_elsewhere:
        await replica_a.publish([1], event(1))
        await replica_b.publish([1], event(2))
        expected = [Envelope(1, event(1)), Envelope(2, event(2))]
        assert await take(alice, 2) == expected
        assert await take(alice_elsewhere, 2) == expected


async def test_tenants_sharing_a_redis_never_see_each_others_events(
    make_redis_bus: RedisBusFactory, raw_redis: redis.asyncio.Redis
) -> None:
    tenant_a, tenant_b = await make_redis_bus("a"), await make_redis_bus("b")
    async with tenant_a.subscribe(1) as alice_of_a:
        await tenant_b.publish([1], event(1))
        await nothing_more(alice_of_a)
        await tenant_a.publish([1], event(2))
        assert await take(alice_of_a, 1) == [Envelope(1, event(2))]  # b's event took no seq in a's stream
    keys = sorted(await raw_redis.keys("*"))
    assert keys == ["soa:{a}:events:1", "soa:{a}:events:1:seq", "soa:{b}:events:1", "soa:{b}:events:1:seq"]


async def test_streams_are_trimmed_and_expire_but_counters_do_not(
    make_redis_bus: RedisBusFactory, raw_redis: redis.asyncio.Redis
) -> None:
    bus = await make_redis_bus(stream_length=10)
    for n in range(300):
        await bus.publish([1], event(n))
    assert await raw_redis.xlen(bus.stream_key(1)) < 300
    assert await raw_redis.ttl(bus.stream_key(1)) > 0
    assert await raw_redis.ttl(bus.counter_key(1)) == -1


async def test_the_listener_recovers_when_redis_restarts(
    redis_server: RedisServer, make_redis_bus: RedisBusFactory
) -> None:
    bus = await make_redis_bus()
    async with bus.subscribe(1) as alice:
        await bus.publish([1], event(1))
        assert await take(alice, 1) == [Envelope(1, event(1))]
        redis_server.kill()
        await asyncio.sleep(0.2)
        redis_server.start()
        await bus.publish([1], event(2))
        assert await take(alice, 1, within=10) == [Envelope(2, event(2))]
    async with bus.subscribe(1) as alice_again:
        await bus.publish([1], event(3))
        assert await take(alice_again, 1) == [Envelope(3, event(3))]


async def test_events_published_while_a_replica_is_cut_off_from_redis_arrive_once_it_is_back(
    redis_server: RedisServer, make_redis_bus: RedisBusFactory
) -> None:
    async with CuttableProxy(redis_server.host, redis_server.port) as proxy:
        cut_off = await make_redis_bus(url=f"redis://127.0.0.1:{proxy.port}/0")
        publishing = await make_redis_bus()
        async with cut_off.subscribe(1) as alice:
            proxy.cut()
            for n in range(1, 4):
                await publishing.publish([1], event(n))
            await nothing_more(alice)
            proxy.restore()
            assert await take(alice, 3, within=10) == [Envelope(n, event(n)) for n in (1, 2, 3)]
            await publishing.publish([1], event(4))
            assert await take(alice, 1) == [Envelope(4, event(4))]
            await nothing_more(alice)


async def test_a_redis_that_lost_its_data_gives_resync_required(
    make_redis_bus: RedisBusFactory, raw_redis: redis.asyncio.Redis
) -> None:
    bus = await make_redis_bus()
    async with bus.subscribe(1) as alice:
        for n in range(1, 4):
            await bus.publish([1], event(n))
        assert len(await take(alice, 3)) == 3
        await raw_redis.flushall()
        await raw_redis.client_kill_filter(_type="pubsub")  # as a restarted, empty Redis would
        assert await take(alice, 1, within=10) == [ResyncRequired(0)]
        await bus.publish([1], event(4))
        assert await take(alice, 1) == [Envelope(1, event(4))]
